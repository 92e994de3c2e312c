import { ModelFormatError, type Dim, type Tensor, type TensorType } from '@outpost/core';

/** TF.js dtypes (tfjs-core's `DataType`), named here so this module imports nothing heavy. */
export type TfDataType = 'float32' | 'int32' | 'bool' | 'complex64' | 'string';

/**
 * Our tensor type for a TF.js dtype. TF.js computes in float32, int32 and bool only (quantized
 * weights are widened when loaded), so those are the three a model's inputs and outputs can have.
 */
export function toTensorType(dtype: string | undefined, what: string): TensorType {
  switch (dtype ?? 'float32') {
    case 'float32':
      return 'float32';
    case 'int32':
      return 'int32';
    case 'bool':
      return 'bool';
    default:
      throw new ModelFormatError(`${what} has TF.js dtype ${dtype}, which an Outpost tensor cannot hold`);
  }
}

/** TF.js shapes to our dims: unknown sizes (-1 in graph models, null in layers models) → null. */
export function toDims(shape: readonly (number | null)[] | undefined): Dim[] {
  return (shape ?? []).map((d) => (d === null || d < 0 ? null : d));
}

/**
 * The TF.js dtype and values for one of our tensors. Inputs are validated against the declared
 * types first, so this is float32, int32 or bool in practice; other integer types are widened to
 * int32 and float64 narrowed to float32 rather than rejected, as tf.tensor itself would.
 */
export function toTfInput(t: Tensor): { dtype: TfDataType; values: Float32Array | Int32Array | Uint8Array } {
  switch (t.type) {
    case 'float32':
      return { dtype: 'float32', values: t.data as Float32Array };
    case 'int32':
      return { dtype: 'int32', values: t.data as Int32Array };
    case 'bool':
      return { dtype: 'bool', values: t.data as Uint8Array };
    case 'float64':
      return { dtype: 'float32', values: Float32Array.from(t.data as Float64Array) };
    case 'int64':
    case 'uint64':
      return { dtype: 'int32', values: Int32Array.from(t.data as BigInt64Array, (v) => Number(v)) };
    case 'float16':
      throw new ModelFormatError('TF.js takes no float16 inputs; convert them to float32');
    default:
      return { dtype: 'int32', values: Int32Array.from(t.data as ArrayLike<number>) };
  }
}

/** One of our tensors from a TF.js output's dtype, values and shape. */
export function fromTfOutput(dtype: string, values: ArrayBufferView, shape: readonly number[], name: string): Tensor {
  const dims = [...shape];
  switch (dtype) {
    case 'float32':
      return { type: 'float32', data: values as Float32Array, dims };
    case 'int32':
      return { type: 'int32', data: values as Int32Array, dims };
    case 'bool':
      return { type: 'bool', data: values as Uint8Array, dims };
    default:
      throw new ModelFormatError(`output "${name}" has TF.js dtype ${dtype}, which an Outpost tensor cannot hold`);
  }
}
