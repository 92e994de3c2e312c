import { UnsupportedModelError } from './errors.js';

/**
 * A weight's entry in a TF.js weights manifest (`@tensorflow/tfjs-core` `WeightsManifestEntry`).
 * `original_dtype` is written by the Python converter; TF.js itself ignores it and decodes by
 * `dtype` (float32: `q * scale + min`; int32: `Math.round(q * scale + min)`).
 */
export interface TfjsWeightEntry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  group?: string;
  quantization?: {
    dtype: 'uint8' | 'uint16' | 'float16';
    min?: number;
    scale?: number;
    original_dtype?: string;
  };
}

/** One group of a weights manifest: weights stored back to back across `paths`. */
export interface TfjsWeightsGroup {
  paths: string[];
  weights: TfjsWeightEntry[];
}

/** A TF.js model.json (graph or layers model); fields other than the manifest pass through. */
export interface TfjsModelJson {
  weightsManifest: TfjsWeightsGroup[];
  [key: string]: unknown;
}

/** Options of {@link quantizeTfjs}. */
export interface TfjsQuantizeOptions {
  /**
   * `uint8`: affine per tensor (`min`, `scale`, zero exactly representable), ~0.25x float32.
   * `float16`: IEEE half, ~0.5x float32.
   */
  dtype: 'uint8' | 'float16';
  /**
   * Largest shard written, in bytes.
   * @defaultValue 4 MiB, as `tensorflowjs_converter` writes them
   */
  shardBytes?: number;
  /**
   * Shard file names are `${shardPrefix}-shard{i}of{n}.bin`.
   * @defaultValue `'group1'`
   */
  shardPrefix?: string;
}

/** Defaults of {@link TfjsQuantizeOptions}. */
export const TFJS_QUANTIZE_DEFAULTS = { shardBytes: 4 * 1024 * 1024, shardPrefix: 'group1' } as const;

/** What happened to one weight. */
export interface TfjsWeightReport {
  name: string;
  shape: number[];
  /** How it was stored: `float32`, or the input's quantization dtype. */
  from: string;
  /** How it is stored now (`int32` etc. for weights left untouched). */
  to: string;
  /** Max |new − old| of the values TF.js decodes (0 for untouched weights). */
  maxAbsError: number;
  /** The uint8 step, for uint8 weights: the error is at most half of it. */
  scale?: number;
}

/** The report of {@link quantizeTfjs}. */
export interface TfjsQuantizeReport {
  format: 'tfjs';
  dtype: 'uint8' | 'float16';
  /** Bytes of weight shards in and out (model.json not counted). */
  size: { input: number; output: number; ratio: number };
  /** Float32 weights re-encoded. */
  quantized: number;
  /** Other weights (int32, bool, string…) copied as they were. */
  untouched: number;
  /** Largest `maxAbsError` over all weights. */
  maxAbsError: number;
  weights: TfjsWeightReport[];
}

/** The result of {@link quantizeTfjs}. */
export interface TfjsQuantizeResult {
  modelJson: TfjsModelJson;
  /** The shards named in `modelJson.weightsManifest[0].paths`, in order. */
  shards: { path: string; data: Uint8Array }[];
  report: TfjsQuantizeReport;
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

//#region float16
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of `x`, round to nearest even; beyond ±65504 becomes ±Infinity. */
export function toFloat16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m; // a carry into the exponent is the right bit pattern
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into Infinity: correct
  return sign | h;
}

/** The number whose IEEE half bits are `h`. */
export function fromFloat16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
//#endregion

/**
 * Affine uint8 parameters as the TF.js converter picks them: the range is widened to hold 0
 * and nudged so 0 is exactly representable (zero padding and ReLU thresholds stay exact).
 */
export function uint8Params(min: number, max: number): { min: number; scale: number } {
  min = Math.min(min, 0);
  max = Math.max(max, 0);
  if (max === min) return { min, scale: 1 };
  const scale = (max - min) / 255;
  const zero = Math.round(-min / scale);
  return { min: -zero * scale, scale };
}

function byteLength(entry: TfjsWeightEntry, data: Uint8Array, offset: number): number {
  const size = entry.shape.reduce((a, b) => a * b, 1);
  if (entry.quantization) {
    const b = BYTES[entry.quantization.dtype];
    if (!b) throw new UnsupportedModelError(`unknown quantization ${entry.quantization.dtype}`, entry.name);
    return size * b;
  }
  if (entry.dtype === 'string') {
    // Each string is a uint32 (little-endian) length and its bytes.
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let n = 0;
    for (let i = 0; i < size; i++) n += 4 + view.getUint32(offset + n, true);
    return n;
  }
  const b = BYTES[entry.dtype];
  if (!b) throw new UnsupportedModelError(`unknown weight dtype ${String(entry.dtype)}`, entry.name);
  return size * b;
}

