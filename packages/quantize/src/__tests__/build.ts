// Small ONNX graphs for the tests, built with onnx-proto.
import onnxProto from 'onnx-proto';
import { decodeModel } from '../onnx.js';
import type { ModelProto } from '../onnx.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>) {
  const f = Float32Array.from(values);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(f.buffer) };
}

export function vi(name: string, dims: (number | string)[] = []) {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
      },
    },
  };
}

export interface GraphSpec {
  nodes: onnxProto.onnx.INodeProto[];
  initializers?: onnxProto.onnx.ITensorProto[];
  inputs: ReturnType<typeof vi>[];
  outputs: ReturnType<typeof vi>[];
  opset?: number;
}

export function buildBytes(spec: GraphSpec): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: spec.opset ?? 13 }],
    producerName: 'outpost-test',
    graph: {
      name: 'test',
      node: spec.nodes,
      initializer: spec.initializers ?? [],
      input: spec.inputs,
      output: spec.outputs,
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

export function build(spec: GraphSpec): ModelProto {
  return decodeModel(buildBytes(spec));
}

/** Deterministic pseudo-random values in [-1, 1). */
export function randomValues(n: number, seed = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 16807) % 2147483647;
    return (s / 2147483647) * 2 - 1;
  });
}

export const ints = (name: string, values: number[]) => ({
  name,
  type: onnx.AttributeProto.AttributeType.INTS,
  ints: values,
});
export const int = (name: string, value: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i: value });
