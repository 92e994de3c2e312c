// Order statistics for timing samples. Medians, not means: a GC pause or another process on
// this shared 2-core machine makes a few calls slow, and the mean would report that noise.

import { mulberry32 } from '@outpost/core';

/** The q-quantile (0..1) of `xs`, by linear interpolation between closest ranks. */
export function quantile(xs, q) {
  if (xs.length === 0) return NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const median = (xs) => quantile(xs, 0.5);

/** `{ n, median, p95 }` of a sample. */
export function summary(xs) {
  return { n: xs.length, median: median(xs), p95: quantile(xs, 0.95) };
}

/**
 * Median of the call-by-call differences `a[i] - b[i]`. The bench interleaves peers, so the
 * i-th calls of two peers ran back to back and saw the same machine state; pairing them cancels
 * most of the drift that a difference of two medians would keep.
 */
export function medianPairedDifference(a, b) {
  const n = Math.min(a.length, b.length);
  const diffs = [];
  for (let i = 0; i < n; i++) diffs.push(a[i] - b[i]);
  return median(diffs);
}

/** The median of each numeric field over a list of records with the same fields. */
export function medianOfFields(records) {
  const keys = new Set(records.flatMap((r) => Object.keys(r)));
  const out = {};
  for (const key of keys) {
    const values = records.map((r) => r[key]).filter((v) => typeof v === 'number');
    if (values.length) out[key] = median(values);
  }
  return out;
}

/**
 * 95% bootstrap interval of `median(a) / median(b)`, resampling whole rounds (the pair
 * `a[i], b[i]`) so the pairing survives. It says whether a ratio just over a target is a
 * real miss or within this machine's noise.
 */
export function ratioInterval(a, b, resamples = 2000) {
  const n = Math.min(a.length, b.length);
  const random = mulberry32(n);
  const ratios = [];
  for (let r = 0; r < resamples; r++) {
    const ra = [];
    const rb = [];
    for (let i = 0; i < n; i++) {
      const k = Math.floor(random() * n);
      ra.push(a[k]);
      rb.push(b[k]);
    }
    ratios.push(median(ra) / median(rb));
  }
  return [quantile(ratios, 0.025), quantile(ratios, 0.975)];
}
