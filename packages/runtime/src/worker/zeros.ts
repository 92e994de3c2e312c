import type { Tensor, TensorDataMap, TensorType } from '@outpost/core';

const ARRAYS: { [T in TensorType]: new (length: number) => TensorDataMap[T] } = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
  float16: Uint16Array,
};

/** A tensor of zeros (false, +0) of a type and shape. */
export function zeros<T extends TensorType>(type: T, dims: readonly number[]): Tensor<T> {
  const length = dims.reduce((n, d) => n * d, 1);
  return { type, data: new ARRAYS[type](length), dims: [...dims] };
}
