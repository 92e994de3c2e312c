import { ModelFormatError, TENSOR_TYPES, type TensorMap, type TensorType } from '@outpost/core';
import { fromBase64, fromUtf8, toBase64, utf8 } from './encoding.js';
import type { EncodedTensor, GoldenFile } from './metadata.js';

/**
 * Golden files: known inputs and the outputs a correct build gives for them, with a tolerance.
 * They are target files (hashed, not signed JSON), so floats are fine; tensors travel as base64
 * of their little-endian bytes.
 */

const ARRAYS = {
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
} as const;

function encodeMap(map: TensorMap): Record<string, EncodedTensor> {
  const out: Record<string, EncodedTensor> = {};
  for (const [name, t] of Object.entries(map)) {
    const view = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out[name] = { type: t.type, dims: [...t.dims], base64: toBase64(view) };
  }
  return out;
}

function decodeMap(map: unknown, what: string): TensorMap {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new TypeError(`${what} is not an object`);
  // Null prototype: a tensor named `__proto__` is a name like any other.
  const out: TensorMap = Object.create(null) as TensorMap;
  for (const [name, e] of Object.entries(map as Record<string, Partial<EncodedTensor> | null>)) {
    if (!e || typeof e !== 'object') throw new TypeError(`Golden tensor ${name} is not an object`);
    if (!TENSOR_TYPES.includes(e.type as TensorType))
      throw new TypeError(`Golden tensor ${name}: unknown type ${String(e.type)}`);
    const dims = e.dims;
    if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TypeError(`Golden tensor ${name}: dims are not non-negative integers`);
    }
    if (typeof e.base64 !== 'string') throw new TypeError(`Golden tensor ${name}: base64 is not a string`);
    const type = e.type as TensorType;
    const Ctor = ARRAYS[type];
    const bytes = fromBase64(e.base64);
    if (bytes.length % Ctor.BYTES_PER_ELEMENT !== 0) throw new TypeError(`Golden tensor ${name}: ragged bytes`);
    const data = new Ctor(bytes.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
    const count = dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new TypeError(`Golden tensor ${name}: dims do not match its data`);
    out[name] = { type, dims, data };
  }
  return out;
}

/** Serialises a golden check to the file `outpost publish --golden` takes. */
export function encodeGolden(golden: {
  inputs: TensorMap;
  outputs: TensorMap;
  tolerance: number;
}): Uint8Array<ArrayBuffer> {
  const file: GoldenFile = {
    inputs: encodeMap(golden.inputs),
    outputs: encodeMap(golden.outputs),
    tolerance: golden.tolerance,
  };
  return utf8(JSON.stringify(file));
}

/**
 * Reads a golden file (already verified against its target hash). A malformed one (not UTF-8,
 * not JSON, a field of the wrong kind) is a `ModelFormatError`: the release is unusable.
 */
export function decodeGolden(bytes: Uint8Array): { inputs: TensorMap; outputs: TensorMap; tolerance: number } {
  try {
    const file = JSON.parse(fromUtf8(bytes)) as Partial<GoldenFile> | null;
    if (typeof file !== 'object' || file === null) throw new TypeError('Golden file: not an object');
    if (typeof file.tolerance !== 'number' || !(file.tolerance >= 0)) throw new TypeError('Golden file: bad tolerance');
    return {
      inputs: decodeMap(file.inputs, 'Golden file: inputs'),
      outputs: decodeMap(file.outputs, 'Golden file: outputs'),
      tolerance: file.tolerance,
    };
  } catch (err) {
    throw new ModelFormatError(`Malformed golden file: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
}
