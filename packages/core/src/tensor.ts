/** Element types a tensor can hold, named as onnxruntime names them. */
export type TensorType =
  | 'float32'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'float16';

/** The TypedArray that holds each {@link TensorType}'s elements. */
export interface TensorDataMap {
  float32: Float32Array;
  float64: Float64Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  /** One byte per element, 0 or 1, as onnxruntime stores booleans. */
  bool: Uint8Array;
  /** Raw IEEE 754 half-precision bits. */
  float16: Uint16Array;
}

/** A dense tensor: `{ type, data, dims }`, as onnxruntime users know it. */
export interface Tensor<T extends TensorType = TensorType> {
  type: T;
  data: TensorDataMap[T];
  dims: readonly number[];
}

/** Named tensors, as passed to and returned by `run`. */
export type TensorMap = Record<string, Tensor>;

/** Every tensor type, for validation. */
export const TENSOR_TYPES: readonly TensorType[] = [
  'float32',
  'float64',
  'int8',
  'uint8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'bool',
  'float16',
];

/** The TypedArray constructor name expected for each tensor type. */
export const TENSOR_ARRAY_NAMES: Readonly<Record<TensorType, string>> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  int8: 'Int8Array',
  uint8: 'Uint8Array',
  int16: 'Int16Array',
  uint16: 'Uint16Array',
  int32: 'Int32Array',
  uint32: 'Uint32Array',
  int64: 'BigInt64Array',
  uint64: 'BigUint64Array',
  bool: 'Uint8Array',
  float16: 'Uint16Array',
};
