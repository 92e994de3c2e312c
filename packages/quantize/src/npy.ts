import { CalibrationDataError } from './errors.js';

/** An array read from a .npy file. */
export interface NpyArray {
  /** Element type: the .npy descr `<f4`, `<i4` or `<i8`. */
  dtype: 'float32' | 'int32' | 'int64';
  /** Values in C order. int64 values are converted to numbers. */
  data: Float32Array | Int32Array | Float64Array;
  /** Shape. */
  dims: number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const DTYPES = { '<f4': 'float32', '<i4': 'int32', '<i8': 'int64' } as const;

/**
 * Reads a .npy file (format 1.0–3.0): little-endian float32, int32 or int64, C order.
 * Other layouts are rejected rather than misread.
 */
export function readNpy(bytes: Uint8Array, file?: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new CalibrationDataError('not a .npy file (bad magic)', file);
  }
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shape === undefined) throw new CalibrationDataError(`bad .npy header: ${header}`, file);
  if (fortran === 'True') throw new CalibrationDataError('Fortran-order .npy is not supported', file);
  const dtype = (DTYPES as Record<string, NpyArray['dtype'] | undefined>)[descr];
  if (!dtype) throw new CalibrationDataError(`unsupported .npy dtype ${descr} (need <f4, <i4 or <i8)`, file);
  const dims = shape
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = dims.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  const size = dtype === 'int64' ? 8 : 4;
  if (bytes.length < offset + count * size) throw new CalibrationDataError('truncated .npy data', file);
  // Copy into an aligned buffer: the data offset need not be a multiple of the element size.
  const raw = bytes.slice(offset, offset + count * size).buffer;
  const data =
    dtype === 'float32'
      ? new Float32Array(raw)
      : dtype === 'int32'
        ? new Int32Array(raw)
        : Float64Array.from(new BigInt64Array(raw), Number);
  return { dtype, data, dims };
}

/** Writes a float32 or int32 array as a .npy file (format 1.0, little-endian, C order). */
export function writeNpy(data: Float32Array | Int32Array, dims: readonly number[]): Uint8Array {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  const descr = data instanceof Int32Array ? '<i4' : '<f4';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends with \n.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
