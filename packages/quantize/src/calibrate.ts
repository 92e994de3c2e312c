import type { ModelProto } from './onnx.js';
import { cloneModel, encodeModel, floatValueInfo } from './onnx.js';
import type { Feeds } from './runtime.js';
import { Session } from './runtime.js';

/** How activation ranges are taken from the calibration runs. */
export type CalibrationMethod =
  /** The smallest and largest value seen. */
  | { kind: 'minmax' }
  /**
   * The `percentile`-th and (100 - `percentile`)-th percentiles of each run's values, averaged
   * over runs: ignores rare outliers that would waste the uint8 range.
   */
  | { kind: 'percentile'; percentile: number }
  /**
   * TensorRT's entropy calibration: a histogram of |x| over all runs, and the clipping threshold
   * whose quantized distribution loses the least information (smallest KL divergence from the
   * unclipped one). Clips long tails that min-max keeps, without a percentile to tune.
   */
  | { kind: 'entropy' };

/** An activation's calibrated range. */
export interface Range {
  min: number;
  max: number;
}

/** Values sorted for a percentile: at most this many (a strided sample of larger tensors). */
const PERCENTILE_SAMPLE = 1 << 20;

function percentiles(data: Float32Array, p: number): Range {
  const stride = Math.max(1, Math.ceil(data.length / PERCENTILE_SAMPLE));
  const sample =
    stride === 1
      ? data.slice()
      : Float32Array.from({ length: Math.floor(data.length / stride) }, (_, i) => data[i * stride]!);
  sample.sort();
  const at = (q: number) => sample[Math.min(sample.length - 1, Math.max(0, Math.round(q * (sample.length - 1))))]!;
  return { min: at(1 - p / 100), max: at(p / 100) };
}

