import { CalibrationDataError, UnsupportedModelError } from './errors.js';
import type { ProgressEvent } from './quantize.js';
import type { TfjsErrorMetric, TfjsFeed } from './tfjs-measure.js';

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

/** How a float32 weight can be stored: affine 8 or 16 bits per tensor, or IEEE half. */
export type TfjsWeightDtype = 'uint8' | 'uint16' | 'float16';

/** Options of {@link quantizeTfjs}. */
export interface TfjsQuantizeOptions {
  /**
   * `uint8`: affine per tensor (`min`, `scale`, zero exactly representable), ~0.25x float32.
   * `uint16`: the same with 65,536 levels, ~0.5x float32.
   * `float16`: IEEE half, ~0.5x float32.
   */
  dtype: TfjsWeightDtype;
  /**
   * Mixed precision by measurement (`dtype: 'uint8'` only): the largest output error, under
   * `metric`, that the quantized model may show against the source model on `calibration`.
   * Weights whose uint8 form pushes the error past it keep `fallback`; the rest become uint8.
   * Unset: every float32 weight becomes `dtype`.
   */
  tolerance?: number;
  /** Inputs the error is measured on (needed with `tolerance`); 8-16 realistic samples suffice. */
  calibration?: readonly TfjsFeed[];
  /** Held-out inputs: the report gives the error on them too; they do not steer choices. */
  evaluation?: readonly TfjsFeed[];
  /**
   * How outputs are compared (see {@link TfjsErrorMetric}).
   * @defaultValue `'max-abs'`
   */
  metric?: TfjsErrorMetric;
  /**
   * How weights that fail uint8 are stored.
   * @defaultValue `'float16'`
   */
  fallback?: 'float16' | 'uint16';
  /**
   * With `tolerance`: weights with fewer elements than this keep `fallback` without being
   * measured (biases, BN offsets): they weigh little and measuring each costs a model run.
   * TFLite's converter skips weights under 1,024 elements for the same reason.
   * @defaultValue 1024
   */
  minElements?: number;
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
  /** Called as the measurement advances (it runs the model a few hundred times for MoveNet). */
  onProgress?: (event: ProgressEvent) => void;
}

/** Defaults of {@link TfjsQuantizeOptions}. */
export const TFJS_QUANTIZE_DEFAULTS = {
  shardBytes: 4 * 1024 * 1024,
  shardPrefix: 'group1',
  metric: 'max-abs',
  fallback: 'float16',
  minElements: 1024,
} as const;

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
  /** The affine step, for uint8/uint16 weights: the error is at most half of it. */
  scale?: number;
  /**
   * Mixed precision: the output error with this weight alone in uint8 (the rest as in the
   * source). Absent for weights not measured (under `minElements`, or not float32).
   */
  sensitivity?: number;
}

/** What the measured choice found (`tolerance` given). */
export interface TfjsMixedReport {
  tolerance: number;
  metric: TfjsErrorMetric;
  fallback: 'float16' | 'uint16';
  minElements: number;
  /** The TF.js backend the model ran on in Node (`wasm` or `cpu`). */
  backend: string;
  /** Model runs over the calibration set that the choice took. */
  trials: number;
  /** Output error with every float32 weight uint8, on calibration inputs. */
  allUint8Error: number;
  /** Output error with only the small weights (under `minElements`) left at `fallback`. */
  smallKeptError: number;
  /** Output error of the written model, against the source model. */
  error: { calibration: number; evaluation?: number };
  /** With metric `keypoints`: the largest keypoint score difference (not held to the tolerance). */
  scoreError?: { calibration: number; evaluation?: number };
  /** Weights written as uint8 and as `fallback`. */
  uint8: number;
  kept: number;
}

