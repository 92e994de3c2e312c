import { describe, expect, it } from 'vitest';
import { EVENT } from '@outpost/protocol';
import { binInto, kl, proportions, psi } from './drift.js';
import { Recorder } from './recorder.js';

describe('drift figures', () => {
  it('PSI and KL match values computed by hand', () => {
    // Reference 50/30/20 %, window 30/30/40 %:
    // PSI = (.3-.5)ln(.3/.5) + 0 + (.4-.2)ln(.4/.2) = 0.2·0.5108256 + 0.2·0.6931472 = 0.2407946
    // KL  = .3 ln(.3/.5) + .3 ln 1 + .4 ln 2 = -0.1532477 + 0.2772589 = 0.1240112
    expect(psi([30, 30, 40], [50, 30, 20])).toBeCloseTo(0.2407946, 6);
    expect(kl([30, 30, 40], [50, 30, 20])).toBeCloseTo(0.1240112, 6);
    // Scale does not matter, only proportions; identical distributions give 0.
    expect(psi([3, 3, 4], [500, 300, 200])).toBeCloseTo(0.2407946, 6);
    expect(psi([1, 2, 3], [2, 4, 6])).toBeCloseTo(0, 12);
    expect(kl([1, 2, 3], [2, 4, 6])).toBeCloseTo(0, 12);
  });

  it('an empty bin counts as 1e-4 (finite, large), and the proportions still sum to 1', () => {
    const p = proportions([0, 50, 50]);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    // a = [1e-4, .5, .5] / 1.0001; e = [.5, .3, .2]
    const a = [1e-4 / 1.0001, 0.5 / 1.0001, 0.5 / 1.0001];
    const e = [0.5, 0.3, 0.2];
    const expected = a.reduce((sum, ai, i) => sum + (ai - e[i]!) * Math.log(ai / e[i]!), 0);
    expect(psi([0, 50, 50], [50, 30, 20])).toBeCloseTo(expected, 9);
    expect(Number.isFinite(psi([0, 0, 10], [10, 0, 0]))).toBe(true);
  });

  it('bins values on fixed edges, outliers in the end bins, NaN skipped', () => {
    const counts = new Float64Array(3);
    binInto(counts, [0, 1, 2, 3], new Float32Array([-5, 0, 0.5, 1, 1.99, 2, 3, 99, NaN]));
    expect([...counts]).toEqual([3, 2, 3]);
  });

  it('raises one drift event per window whose PSI passes the threshold, with PSI and KL gauges', () => {
    const rec = new Recorder({ sampleRate: 1, drift: { threshold: 0.2, windowRuns: 10, inputs: false } });
    rec.setReference('m', '1', { tensors: { y: { edges: [0, 1, 2, 3], counts: [50, 30, 20] } } });
    const s = rec.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' });
    // Window 1: 50/30/20 exactly (no drift). Window 2: 30/30/40 (PSI 0.24 > 0.2).
    const run = (values: number[]) => rec.tensors(s, { y: { data: new Float32Array(values) } });
    for (let i = 0; i < 10; i++) run([...Array(5).fill(0.5), ...Array(3).fill(1.5), ...Array(2).fill(2.5)]);
    for (let i = 0; i < 10; i++) run([...Array(3).fill(0.5), ...Array(3).fill(1.5), ...Array(4).fill(2.5)]);
    const { metrics, logs } = rec.collect();
    const psiPoints = metrics.find((m) => m.name === 'outpost.drift.psi')!.gauge!.dataPoints;
    expect(psiPoints.map((p) => p.asDouble)).toEqual([expect.closeTo(0, 9), expect.closeTo(0.2407946, 6)]);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.eventName).toBe(EVENT.drift);
    // A higher threshold: no event for the same window.
    const calm = new Recorder({ sampleRate: 1, drift: { threshold: 0.3, windowRuns: 10, inputs: false } });
    calm.setReference('m', '1', { tensors: { y: { edges: [0, 1, 2, 3], counts: [50, 30, 20] } } });
    const c = calm.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' });
    for (let i = 0; i < 10; i++) {
      calm.tensors(c, {
        y: { data: new Float32Array([...Array(3).fill(0.5), ...Array(3).fill(1.5), ...Array(4).fill(2.5)]) },
      });
    }
    expect(calm.collect().logs).toHaveLength(0);
  });
});
