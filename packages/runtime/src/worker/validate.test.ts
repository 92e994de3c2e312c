import { InputError, type TensorMap, type ValueInfo } from '@outpost/core';
import { describe, expect, it } from 'vitest';
import { validateFeeds } from './validate.js';

const inputs: ValueInfo[] = [
  { name: 'x', type: 'float32', dims: ['batch', 1, 28, 28] },
  { name: 'sr', type: 'int64', dims: [] },
];
const ok = (): TensorMap => ({
  x: { type: 'float32', data: new Float32Array(2 * 784), dims: [2, 1, 28, 28] },
  sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
});
const MAX = 1 << 20;

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).code;
  }
  return undefined;
}

describe('validateFeeds (R2, R3)', () => {
  it('accepts feeds matching declared dims, with any size on a symbolic dim', () => {
    expect(codeOf(() => validateFeeds(ok(), inputs, MAX))).toBeUndefined();
  });

  it('accepts any size on unknown (null) dims', () => {
    const info: ValueInfo[] = [{ name: 'a', type: 'float32', dims: [null, 3] }];
    const feeds = { a: { type: 'float32' as const, data: new Float32Array(21), dims: [7, 3] } };
    expect(codeOf(() => validateFeeds(feeds, info, MAX))).toBeUndefined();
  });

  it('R2: rejects an unknown input name', () => {
    const feeds = { ...ok(), y: ok().x };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_UNKNOWN');
  });

  it('R2: rejects a missing input', () => {
    const { x } = ok();
    expect(codeOf(() => validateFeeds({ x }, inputs, MAX))).toBe('INPUT_MISSING');
  });

  it('R2: rejects the wrong element type', () => {
    const feeds = { ...ok(), x: { type: 'int32' as const, data: new Int32Array(784), dims: [1, 1, 28, 28] } };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_TYPE');
  });

  it('R2: rejects data in the wrong TypedArray for its declared type', () => {
    const feeds = {
      ...ok(),
      x: { type: 'float32' as const, data: new Float64Array(784) as never, dims: [1, 1, 28, 28] },
    };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_TYPE');
  });

  it('R2: rejects the wrong rank', () => {
    const feeds = { ...ok(), x: { type: 'float32' as const, data: new Float32Array(784), dims: [1, 28, 28] } };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_RANK');
  });

  it('R2: rejects a fixed dim of the wrong size', () => {
    const feeds = {
      ...ok(),
      x: { type: 'float32' as const, data: new Float32Array(2 * 28 * 28), dims: [1, 2, 28, 28] },
    };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_SHAPE');
  });

  it('R2: rejects data.length that is not the product of dims', () => {
    const feeds = { ...ok(), x: { type: 'float32' as const, data: new Float32Array(700), dims: [1, 1, 28, 28] } };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_LENGTH');
  });

  it('R2: rejects negative or fractional dims', () => {
    const feeds = { ...ok(), x: { type: 'float32' as const, data: new Float32Array(784), dims: [-1, 1, 28, 28] } };
    expect(codeOf(() => validateFeeds(feeds, inputs, MAX))).toBe('INPUT_SHAPE');
  });

  it('R3: rejects inputs over the byte cap before they reach the backend', () => {
    expect(codeOf(() => validateFeeds(ok(), inputs, 1000))).toBe('INPUT_TOO_LARGE');
  });

  it('carries the input name and expected/actual dims', () => {
    const feeds = { ...ok(), x: { type: 'float32' as const, data: new Float32Array(784), dims: [1, 28, 28] } };
    try {
      validateFeeds(feeds, inputs, MAX);
      expect.unreachable();
    } catch (err) {
      const e = err as InputError;
      expect(e.input).toBe('x');
      expect(e.expected).toEqual(['batch', 1, 28, 28]);
      expect(e.actual).toEqual([1, 28, 28]);
    }
  });
});
