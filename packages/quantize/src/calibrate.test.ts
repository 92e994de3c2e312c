import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { build, int, vi } from './__tests__/build.js';
import { collectRanges } from './calibrate.js';
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
