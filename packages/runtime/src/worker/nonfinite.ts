import type { TensorMap } from '@outpost/core';

/** The error code telemetry records for a sampled run whose outputs hold NaN or ±Infinity. */
export const NONFINITE_OUTPUT = 'NONFINITE_OUTPUT';

/** Whether any float output holds NaN or ±Infinity (one pass over float32/float64 outputs). */
export function nonFinite(outputs: TensorMap): boolean {
  for (const t of Object.values(outputs)) {
    if (t.type !== 'float32' && t.type !== 'float64') continue;
    const d = t.data as Float32Array | Float64Array;
    for (let i = 0; i < d.length; i++) {
      // NaN fails every comparison; ±Infinity fails the second.
      const v = d[i]!;
      if (!(v - v === 0)) return true;
    }
  }
  return false;
}
