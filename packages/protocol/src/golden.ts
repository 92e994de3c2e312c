import { TENSOR_TYPES, type TensorMap, type TensorType } from '@outpost/core';
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

function decodeMap(map: Record<string, EncodedTensor>): TensorMap {
  const out: TensorMap = {};
  for (const [name, e] of Object.entries(map)) {
    if (!TENSOR_TYPES.includes(e.type as TensorType))
      throw new TypeError(`Golden tensor ${name}: unknown type ${e.type}`);
    const type = e.type as TensorType;
    const Ctor = ARRAYS[type];
    const bytes = fromBase64(e.base64);
    if (bytes.length % Ctor.BYTES_PER_ELEMENT !== 0) throw new TypeError(`Golden tensor ${name}: ragged bytes`);
    const data = new Ctor(bytes.buffer, 0, bytes.length / Ctor.BYTES_PER_ELEMENT);
    const count = e.dims.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new TypeError(`Golden tensor ${name}: dims do not match its data`);
    out[name] = { type, dims: e.dims, data };
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

/** Reads a golden file (already verified against its target hash). Throws a TypeError if malformed. */
export function decodeGolden(bytes: Uint8Array): { inputs: TensorMap; outputs: TensorMap; tolerance: number } {
  const file = JSON.parse(fromUtf8(bytes)) as GoldenFile;
  if (typeof file.tolerance !== 'number' || !(file.tolerance >= 0)) throw new TypeError('Golden file: bad tolerance');
  return { inputs: decodeMap(file.inputs), outputs: decodeMap(file.outputs), tolerance: file.tolerance };
}
