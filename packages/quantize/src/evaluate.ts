import type { Outputs } from './runtime.js';

/** How far one output of the quantized model is from the fp32 model's, over a set of feeds. */
export interface OutputError {
  /** Output name. */
  output: string;
  /** Largest |int8 - fp32| over all elements. */
  maxAbs: number;
  /** Mean |int8 - fp32|. */
  meanAbs: number;
  /** Mean |fp32|, the scale to read the errors against. */
  refMeanAbs: number;
}

/** Per-output error of `out` against `ref` (same feeds, same order). */
export function compareOutputs(ref: readonly Outputs[], out: readonly Outputs[]): OutputError[] {
  const names = Object.keys(ref[0] ?? {});
  return names.map((output) => {
    let maxAbs = 0;
    let sum = 0;
    let refSum = 0;
    let n = 0;
    ref.forEach((r, k) => {
      const a = r[output]!.data;
      const b = out[k]?.[output]?.data;
      if (!b || b.length !== a.length) throw new Error(`output ${output} differs in size from fp32`);
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i]! - b[i]!);
        if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
        sum += d;
        refSum += Math.abs(a[i]!);
      }
      n += a.length;
    });
    return { output, maxAbs, meanAbs: n ? sum / n : 0, refMeanAbs: n ? refSum / n : 0 };
  });
}

/** The worst relative error over outputs: mean |int8 - fp32| / mean |fp32|. */
export function relativeError(errors: readonly OutputError[]): number {
  return Math.max(0, ...errors.map((e) => (e.refMeanAbs > 0 ? e.meanAbs / e.refMeanAbs : e.meanAbs)));
}

/**
 * Top-1 accuracy: the argmax over the last axis of `output`, row by row through the feeds,
 * against `labels` (one per row).
 */
export function accuracy(outputs: readonly Outputs[], output: string, labels: readonly number[]): number {
  let row = 0;
  let correct = 0;
  for (const o of outputs) {
    const t = o[output];
    if (!t) throw new Error(`no output ${output}`);
    const classes = t.dims[t.dims.length - 1] ?? 1;
    for (let start = 0; start < t.data.length; start += classes, row++) {
      let best = 0;
      for (let k = 1; k < classes; k++) if (t.data[start + k]! > t.data[start + best]!) best = k;
      if (best === labels[row]) correct++;
    }
  }
  if (row !== labels.length) throw new Error(`${labels.length} labels for ${row} rows of ${output}`);
  return row ? correct / row : 0;
}