/** The float32 values TF.js decodes from a float32 weight's bytes. */
function decodeFloat(entry: TfjsWeightEntry, bytes: Uint8Array): Float32Array {
  const q = entry.quantization;
  const copy = bytes.slice(); // aligned
  if (!q) return new Float32Array(copy.buffer);
  if (q.dtype === 'float16') return Float32Array.from(new Uint16Array(copy.buffer), fromFloat16);
  if (q.min === undefined || q.scale === undefined)
    throw new UnsupportedModelError(`${q.dtype} weight without min and scale`, entry.name);
  const { min, scale } = q;
  const ints = q.dtype === 'uint8' ? copy : new Uint16Array(copy.buffer);
  return Float32Array.from(ints, (v) => v * scale + min);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Quantizes a TF.js model's float32 weights to uint8 (affine per tensor) or float16, in the
 * weights-manifest format TF.js reads (`quantization: { dtype, min, scale }`). Weights that are
 * already quantized are decoded first, then re-encoded; non-float32 weights are copied as they
 * were. All weights go into one group, split into shards of at most `shardBytes`.
 *
 * @param readShard - returns the bytes of a shard named in the manifest's `paths`.
 */
export async function quantizeTfjs(
  modelJson: TfjsModelJson,
  readShard: (path: string) => Uint8Array | Promise<Uint8Array>,
  options: TfjsQuantizeOptions,
): Promise<TfjsQuantizeResult> {
  const { dtype } = options;
  const shardBytes = options.shardBytes ?? TFJS_QUANTIZE_DEFAULTS.shardBytes;
  const prefix = options.shardPrefix ?? TFJS_QUANTIZE_DEFAULTS.shardPrefix;
  if (!Array.isArray(modelJson.weightsManifest)) throw new UnsupportedModelError('model.json has no weightsManifest');
  if (!(shardBytes > 0)) throw new RangeError('shardBytes must be > 0');

  let inputBytes = 0;
  const parts: Uint8Array[] = [];
  const entries: TfjsWeightEntry[] = [];
  const weights: TfjsWeightReport[] = [];
  let quantized = 0;
  for (const group of modelJson.weightsManifest) {
    const files: Uint8Array[] = [];
    for (const p of group.paths) files.push(await readShard(p));
    const data = concat(files);
    inputBytes += data.length;
    let offset = 0;
    for (const entry of group.weights) {
      const n = byteLength(entry, data, offset);
      if (offset + n > data.length)
        throw new UnsupportedModelError(`weight ${entry.name} runs past the end of its shards`, entry.name);
      const bytes = data.subarray(offset, offset + n);
      offset += n;
      const from = entry.quantization?.dtype ?? entry.dtype;
      if (entry.dtype !== 'float32') {
        entries.push(entry);
        parts.push(bytes);
        weights.push({ name: entry.name, shape: entry.shape, from, to: from, maxAbsError: 0 });
        continue;
      }
      const x = decodeFloat(entry, bytes);
      // The Python converter's `original_dtype` stays; TF.js ignores it either way.
      const original = entry.quantization?.original_dtype;
      const keep = original !== undefined ? { original_dtype: original } : {};
      const base = { ...entry };
      delete base.quantization;
      quantized++;
      const toHalf = () => {
        const h = Uint16Array.from(x, toFloat16);
        let maxAbsError = 0;
        for (let i = 0; i < x.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(fromFloat16(h[i]!) - x[i]!));
        entries.push({ ...base, quantization: { dtype: 'float16', ...keep } });
        parts.push(new Uint8Array(h.buffer));
        weights.push({ name: entry.name, shape: entry.shape, from, to: 'float16', maxAbsError });
      };
      if (dtype === 'float16') {
        toHalf();
        continue;
      }
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of x) {
        if (!Number.isFinite(v)) throw new UnsupportedModelError(`weight ${entry.name} is not finite`, entry.name);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const { min, scale } = uint8Params(x.length ? lo : 0, x.length ? hi : 0);
      const q = new Uint8Array(x.length);
      let maxAbsError = 0;
      for (let i = 0; i < x.length; i++) {
        const v = Math.min(255, Math.max(0, Math.round((x[i]! - min) / scale)));
        q[i] = v;
        maxAbsError = Math.max(maxAbsError, Math.abs(Math.fround(v * scale + min) - x[i]!));
      }
      entries.push({ ...base, quantization: { dtype: 'uint8', min, scale, ...keep } });
      parts.push(q);
      weights.push({ name: entry.name, shape: entry.shape, from, to: 'uint8', maxAbsError, scale });
    }
    if (offset !== data.length)
      throw new UnsupportedModelError(`the manifest describes ${offset} bytes but the shards hold ${data.length}`);
  }

  const all = concat(parts);
  const count = Math.max(1, Math.ceil(all.length / shardBytes));
  const shards = Array.from({ length: count }, (_, i) => ({
    path: `${prefix}-shard${i + 1}of${count}.bin`,
    data: all.slice(i * shardBytes, (i + 1) * shardBytes),
  }));
  return {
    modelJson: { ...modelJson, weightsManifest: [{ paths: shards.map((s) => s.path), weights: entries }] },
    shards,
    report: {
      format: 'tfjs',
      dtype,
      size: { input: inputBytes, output: all.length, ratio: inputBytes ? all.length / inputBytes : 1 },
      quantized,
      untouched: weights.length - quantized,
      maxAbsError: weights.reduce((m, w) => Math.max(m, w.maxAbsError), 0),
      weights,
    },
  };
}

/** The report of {@link quantizeTfjs} as text for a terminal: totals and the worst weights. */
export function formatTfjsReport(r: TfjsQuantizeReport, worst = 5): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const num = (n: number) => (n === 0 ? '0' : n.toExponential(2));
  const lines = [
    `tfjs ${r.dtype}: weights ${kb(r.size.input)} -> ${kb(r.size.output)} (${r.size.ratio.toFixed(3)}x); ` +
      `${r.quantized} weights ${r.dtype}, ${r.untouched} left as they were; max |err| ${num(r.maxAbsError)}`,
  ];
  const top = r.weights
    .filter((w) => w.maxAbsError > 0)
    .sort((a, b) => b.maxAbsError - a.maxAbsError)
    .slice(0, worst);
  if (top.length) {
    lines.push('largest errors:');
    for (const w of top)
      lines.push(
        `  ${w.name} [${w.shape.join(', ')}] ${w.from} -> ${w.to}: max |err| ${num(w.maxAbsError)}` +
          (w.scale !== undefined ? ` (scale ${num(w.scale)})` : ''),
      );
  }
  return lines.join('\n');
}
