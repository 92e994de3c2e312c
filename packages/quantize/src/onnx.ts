import onnxProto from 'onnx-proto';
import { ModelReadError } from './errors.js';

/** onnx-proto's generated protobuf classes (protobufjs static code). */
export const { onnx } = onnxProto;

/** An int64 field as protobufjs decodes it: a number, or a `Long` when `long` is installed. */
export type Int64 = number | { toNumber(): number };

// The generated classes type every field as optional and nullable; decoded messages always have
// them (repeated fields as arrays, scalars with defaults). These are the decoded shapes we use.

/** A decoded ONNX tensor (initializer or Constant value). */
export interface TensorProto {
  name: string;
  dataType: number;
  dims: Int64[];
  rawData: Uint8Array;
  floatData: number[];
  int32Data: number[];
  int64Data: Int64[];
}

/** A decoded ONNX attribute. */
export interface AttributeProto {
  name: string;
  type: number;
  i: Int64;
  f: number;
  s: Uint8Array;
  t?: TensorProto | null;
  ints: Int64[];
  floats: number[];
}

/** A decoded ONNX node. */
export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
}

/** A decoded ONNX value info (graph input/output). */
export interface ValueInfoProto {
  name: string;
}

/** A decoded ONNX graph. */
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}

/** A decoded ONNX model. */
export interface ModelProto {
  irVersion: Int64;
  opsetImport: { domain: string; version: Int64 }[];
  graph?: GraphProto | null;
}

/** ONNX TensorProto data types used here. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
} as const;

/** Decodes ONNX bytes. */
export function decodeModel(bytes: Uint8Array): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes) as unknown as ModelProto;
  } catch (err) {
    // protobufjs says only "index out of range: …" for a truncated file or an absurd length.
    const why = err instanceof Error ? err.message : String(err);
    throw new ModelReadError(`Not a readable ONNX model (protobuf: ${why})`, { cause: err });
  }
  // Empty repeated fields are a shared frozen array in protobufjs: give each message its own.
  model.opsetImport = [...model.opsetImport];
  const g = model.graph;
  if (g) {
    g.node = g.node.map((n) => {
      n.input = [...n.input];
      n.output = [...n.output];
      n.attribute = [...n.attribute];
      return n;
    });
    g.initializer = [...g.initializer];
    g.input = [...g.input];
    g.output = [...g.output];
    g.valueInfo = [...g.valueInfo];
  }
  return model;
}

/** Encodes a model, verifying it first. */
export function encodeModel(model: ModelProto): Uint8Array {
  const err = onnx.ModelProto.verify(model);
  if (err) throw new Error(`invalid ModelProto: ${err}`);
  return onnx.ModelProto.encode(model).finish();
}

/**
 * protobufjs decodes int64 fields to `Long` objects when the `long` package is installed and to
 * numbers otherwise; every int64 we read (dims, opset versions, attribute ints) fits a double.
 */
export function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v && typeof v === 'object' && 'toNumber' in v && typeof v.toNumber === 'function') {
    return (v.toNumber as () => number).call(v);
  }
  throw new TypeError(`not an integer: ${String(v)}`);
}

/** A tensor's dims as numbers. */
export function dimsOf(t: TensorProto): number[] {
  return t.dims.map(toNumber);
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  // Copy so the tensor never aliases a larger buffer (protobufjs writes the whole view).
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
}

/** Float32 values of a FLOAT tensor, from raw_data or float_data. */
export function floatData(t: TensorProto): Float32Array {
  if (t.dataType !== DataType.FLOAT) throw new Error(`tensor ${t.name} is not float32 (type ${t.dataType})`);
  if (t.rawData && t.rawData.length > 0) {
    // raw_data is little-endian per the ONNX spec, as is every platform we run on. Copy first:
    // decoded bytes can be a Node Buffer view into a larger pool.
    return new Float32Array(Uint8Array.from(t.rawData).buffer);
  }
  return Float32Array.from(t.floatData);
}

/** Integer values of an INT64/INT32 tensor, as numbers. */
export function intData(t: TensorProto): number[] {
  if (t.rawData && t.rawData.length > 0) {
    const raw = Uint8Array.from(t.rawData); // a copy: decoded bytes may be a Buffer view into a pool
    if (t.dataType === DataType.INT64) return Array.from(new BigInt64Array(raw.buffer), Number);
    if (t.dataType === DataType.INT32) return Array.from(new Int32Array(raw.buffer));
    throw new Error(`tensor ${t.name}: unsupported integer type ${t.dataType}`);
  }
  return t.dataType === DataType.INT64 ? t.int64Data.map(toNumber) : Array.from(t.int32Data);
}

/** Builds a tensor stored as raw_data. */
export function makeTensor(
  name: string,
  dataType: number,
  dims: readonly number[],
  data: Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array,
): TensorProto {
  return onnx.TensorProto.create({ name, dataType, dims: [...dims], rawData: bytesOf(data) });
}

/** Builds an INT64 tensor (shapes, axes). */
export function makeInt64Tensor(name: string, values: readonly number[], dims = [values.length]): TensorProto {
  return makeTensor(
    name,
    DataType.INT64,
    dims,
    BigInt64Array.from(values, (v) => BigInt(v)),
  );
}

/** The attribute `name` of `node`, if present. */
export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name);
}

/** An INT attribute's value, or `fallback`. */
export function getIntAttribute(node: NodeProto, name: string, fallback: number): number {
  const a = getAttribute(node, name);
  return a ? toNumber(a.i) : fallback;
}

/** Builds an INT attribute. */
export function intAttribute(name: string, value: number): AttributeProto {
  return onnx.AttributeProto.create({
    name,
    type: onnx.AttributeProto.AttributeType.INT,
    i: value,
  }) as unknown as AttributeProto;
}

/** Builds a node. */
export function makeNode(
  opType: string,
  input: string[],
  output: string[],
  name: string,
  attribute: AttributeProto[] = [],
): NodeProto {
  return onnx.NodeProto.create({
    opType,
    input,
    output,
    name,
    attribute: attribute,
  }) as unknown as NodeProto;
}

/** A float32 value info with no shape (enough for extra graph outputs). */
export function floatValueInfo(name: string): ValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: DataType.FLOAT }) }),
  });
}

/** The default-domain opset version the model imports. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? toNumber(entry.version) : 1;
}

/** A deep copy (models are rewritten in place by the passes). */
export function cloneModel(model: ModelProto): ModelProto {
  return decodeModel(onnx.ModelProto.encode(model).finish());
}
