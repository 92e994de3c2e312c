import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { digitFeeds, digitsModel, digitsSplit } from './__tests__/digits.js';
import type { DigitSet } from './__tests__/digits.js';
import { decodeModel } from './onnx.js';
import { quantize } from './quantize.js';
import { formatReport } from './report.js';
import { runAll, timeInterleaved } from './runtime.js';

// The committed fixtures: one correctly classified test digit per class, with fp32 outputs.
const sample = JSON.parse(readFileSync(new URL('../../../models/digits/sample.json', import.meta.url), 'utf8')) as {
  samples: { label: number; input: number[]; logits: number[] }[];
};

describe('digits end to end', () => {
  let train: DigitSet;
  let test: DigitSet;
  const model = digitsModel();

  beforeAll(() => {
    ({ train, test } = digitsSplit());
  });

  const options = () => ({
    // 256 training digits calibrate; all 2,000 test digits evaluate.
    calibration: digitFeeds(train, 32, 256),
    evaluation: { feeds: digitFeeds(test, 500), labels: test.labels },
    labelOutput: 'logits',
    timingRuns: 0,
  });

  for (const mode of ['weights', 'qdq'] as const) {
    it(`${mode}: ≤ 0.35x the size, accuracy on the 2,000 test digits within 0.5 points, sample digits right`, async () => {
      const { model: out, report } = await quantize(model, { ...options(), mode });
      expect(out.length).toBeLessThanOrEqual(0.35 * model.length);
      expect(report.size).toEqual({ input: model.length, output: out.length, ratio: out.length / model.length });
      expect(report.accuracy!.samples).toBe(2000);
      expect(report.accuracy!.fp32).toBeCloseTo(0.981, 3); // models/digits/README.md
      expect(Math.abs(report.accuracy!.int8 - report.accuracy!.fp32)).toBeLessThanOrEqual(0.005);

      const ops = decodeModel(out).graph!.node.map((n) => n.opType);
      if (mode === 'weights') {
        // Weight-only uses Cast + Mul (constant-folded by ORT), never DequantizeLinear.
        expect(ops.filter((o) => o === 'Cast').length).toBe(4);
        expect(ops).not.toContain('DequantizeLinear');
        expect(ops).not.toContain('QuantizeLinear');
        expect(report.qdqNodes).toEqual([]);
      } else {
        expect(report.qdqNodes.sort()).toEqual(['conv1', 'conv2', 'fc1', 'logits']);
        expect(ops.filter((o) => o === 'DequantizeLinear').length).toBeGreaterThanOrEqual(4 + 4 + 5);
        expect(ops).not.toContain('Cast');
        expect(ops.filter((o) => o === 'QuantizeLinear').length).toBeGreaterThanOrEqual(5);
      }
      const feeds = sample.samples.map((s) => ({
        x: { type: 'float32' as const, data: Float32Array.from(s.input), dims: [1, 1, 28, 28] },
      }));
      const outs = await runAll(out, feeds);
      outs.forEach((o, i) => {
        const logits = Array.from(o.logits!.data);
        expect(logits.indexOf(Math.max(...logits))).toBe(sample.samples[i]!.label);
      });
      expect(formatReport(report)).toContain(`mode ${mode}`);
    });
  }

  it('auto: measures each op group and is not slower than fp32', async () => {
    const { model: out, report } = await quantize(model, { ...options(), mode: 'auto', timingRuns: 40 });
    expect(report.groups.map((g) => g.group).sort()).toEqual(['Conv', 'Gemm']);
    expect(report.weightOnlyRelativeError).toBeGreaterThan(0);
    expect(report.weightOnlyRelativeError).toBeLessThan(0.05);
    for (const g of report.groups) {
      expect(g.int8Ms).toBeGreaterThan(0);
      const wins = g.baselineMs / g.int8Ms >= 1.05 && g.relativeError <= report.weightOnlyRelativeError! + 0.05;
      // A winning group is kept unless the combined model then lost to fp32 (reason says so).
      expect(g.qdq).toBe(wins && !g.reason.includes('dropped'));
    }
    expect(Math.abs(report.accuracy!.int8 - report.accuracy!.fp32)).toBeLessThanOrEqual(0.005);
    // Timing on a shared machine: CI once measured 0.70 for two models of equal compute (nothing
    // chosen, weight-only folds to fp32) while other test files ran. As the quantizer itself does
    // before it drops a choice, a loss must reproduce: up to two more interleaved timings.
    const speedups = [report.timing!.speedup];
    while (speedups.length < 3 && Math.max(...speedups) <= 0.85) {
      const [fp32Ms, int8Ms] = await timeInterleaved(model, out, options().calibration[0]!, 40);
      speedups.push(fp32Ms / int8Ms);
    }
    expect(Math.max(...speedups)).toBeGreaterThan(0.85);
  });
});
