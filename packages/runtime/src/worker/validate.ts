import {
  InputError,
  TENSOR_ARRAY_NAMES,
  TENSOR_TYPES,
  type Tensor,
  type TensorMap,
  type ValueInfo,
} from '@outpost/core';

/**
 * Checks feeds against the inputs a model declares, before anything runs (R2, R3): names, element
 * type, the TypedArray holding the data, rank, fixed dimensions (symbolic and unknown ones accept
 * any size), that `data.length` is the product of `dims`, and a byte cap.
 */
export function validateFeeds(feeds: TensorMap, inputs: readonly ValueInfo[], maxInputBytes: number): void {
  const declared = new Map(inputs.map((i) => [i.name, i]));
  for (const name of Object.keys(feeds)) {
    if (!declared.has(name)) {
      throw new InputError(
        'INPUT_UNKNOWN',
        `Unknown input "${name}"; the model takes ${inputs.map((i) => `"${i.name}"`).join(', ')}`,
        name,
        inputs.map((i) => i.name),
        name,
      );
    }
  }
  let total = 0;
  for (const info of inputs) {
    const t = feeds[info.name];
    if (t === undefined) {
      throw new InputError('INPUT_MISSING', `Missing input "${info.name}"`, info.name, info.name, undefined);
    }
    checkTensor(info, t);
    total += t.data.byteLength;
    if (total > maxInputBytes) {
      throw new InputError(
        'INPUT_TOO_LARGE',
        `Inputs hold ${total} bytes, more than the ${maxInputBytes} allowed`,
        info.name,
        maxInputBytes,
        total,
      );
    }
  }
}

function checkTensor(info: ValueInfo, t: Tensor): void {
  const name = info.name;
  if (typeof t !== 'object' || t === null || !TENSOR_TYPES.includes(t.type)) {
    throw new InputError('INPUT_TYPE', `Input "${name}" has no valid tensor type`, name, info.type, t?.type);
  }
  if (t.type !== info.type) {
    throw new InputError('INPUT_TYPE', `Input "${name}" must be ${info.type}, got ${t.type}`, name, info.type, t.type);
  }
  const arrayName = TENSOR_ARRAY_NAMES[t.type];
  const actualArray = (t.data as unknown as { constructor?: { name?: string } } | null)?.constructor?.name;
  if (actualArray !== arrayName) {
    throw new InputError(
      'INPUT_TYPE',
      `Input "${name}" (${t.type}) must hold its data in a ${arrayName}, got ${actualArray ?? typeof t.data}`,
      name,
      arrayName,
      actualArray,
    );
  }
  // Checked as unknown: feeds come from app code that TypeScript may not have seen.
  const dims: unknown = t.dims;
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new InputError('INPUT_SHAPE', `Input "${name}" dims must be non-negative integers`, name, info.dims, t.dims);
  }
  // A model that declares no shape (dims []) for a non-scalar leaves the shape open.
  if (info.dims.length > 0 || t.dims.length === 0) {
    if (t.dims.length !== info.dims.length) {
      throw new InputError(
        'INPUT_RANK',
        `Input "${name}" must have rank ${info.dims.length} ${fmt(info.dims)}, got rank ${t.dims.length} ${fmt(t.dims)}`,
        name,
        info.dims,
        t.dims,
      );
    }
    info.dims.forEach((d, i) => {
      if (typeof d === 'number' && d !== t.dims[i]) {
        throw new InputError(
          'INPUT_SHAPE',
          `Input "${name}" dimension ${i} must be ${d}, got ${t.dims[i]} (expected ${fmt(info.dims)}, got ${fmt(t.dims)})`,
          name,
          info.dims,
          t.dims,
        );
      }
    });
  }
  const size = t.dims.reduce((a, b) => a * b, 1);
  if (size !== t.data.length) {
    throw new InputError(
      'INPUT_LENGTH',
      `Input "${name}" has ${t.data.length} elements but dims ${fmt(t.dims)} need ${size}`,
      name,
      size,
      t.data.length,
    );
  }
}

function fmt(dims: readonly (number | string | null)[]): string {
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}