function minMax(data: Float32Array): Range {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/** Bins of the |x| histogram entropy calibration searches (TensorRT's choice). */
const ENTROPY_BINS = 2048;

/**
 * |x| of one tensor over all calibration runs, in {@link ENTROPY_BINS} bins over [0, `top`), and
 * its min and max. `top` starts just above the first run's max |x| and doubles (merging bin pairs, which
 * is exact) whenever a later run goes past it, so one pass suffices.
 */
export class AbsHistogram {
  readonly counts = new Float64Array(ENTROPY_BINS);
  top = 0;
  min = Infinity;
  max = -Infinity;

  add(data: Float32Array): void {
    let amax = 0;
    for (const v of data) {
      if (v < this.min) this.min = v;
      if (v > this.max) this.max = v;
      const a = Math.abs(v);
      if (a > amax) amax = a;
    }
    // Just above the max, so the max falls inside [0, top) rather than on its edge, where
    // doubling would move it to another bin than a histogram made at the wider range has it in.
    if (this.top === 0) this.top = amax * (1 + 2 ** -20);
    while (amax > this.top) this.grow();
    if (this.top === 0) return;
    const perBin = ENTROPY_BINS / this.top;
    for (const v of data) {
      // Exact zeros (ReLU's, padding, a digit's background) stay exact at any threshold, so
      // they must not weigh on its choice: counted in, they pull it down to clip real values.
      if (v === 0) continue;
      const b = Math.min(ENTROPY_BINS - 1, Math.floor(Math.abs(v) * perBin));
      this.counts[b]! += 1;
    }
  }

  private grow(): void {
    const c = this.counts;
    for (let i = 0; i < ENTROPY_BINS / 2; i++) c[i] = c[2 * i]! + c[2 * i + 1]!;
    c.fill(0, ENTROPY_BINS / 2);
    this.top *= 2;
  }
}

/** The largest share of (nonzero) values entropy calibration may clip. */
const MAX_CLIPPED = 0.01;

/** Spreads an `eps` of probability onto the zero entries of `p` (normalised), so KL stays finite. */
function smooth(p: Float64Array, eps = 1e-4): Float64Array {
  let zeros = 0;
  for (const v of p) if (v === 0) zeros++;
  const nonzeros = p.length - zeros;
  if (zeros === 0 || nonzeros === 0) return p;
  const take = (eps * zeros) / nonzeros;
  return p.map((v) => (v === 0 ? eps : Math.max(v - take, eps * 1e-3)));
}

/**
 * The |x| threshold with the smallest KL divergence between the histogram clipped there (the
 * tail folded into the last bin) and that clipped histogram quantized to `levels` levels, as
 * TensorRT's calibrator searches it (8-bit inference with TensorRT, GTC 2017). Thresholds below
 * `levels` bins are not tried: they lose nothing to rounding and would clip for free; nor are
 * thresholds that clip more than 1 % of the values.
 */
export function entropyThreshold(counts: Float64Array, top: number, levels: number): number {
  const n = counts.length;
  let last = n;
  while (last > 0 && counts[last - 1] === 0) last--;
  if (last <= levels) return (last / n) * top;
  let best = Infinity;
  let bestEnd = last;
  const p = new Float64Array(n);
  const q = new Float64Array(n);
  let tail = 0;
  for (let i = last; i < n; i++) tail += counts[i]!;
  let mass = 0;
  for (let i = 0; i < n; i++) mass += counts[i]!;
  for (let end = last; end >= levels; end--) {
    if (end < last) tail += counts[end]!;
    // KL(p‖q) cannot see what clipping costs once the clipped part is all p has left near the
    // threshold (a gap below it makes p and q the same spike): clip at most MAX_CLIPPED.
    if (tail > MAX_CLIPPED * mass) break;
    // p: bins [0, end) with everything beyond folded into the last one.
    let total = 0;
    for (let i = 0; i < end; i++) total += p[i] = counts[i]!;
    p[end - 1]! += tail;
    total += tail;
    // q: the same bins merged into `levels` levels, each level's count spread over its nonzero bins.
    let qTotal = 0;
    for (let l = 0; l < levels; l++) {
      const a = Math.floor((l * end) / levels);
      const b = Math.floor(((l + 1) * end) / levels);
      let sum = 0;
      let nonzero = 0;
      for (let i = a; i < b; i++) {
        sum += counts[i]!;
        if (counts[i]! > 0) nonzero++;
      }
      for (let i = a; i < b; i++) qTotal += q[i] = counts[i]! > 0 ? sum / nonzero : 0;
    }
    const ps = smooth(p.subarray(0, end).map((v) => v / total));
    const qs = smooth(q.subarray(0, end).map((v) => v / qTotal));
    let kl = 0;
    for (let i = 0; i < end; i++) if (ps[i]! > 0) kl += ps[i]! * Math.log(ps[i]! / qs[i]!);
    if (kl < best) {
      best = kl;
      bestEnd = end;
    }
  }
  return (Math.min(bestEnd + 0.5, n) / n) * top;
}

/**
 * The entropy-calibrated range of a histogram: [max(min, -t), min(max, t)] for the threshold t.
 * A one-signed tensor (after ReLU, say) gets all 255 uint8 steps on its side, a two-signed one
 * about half on each.
 */
export function entropyRange(h: AbsHistogram): Range {
  if (!(h.max >= h.min)) return { min: 0, max: 0 };
  const oneSided = h.min >= 0 || h.max <= 0;
  const t = entropyThreshold(h.counts, h.top, oneSided ? 255 : 128);
  return { min: Math.max(h.min, -t), max: Math.min(h.max, t) };
}

/**
 * Runs the fp32 model over the calibration feeds with `tensors` added as graph outputs and
 * returns each tensor's range.
 */
export async function collectRanges(
  model: ModelProto,
  tensors: readonly string[],
  feeds: readonly Feeds[],
  method: CalibrationMethod,
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, Range>> {
  const probe = cloneModel(model);
  const graph = probe.graph!;
  const inputs = new Set(graph.input.map((i) => i.name));
  const outputs = new Set(graph.output.map((o) => o.name));
  const fetched = tensors.filter((t) => !inputs.has(t));
  graph.output = [...graph.output, ...fetched.filter((t) => !outputs.has(t)).map(floatValueInfo)];
  const session = await Session.open(encodeModel(probe));
  const perRun = new Map<string, Range[]>(tensors.map((t) => [t, []]));
  const histograms = new Map<string, AbsHistogram>(tensors.map((t) => [t, new AbsHistogram()]));
  try {
    for (const [i, feed] of feeds.entries()) {
      const out = await session.run(feed, fetched);
      for (const t of tensors) {
        const data = out[t]?.data ?? feed[t]?.data;
        if (!data) throw new Error(`calibration: no float32 value for tensor ${t}`);
        if (method.kind === 'entropy') histograms.get(t)!.add(data);
        else perRun.get(t)!.push(method.kind === 'minmax' ? minMax(data) : percentiles(data, method.percentile));
      }
      onProgress?.(i + 1, feeds.length);
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<string, Range>();
  for (const [t, runs] of perRun) {
    ranges.set(
      t,
      method.kind === 'entropy'
        ? entropyRange(histograms.get(t)!)
        : method.kind === 'minmax'
          ? { min: Math.min(...runs.map((r) => r.min)), max: Math.max(...runs.map((r) => r.max)) }
          : {
              min: runs.reduce((a, r) => a + r.min, 0) / runs.length,
              max: runs.reduce((a, r) => a + r.max, 0) / runs.length,
            },
    );
  }
  return ranges;
}
