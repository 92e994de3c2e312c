import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { checkOnnx } from './onnx-format.js';
import { warmupModel } from './warmup-model.js';

const { onnx } = onnxProto;

describe('warm-up model', () => {
  it('is exactly the Identity model onnx-proto encodes', () => {
    const vi = (name: string) => ({
      name,
      type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } },
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'outpost',
      graph: {
        name: 'warmup',
        node: [{ opType: 'Identity', input: ['x'], output: ['y'] }],
        input: [vi('x')],
        output: [vi('y')],
      },
    });
    expect(warmupModel()).toEqual(new Uint8Array(onnx.ModelProto.encode(model).finish()));
    expect(() => checkOnnx(warmupModel())).not.toThrow();
  });
});