/** The report of {@link quantizeTfjs}. */
export interface TfjsQuantizeReport {
  format: 'tfjs';
  dtype: TfjsWeightDtype;
  /**
   * Bytes of weight shards in and out (model.json not counted); `float32` is what the weights
   * take as plain float32, so `output / float32` is the size against an unquantized model.
   */
  size: { input: number; output: number; ratio: number; float32: number };
  /** Float32 weights re-encoded. */
  quantized: number;
  /** Other weights (int32, bool, string…) copied as they were. */
  untouched: number;
  /** Largest `maxAbsError` over all weights. */
  maxAbsError: number;
  /** Present when the choice was measured (`tolerance`). */
  mixed?: TfjsMixedReport;
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
 * Affine parameters as the TF.js converter picks them, for `levels` − 1 steps (255 for uint8,
 * 65,535 for uint16): the range is widened to hold 0 and nudged so 0 is exactly representable
 * (zero padding and ReLU thresholds stay exact).
 */
export function affineParams(min: number, max: number, levels = 256): { min: number; scale: number } {
  min = Math.min(min, 0);
  max = Math.max(max, 0);
  if (max === min) return { min, scale: 1 };
  const scale = (max - min) / (levels - 1);
  const zero = Math.round(-min / scale);
  return { min: -zero * scale, scale };
}

/** {@link affineParams} for uint8. */
export function uint8Params(min: number, max: number): { min: number; scale: number } {
  return affineParams(min, max, 256);
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

/** One float32 weight encoded as `dtype`: its bytes, its manifest quantization, what TF.js will decode. */
interface Encoded {
  bytes: Uint8Array;
  quantization: NonNullable<TfjsWeightEntry['quantization']>;
  decoded: Float32Array;
  maxAbsError: number;
  scale?: number;
}

function encode(name: string, x: Float32Array, dtype: TfjsWeightDtype): Encoded {
  if (dtype === 'float16') {
    const h = Uint16Array.from(x, toFloat16);
    const decoded = Float32Array.from(h, fromFloat16);
    return { bytes: new Uint8Array(h.buffer), quantization: { dtype }, decoded, maxAbsError: maxDiff(decoded, x) };
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of x) {
    if (!Number.isFinite(v)) throw new UnsupportedModelError(`weight ${name} is not finite`, name);
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const top = dtype === 'uint8' ? 255 : 65535;
  const { min, scale } = affineParams(x.length ? lo : 0, x.length ? hi : 0, top + 1);
  const q = dtype === 'uint8' ? new Uint8Array(x.length) : new Uint16Array(x.length);
  const decoded = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = Math.min(top, Math.max(0, Math.round((x[i]! - min) / scale)));
    q[i] = v;
    decoded[i] = v * scale + min; // as TF.js's decodeWeights computes it
  }
  return {
    bytes: new Uint8Array(q.buffer),
    quantization: { dtype, min, scale },
    decoded,
    maxAbsError: maxDiff(decoded, x),
    scale,
  };
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A weight as read from the input: its entry, bytes, and float32 values if it is float32. */
interface Source {
  entry: TfjsWeightEntry;
  bytes: Uint8Array;
  from: string;
  values?: Float32Array;
}

/**
 * Quantizes a TF.js model's float32 weights to uint8 or uint16 (affine per tensor) or float16,
 * in the weights-manifest format TF.js reads (`quantization: { dtype, min, scale }`). Weights
 * that are already quantized are decoded first, then re-encoded; non-float32 weights are copied
 * as they were. All weights go into one group, split into shards of at most `shardBytes`.
 *
 * With `tolerance` (and `calibration`), uint8 is chosen per weight by measurement: the model
 * runs in Node (TF.js wasm or cpu backend) and weights whose uint8 form moves the outputs past
 * the tolerance keep `fallback` (see {@link TfjsQuantizeOptions.tolerance}).
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
  if (!['uint8', 'uint16', 'float16'].includes(dtype)) throw new RangeError(`dtype must be uint8, uint16 or float16`);
  if (options.tolerance !== undefined) {
    if (dtype !== 'uint8') throw new RangeError('tolerance applies to dtype uint8 only');
    if (!(options.tolerance >= 0)) throw new RangeError('tolerance must be ≥ 0');
    if (!options.calibration?.length) throw new CalibrationDataError('tolerance needs calibration inputs');
  }

  let inputBytes = 0;
  const sources: Source[] = [];
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
      sources.push({ entry, bytes, from, ...(entry.dtype === 'float32' ? { values: decodeFloat(entry, bytes) } : {}) });
    }
    if (offset !== data.length)
      throw new UnsupportedModelError(`the manifest describes ${offset} bytes but the shards hold ${data.length}`);
  }

  const choice = new Map<string, TfjsWeightDtype>();
  const sensitivity = new Map<string, number>();
  let mixed: TfjsMixedReport | undefined;
  if (options.tolerance !== undefined) {
    const { chooseMixed } = await import('./tfjs-mixed.js');
    mixed = await chooseMixed(
      modelJson,
      sources,
      encode,
      options as Required<Pick<TfjsQuantizeOptions, 'tolerance'>> & TfjsQuantizeOptions,
      choice,
      sensitivity,
    );
  } else for (const s of sources) if (s.values) choice.set(s.entry.name, dtype);

  const parts: Uint8Array[] = [];
  const entries: TfjsWeightEntry[] = [];
  const weights: TfjsWeightReport[] = [];
  let quantized = 0;
  let float32Bytes = 0;
  for (const { entry, bytes, from, values } of sources) {
    if (!values) {
      entries.push(entry);
      parts.push(bytes);
      weights.push({ name: entry.name, shape: entry.shape, from, to: from, maxAbsError: 0 });
      float32Bytes += entry.quantization
        ? entry.shape.reduce((a, b) => a * b, 1) * (BYTES[entry.dtype] ?? 4)
        : bytes.length;
      continue;
    }
    float32Bytes += values.length * 4;
    const to = choice.get(entry.name)!;
    const e = encode(entry.name, values, to);
    // The Python converter's `original_dtype` stays; TF.js ignores it either way.
    const original = entry.quantization?.original_dtype;
    const base = { ...entry };
    delete base.quantization;
    entries.push({
      ...base,
      quantization: { ...e.quantization, ...(original !== undefined ? { original_dtype: original } : {}) },
    });
    parts.push(e.bytes);
    const s = sensitivity.get(entry.name);
    weights.push({
      name: entry.name,
      shape: entry.shape,
      from,
      to,
      maxAbsError: e.maxAbsError,
      ...(e.scale !== undefined ? { scale: e.scale } : {}),
      ...(s !== undefined ? { sensitivity: s } : {}),
    });
    quantized++;
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
      size: {
        input: inputBytes,
        output: all.length,
        ratio: inputBytes ? all.length / inputBytes : 1,
        float32: float32Bytes,
      },
      quantized,
      untouched: weights.length - quantized,
      maxAbsError: weights.reduce((m, w) => Math.max(m, w.maxAbsError), 0),
      ...(mixed ? { mixed } : {}),
      weights,
    },
  };
}

/** @internal What {@link quantizeTfjs} hands the mixed-precision search. */
export type { Encoded as TfjsEncoded, Source as TfjsSource };

/** The report of {@link quantizeTfjs} as text for a terminal: totals and the worst weights. */
export function formatTfjsReport(r: TfjsQuantizeReport, worst = 5): string {
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  const num = (n: number) => (n === 0 ? '0' : n.toExponential(2));
  const m = r.mixed;
  const what = m ? `${m.uint8} weights uint8, ${m.kept} ${m.fallback}` : `${r.quantized} weights ${r.dtype}`;
  const lines = [
    `tfjs ${m ? `uint8 mixed with ${m.fallback}` : r.dtype}: weights ${kb(r.size.input)} -> ${kb(r.size.output)} ` +
      `(${r.size.ratio.toFixed(3)}x; ${(r.size.output / r.size.float32).toFixed(3)}x of float32); ` +
      `${what}, ${r.untouched} left as they were; max |err| ${num(r.maxAbsError)}`,
  ];
  if (m) {
    const ev = (e: { evaluation?: number }) => (e.evaluation !== undefined ? `, evaluation ${num(e.evaluation)}` : '');
    lines.push(
      `output error (${m.metric}, tolerance ${num(m.tolerance)}): calibration ${num(m.error.calibration)}${ev(m.error)}; ` +
        `all uint8 ${num(m.allUint8Error)}, uint8 but weights under ${m.minElements} elements ${num(m.smallKeptError)}; ` +
        `${m.trials} runs on TF.js ${m.backend}`,
    );
    if (m.scoreError)
      lines.push(
        `keypoint scores (not held to the tolerance): calibration ${num(m.scoreError.calibration)}${ev(m.scoreError)}`,
      );
    const sensitive = r.weights
      .filter((w) => w.sensitivity !== undefined && w.to !== 'uint8')
      .sort((a, b) => b.sensitivity! - a.sensitivity!)
      .slice(0, worst);
    if (sensitive.length) {
      lines.push(`most sensitive weights (output error alone in uint8), kept ${m.fallback}:`);
      for (const w of sensitive) lines.push(`  ${w.name} [${w.shape.join(', ')}]: ${num(w.sensitivity!)}`);
    }
  }
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
