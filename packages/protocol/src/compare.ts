import type { Targets } from './metadata.js';
import { assertSafeName, comparePath } from './paths.js';

/**
 * How a version's outputs are compared with the live model's when it runs as a shadow: signed
 * by the offline targets role with the release (the target file
 * `models/<name>/<version>/compare.json`), like the rollout plan, so the online channels key
 * can point a shadow at a version but never change how it is judged. Integers only (canonical
 * JSON has no floats): thresholds are in thousandths.
 *
 * - `top1`: a classifier. 1 when the arg max of `output` (per row of its last axis) is the same
 *   in both, else 0; with a batch, the share of rows that agree.
 * - `maxabs`: 1 when the largest absolute difference over `output` is at most
 *   `thresholdMilli / 1000`, else 0.
 * - `iou`: maps (segmentation, text probability). Both are binarised at `thresholdMilli / 1000`
 *   and the score is the intersection over union of the two masks (1 when both are empty).
 */
export interface CompareSpec {
  metric: 'top1' | 'maxabs' | 'iou';
  /** The output tensor compared. */
  output: string;
  /** `maxabs`: tolerance; `iou`: binarisation threshold; both in thousandths. Unused by `top1`. */
  thresholdMilli?: number;
}

/** A comparison spec as the targets role signs it (`custom.outpost` of its target file). */
export interface CompareInfo extends CompareSpec {
  kind: 'compare';
  model: string;
  version: string;
}

const METRICS = ['top1', 'maxabs', 'iou'] as const;

/** Checks a spec's shape and returns only its known fields; throws a TypeError naming what is wrong. */
export function checkCompareSpec(raw: unknown): CompareSpec {
  const c = (raw ?? {}) as Record<string, unknown>;
  if (!METRICS.includes(c.metric as CompareSpec['metric'])) {
    throw new TypeError(`A comparison metric is one of ${METRICS.join(', ')}`);
  }
  if (typeof c.output !== 'string') throw new TypeError('A comparison names the output it compares');
  assertSafeName(c.output, 'output name');
  const spec: CompareSpec = { metric: c.metric as CompareSpec['metric'], output: c.output };
  if (spec.metric !== 'top1') {
    const t = c.thresholdMilli;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 0) {
      throw new TypeError(`A ${spec.metric} comparison needs thresholdMilli, a whole number of thousandths`);
    }
    spec.thresholdMilli = t;
  }
  return spec;
}

/**
 * Reads `outpost publish --compare`: `top1:<output>`, `maxabs:<output>:<thousandths>` or
 * `iou:<output>:<thousandths>` (e.g. `iou:maps:300`: maps binarised at 0.3).
 */
export function parseCompareSpec(text: string): CompareSpec {
  const [metric, output, threshold, ...rest] = text.split(':');
  if (rest.length) throw new TypeError(`Cannot read the comparison "${text}"`);
  const raw: Record<string, unknown> = { metric, output };
  if (threshold !== undefined) {
    if (!/^\d+$/.test(threshold)) throw new TypeError(`The threshold of "${text}" is in thousandths, a whole number`);
    raw.thresholdMilli = Number(threshold);
  }
  return checkCompareSpec(raw);
}

/** The signed comparison spec of `model@version`, or null when its release has none (or an unreadable one). */
export function compareSpecOf(targets: Targets, model: string, version: string): CompareSpec | null {
  const o = targets.targets[comparePath(model, version)]?.custom?.outpost;
  if (o?.kind !== 'compare' || o.model !== model || o.version !== version) return null;
  try {
    return checkCompareSpec(o);
  } catch {
    return null;
  }
}

/** A tensor as the comparison reads it: any numeric typed array and its dims. */
export interface ComparedTensor {
  data: ArrayLike<number | bigint>;
  dims: readonly number[];
}

/** Arg max of each row (rows along the last axis); -1 for a row holding a NaN, which agrees with nothing. */
function argmaxRows(t: ComparedTensor): Int32Array {
  const n = t.data.length;
  const width = t.dims.length ? Math.max(1, t.dims[t.dims.length - 1]!) : n;
  const rows = Math.max(1, Math.floor(n / width));
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = -Infinity;
    let at = 0;
    for (let i = 0; i < width; i++) {
      const v = Number(t.data[r * width + i]!);
      if (Number.isNaN(v)) {
        at = -1;
        break;
      }
      if (v > best) {
        best = v;
        at = i;
      }
    }
    out[r] = at;
  }
  return out;
}

/**
 * The agreement of a shadow's output with the live model's on one input, from 0 (none) to 1
 * (full), as the spec says. Outputs of different sizes, or a missing output, score 0: a
 * candidate that cannot answer in the live model's shape does not agree with it. NaN never agrees.
 */
export function agreement(
  spec: CompareSpec,
  live: ComparedTensor | undefined,
  shadow: ComparedTensor | undefined,
): number {
  if (!live || !shadow || live.data.length !== shadow.data.length || live.data.length === 0) return 0;
  const t = (spec.thresholdMilli ?? 0) / 1000;
  if (spec.metric === 'top1') {
    const a = argmaxRows(live);
    const b = argmaxRows(shadow);
    let same = 0;
    for (let i = 0; i < a.length; i++) if (a[i] === b[i] && a[i] !== -1) same++;
    return same / a.length;
  }
  if (spec.metric === 'maxabs') return maxAbsDiff(live, shadow) <= t ? 1 : 0;
  return iou(live, shadow, t);
}

/** The largest absolute difference between two outputs of the same size (Infinity with a NaN). */
export function maxAbsDiff(a: ComparedTensor, b: ComparedTensor): number {
  let max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(Number(a.data[i]!) - Number(b.data[i]!));
    if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
  }
  return max;
}

/** Intersection over union of two maps binarised at `threshold` (above it is in); 1 when both are empty. */
export function iou(a: ComparedTensor, b: ComparedTensor, threshold: number): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = Number(a.data[i]!) > threshold;
    const y = Number(b.data[i]!) > threshold;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union === 0 ? 1 : inter / union;
}
