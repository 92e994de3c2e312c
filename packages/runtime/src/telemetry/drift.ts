/**
 * Drift figures of one window: fixed-bin histograms of a tensor's values compared with the
 * reference histogram on the same edges.
 *
 * Both are turned into proportions with an epsilon in empty bins (so a bin that is empty on one
 * side gives a large but finite term, as is usual for PSI), then
 *   PSI = Σ (a_i - e_i) · ln(a_i / e_i)      (symmetric; > 0.2 is the usual "shifted")
 *   KL  = Σ a_i · ln(a_i / e_i)              (KL(actual ‖ reference), in nats)
 */

/** Proportion given to an empty bin. */
export const EMPTY_BIN = 1e-4;

/** Counts as proportions, empty bins set to {@link EMPTY_BIN}, renormalised to sum to 1. */
export function proportions(counts: ArrayLike<number>): number[] {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  const raw = Array.from(counts, (c) => (total > 0 && c > 0 ? c / total : EMPTY_BIN));
  const sum = raw.reduce((a, b) => a + b, 0);
  return raw.map((p) => p / sum);
}

/** Population stability index of `actual` against `expected` (counts on the same bins). */
export function psi(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new RangeError('PSI needs histograms on the same bins');
  const a = proportions(actual);
  const e = proportions(expected);
  let out = 0;
  for (let i = 0; i < a.length; i++) out += (a[i]! - e[i]!) * Math.log(a[i]! / e[i]!);
  return out;
}

/** KL divergence KL(actual ‖ expected), nats. */
export function kl(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new RangeError('KL needs histograms on the same bins');
  const a = proportions(actual);
  const e = proportions(expected);
  let out = 0;
  for (let i = 0; i < a.length; i++) out += a[i]! * Math.log(a[i]! / e[i]!);
  return out;
}

/**
 * Adds every value of `data` to `counts` on `edges` (ascending; `counts.length` =
 * `edges.length - 1`). Values below or above the edges fall in the first or last bin; NaN is
 * skipped. Binary search: a few comparisons per value.
 */
export function binInto(counts: Float64Array, edges: readonly number[], data: ArrayLike<number | bigint>): void {
  const last = counts.length - 1;
  for (let i = 0; i < data.length; i++) {
    const v = Number(data[i]);
    if (v !== v) continue;
    let lo = 0;
    let hi = last;
    // Invariant: the bin is in [lo, hi]; bin k covers [edges[k], edges[k+1]).
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (v >= edges[mid]!) lo = mid;
      else hi = mid - 1;
    }
    counts[lo] = counts[lo]! + 1;
  }
}
