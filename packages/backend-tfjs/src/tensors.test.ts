import { describe, expect, it } from 'vitest';
import { fromTfOutput, toDims, toTensorType, toTfInput } from './tensors.js';

describe('TF.js ↔ Outpost tensors', () => {
  it('maps TF.js dtypes to tensor types, rejecting those a Tensor cannot hold', () => {
    expect(toTensorType('float32', 'x')).toBe('float32');
    expect(toTensorType('int32', 'x')).toBe('int32');
    expect(toTensorType('bool', 'x')).toBe('bool');
    expect(toTensorType(undefined, 'x')).toBe('float32');
    expect(() => toTensorType('string', 'input "s"')).toThrow(/input "s" has TF.js dtype string/);
    expect(() => toTensorType('complex64', 'x')).toThrow(/complex64/);
  });

  it('maps unknown sizes (-1 in graph models, null in layers models) to null', () => {
    expect(toDims([-1, 192, 192, 3])).toEqual([null, 192, 192, 3]);
    expect(toDims([null, 28, 28, 1])).toEqual([null, 28, 28, 1]);
    expect(toDims([])).toEqual([]);
    expect(toDims(undefined)).toEqual([]);
  });

  it('feeds our tensors to TF.js with a dtype it computes in', () => {
    const f = new Float32Array([1, 2]);
    expect(toTfInput({ type: 'float32', data: f, dims: [2] })).toEqual({ dtype: 'float32', values: f });
    expect(toTfInput({ type: 'uint8', data: new Uint8Array([255, 1]), dims: [2] })).toEqual({
      dtype: 'int32',
      values: new Int32Array([255, 1]),
    });
    expect(toTfInput({ type: 'int64', data: new BigInt64Array([5n, -3n]), dims: [2] })).toEqual({
      dtype: 'int32',
      values: new Int32Array([5, -3]),
    });
    expect(toTfInput({ type: 'float64', data: new Float64Array([0.5]), dims: [1] }).values).toEqual(
      new Float32Array([0.5]),
    );
    expect(() => toTfInput({ type: 'float16', data: new Uint16Array(1), dims: [1] })).toThrow(/float16/);
  });

  it('returns TF.js outputs as { type, data, dims }', () => {
    const data = new Int32Array([1, 2, 3, 4]);
    expect(fromTfOutput('int32', data, [2, 2], 'y')).toEqual({ type: 'int32', data, dims: [2, 2] });
    expect(() => fromTfOutput('string', data, [4], 'y')).toThrow(/output "y"/);
  });
});
