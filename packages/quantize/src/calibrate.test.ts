import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { build, int, vi } from './__tests__/build.js';
import { AbsHistogram, collectRanges, entropyThreshold } from './calibrate.js';
import { UnsupportedModelError } from './errors.js';
import { normalizeModel } from './normalize.js';
import { writeNpy } from './npy.js';
import { readFeedsDir } from './npy-dir.js';
import type { Feeds } from './runtime.js';

// y = Relu(x): ranges of x come from the feed, of y from the model run with y as an output.
const relu = () =>
  build({
    nodes: [
      { opType: 'Relu', name: 'r', input: ['x'], output: ['h'] },
      { opType: 'Neg', name: 'n', input: ['h'], output: ['y'] },
    ],
    inputs: [vi('x', [1, 1000])],
    outputs: [vi('y', [1, 1000])],
  });

const feed = (f: (i: number) => number): Feeds => ({
  x: { type: 'float32', data: Float32Array.from({ length: 1000 }, (_, i) => f(i)), dims: [1, 1000] },
});

describe('collectRanges', () => {
  it('min-max over all runs, for graph inputs and intermediate tensors', async () => {
    const feeds = [feed((i) => i / 1000 - 0.25), feed((i) => (i === 7 ? 3 : 0))];
    const r = await collectRanges(relu(), ['x', 'h', 'y'], feeds, { kind: 'minmax' });
    expect(r.get('x')).toEqual({ min: -0.25, max: 3 });
    expect(r.get('h')).toEqual({ min: 0, max: 3 });
    expect(r.get('y')!.min).toBe(-3);
    expect(r.get('y')!.max === 0).toBe(true); // -0 from Neg(0)
  });

  it('percentile ignores a rare outlier that min-max keeps', async () => {
    const feeds = [feed((i) => (i === 500 ? 100 : (i % 100) / 100))];
    const mm = await collectRanges(relu(), ['h'], feeds, { kind: 'minmax' });
    const pc = await collectRanges(relu(), ['h'], feeds, { kind: 'percentile', percentile: 99.9 });
    expect(mm.get('h')!.max).toBe(100);
    expect(pc.get('h')!.max).toBeCloseTo(0.99, 5);
    expect(pc.get('h')!.min).toBe(0);
  });
});

/** Seeded standard normal values (Box-Muller over a Park-Miller stream). */
function normals(n: number, seed: number): number[] {
  let s = seed;
  const u = () => (s = (s * 16807) % 2147483647) / 2147483647;
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

describe('entropy calibration', () => {
  it('clips rare outliers that min-max keeps, and keeps the bulk of a normal distribution', async () => {
    const feeds = [1, 2, 3, 4, 5, 6, 7, 8].map((seed) => {
      const v = normals(1000, seed);
      if (seed === 3) v[10] = 40; // a few outliers among 8,000 values
      if (seed === 6) v[20] = -35;
      return feed((i) => v[i]!);
    });
    const mm = await collectRanges(relu(), ['x', 'h'], feeds, { kind: 'minmax' });
    const en = await collectRanges(relu(), ['x', 'h'], feeds, { kind: 'entropy' });
    expect(mm.get('x')).toEqual({ min: -35, max: 40 });
    const x = en.get('x')!;
    // Clipped far inside the outliers, yet outside most of N(0, 1) (|x| > 2.5 holds 1.2 %).
    expect(x.max).toBeGreaterThan(2.5);
    expect(x.max).toBeLessThan(10);
    expect(x.min).toBeCloseTo(-x.max, 6); // one threshold for |x|
    const h = en.get('h')!; // after ReLU: one-sided, min 0
    expect(h.min).toBe(0);
    expect(h.max).toBeGreaterThan(2.5);
    expect(h.max).toBeLessThan(10);
  });

  it('ignores exact zeros: a mostly-zero tensor (ReLU output, digit background) keeps its values', () => {
    const sparse = new AbsHistogram();
    sparse.add(Float32Array.from({ length: 20000 }, (_, i) => (i % 10 === 0 ? 0.5 + (i / 20000) * 0.5 : 0)));
    expect(entropyThreshold(sparse.counts, sparse.top, 255)).toBeGreaterThan(0.97 * sparse.top);
  });

  it('does not clip a distribution without a tail', () => {
    const uniform = new AbsHistogram();
    uniform.add(Float32Array.from({ length: 20000 }, (_, i) => (i / 20000) * 2 - 1));
    expect(entropyThreshold(uniform.counts, uniform.top, 128)).toBeGreaterThan(0.97 * uniform.top);
  });

  it('histograms merge exactly when a later run widens the range', () => {
    const a = Float32Array.from({ length: 4096 }, (_, i) => ((i % 512) - 256) / 64); // |x| ≤ 4
    const b = Float32Array.from({ length: 4096 }, (_, i) => ((i % 1024) - 512) / 32); // |x| ≤ 16
    const grown = new AbsHistogram();
    grown.add(a);
    grown.add(b);
    const once = new AbsHistogram();
    once.add(b);
    once.add(a);
    expect(grown.top).toBe(once.top);
    expect(once.top).toBeCloseTo(16, 4);
    expect(Array.from(grown.counts)).toEqual(Array.from(once.counts));
    expect([grown.min, grown.max]).toEqual([-16, 511 / 32]);
  });
});

describe('readFeedsDir', () => {
  it('one .npy per feed for a single-input model, one subfolder per feed for several inputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outpost-feeds-'));
    try {
      writeFileSync(join(dir, 'b.npy'), writeNpy(Float32Array.of(2), [1]));
      writeFileSync(join(dir, 'a.npy'), writeNpy(Float32Array.of(1), [1]));
      writeFileSync(join(dir, 'notes.txt'), 'ignored');
      const single = await readFeedsDir(dir, ['x']);
      expect(single.map((f) => Array.from(f.x!.data))).toEqual([[1], [2]]);

      for (const s of ['s0', 's1']) {
        mkdirSync(join(dir, s));
        writeFileSync(join(dir, s, 'ids.npy'), writeNpy(Float32Array.of(s === 's0' ? 5 : 6), [1]));
        writeFileSync(join(dir, s, 'mask.npy'), writeNpy(Float32Array.of(1, 1), [1, 2]));
      }
      const multi = await readFeedsDir(dir, ['ids', 'mask']);
      expect(multi.map((f) => [f.ids!.data[0], f.mask!.dims])).toEqual([
        [5, [1, 2]],
        [6, [1, 2]],
      ]);
      await expect(readFeedsDir(join(dir, 's0'), ['other', 'x'])).rejects.toThrow(/no subfolders/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('opset upgrade limits', () => {
  it('refuses opset < 11 models that use an op which changed before 11', () => {
    const model = build({
      opset: 9,
      nodes: [{ opType: 'Clip', name: 'c', input: ['x'], output: ['y'], attribute: [int('min', 0)] }],
      inputs: [vi('x', [1])],
      outputs: [vi('y', [1])],
    });
    expect(() => normalizeModel(model)).toThrow(UnsupportedModelError);
  });
});
