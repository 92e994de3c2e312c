import { describe, expect, it } from 'vitest';
import { nonFinite } from './nonfinite.js';

describe('nonFinite', () => {
  it('finds NaN and ±Infinity in float outputs, and nothing in finite or integer ones', () => {
    const f = (data: number[]) => ({
      y: { type: 'float32' as const, data: Float32Array.from(data), dims: [data.length] },
    });
    expect(nonFinite(f([0, -1.5, 3e38]))).toBe(false);
    expect(nonFinite(f([0, Number.NaN]))).toBe(true);
    expect(nonFinite(f([Number.POSITIVE_INFINITY]))).toBe(true);
    expect(nonFinite(f([Number.NEGATIVE_INFINITY, 1]))).toBe(true);
    expect(nonFinite({ n: { type: 'int64', data: BigInt64Array.from([1n]), dims: [1] } })).toBe(false);
    expect(nonFinite({ d: { type: 'float64', data: Float64Array.from([1, Number.NaN]), dims: [2] } })).toBe(true);
  });

  it('costs well under a millisecond for a PP-OCR det map (320×320 floats)', () => {
    const map = {
      m: { type: 'float32' as const, data: new Float32Array(320 * 320).fill(0.5), dims: [1, 1, 320, 320] },
    };
    nonFinite(map);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) nonFinite(map);
    const perRun = (performance.now() - t0) / 100;
    console.log(`nonFinite on 102,400 floats: ${(perRun * 1000).toFixed(1)} µs`);
    expect(perRun).toBeLessThan(1);
  });
});
