import { describe, expect, it } from 'vitest';
import { buildBytes, floatTensor, randomValues, vi } from './__tests__/build.js';
import type { GraphSpec } from './__tests__/build.js';
import { compareOutputs, relativeError } from './evaluate.js';
import { DataType, decodeModel, encodeModel, floatData } from './onnx.js';
import { quantize } from './quantize.js';
import { formatReport } from './report.js';
import type { Feeds } from './runtime.js';
import { runAll } from './runtime.js';
import { weightSensitivity } from './sensitivity.js';
import { dequantizedWeight, quantizeWeights, weightTensors } from './weights.js';

const C = 64;

/**
 * Two 1x1 convs, C -> C. `reparam` is what re-parameterised blocks (MobileOne, RepVGG) leave:
 * an identity branch folded into the diagonal (1.0, output channels 1…) beside small learned
 * weights (±0.004), fed by an input whose channel 0 is 100x the others (as after a batch norm
 * with a large scale). Per-channel int8 takes its scale from the diagonal, so the small weights
 * round to 0 or ±1/127, and input channel 0's share of each output is badly off. `plain` and
 * `plain2` are uniform [-1, 1) weights, where int8 is accurate.
 */
function reparamSpec(): GraphSpec {
  const small = randomValues(C * C, 5);
  const reparam = Float32Array.from(small, (v, i) => (i > 0 && i % (C + 1) === 0 ? 1 : v * 0.004));
  return {
    nodes: [
      { opType: 'Conv', name: 'conv_reparam', input: ['x', 'reparam'], output: ['h'] },
      { opType: 'Conv', name: 'conv_plain', input: ['h', 'plain'], output: ['g'] },
      { opType: 'Conv', name: 'conv_plain2', input: ['g', 'plain2'], output: ['y'] },
    ],
    initializers: [
      floatTensor('reparam', [C, C, 1, 1], reparam),
      floatTensor('plain', [C, C, 1, 1], randomValues(C * C, 9)),
      floatTensor('plain2', [C, C, 1, 1], randomValues(C * C, 11)),
    ],
    inputs: [vi('x', [1, C, 2, 2])],
    outputs: [vi('y', [1, C, 2, 2])],
  };
}

function feeds(n: number, seed: number): Feeds[] {
  return Array.from({ length: n }, (_, k) => {
    const data = randomValues(C * 4, seed + k);
    for (let i = 0; i < 4; i++) data[i] = data[i]! * 100; // channel 0, NCHW
    return { x: { type: 'float32' as const, data, dims: [1, C, 2, 2] } };
  });
}

describe('weight sensitivity', () => {
  it('dequantizedWeight gives what onnxruntime computes from the int8 weight (Cast + Mul folded)', async () => {
    const spec = reparamSpec();
    const f = feeds(2, 1);
    const q = decodeModel(buildBytes(spec));
    quantizeWeights(q);
    const fake = decodeModel(buildBytes(spec));
    for (const w of weightTensors(fake)) {
      const t = fake.graph!.initializer.find((i) => i.name === w.name)!;
      const d = dequantizedWeight(floatData(t), w.dims, w.axis);
      t.rawData = new Uint8Array(d.buffer);
    }
    const [a, b] = [await runAll(encodeModel(q), f), await runAll(encodeModel(fake), f)];
    expect(compareOutputs(a, b)[0]!.maxAbs).toBe(0);
  });

  it('weightTensors lists each int8 candidate once, with its channel axis and op', () => {
    const w = weightTensors(decodeModel(buildBytes(reparamSpec())));
    expect(w.map((x) => [x.name, x.axis, x.ops, x.elements])).toEqual([
      ['reparam', 0, ['Conv'], C * C],
      ['plain', 0, ['Conv'], C * C],
      ['plain2', 0, ['Conv'], C * C],
    ]);
  });

  it('ranks the re-parameterised weight first: int8 on it alone costs far more than on the plain ones', async () => {
    const bytes = buildBytes(reparamSpec());
    const f = feeds(4, 1);
    const s = await weightSensitivity(bytes, f, await runAll(bytes, f));
    expect(s[0]!.name).toBe('reparam');
    expect(s.map((x) => x.name).sort()).toEqual(['plain', 'plain2', 'reparam']);
    expect(s[0]!.relativeError).toBeGreaterThan(10 * s[1]!.relativeError);
    // The measurement leaves the model as it was: measured again, the same figures.
    expect(await weightSensitivity(bytes, f, await runAll(bytes, f))).toEqual(s);
  });
});

describe('quantize keepFloat', () => {
  const model = buildBytes(reparamSpec());
  const calibration = feeds(4, 1);
  const heldOut = feeds(8, 100);

  async function heldOutError(out: Uint8Array) {
    return relativeError(compareOutputs(await runAll(model, heldOut), await runAll(out, heldOut)));
  }

  it('keeps the harmful weight fp32, the other int8, and the error drops on inputs it never saw', async () => {
    const { model: out, report } = await quantize(model, {
      mode: 'weights',
      calibration,
      keepFloat: { maxSizeRatio: 1 },
    });
    const inits = decodeModel(out).graph!.initializer;
    expect(inits.find((t) => t.name === 'reparam')?.dataType).toBe(DataType.FLOAT);
    expect(inits.find((t) => t.name === 'plain_quantized')?.dataType).toBe(DataType.INT8);
    expect(inits.find((t) => t.name === 'plain2_quantized')?.dataType).toBe(DataType.INT8);
    expect(report.weights.tensors).toBe(2);
    const k = report.keepFloat!;
    expect(k.weights.map((w) => [w.name, w.float])).toEqual([
      ['reparam', true],
      [expect.stringMatching(/^plain/), false],
      [expect.stringMatching(/^plain/), false],
    ]);
    expect(k.weights[1]!.reason).toMatch(/below 0.1 of the all-int8 error/);
    expect(k.relativeError).toBeLessThan(k.allInt8RelativeError / 5);
    expect(k.weights[0]!.keptRelativeError).toBe(k.relativeError);

    const { model: allInt8 } = await quantize(model, { mode: 'weights', calibration, keepFloat: false });
    expect(await heldOutError(out)).toBeLessThan((await heldOutError(allInt8)) / 5);
    expect(formatReport(report)).toMatch(/reparam\s+Conv\s+4096\s+\S+\s+\S+\s+fp32/);
  });

  it('stays within the size budget: with the default 0.35x nothing fits here, and the report says so', async () => {
    const { model: out, report } = await quantize(model, { mode: 'weights', calibration });
    expect(out.length).toBeLessThanOrEqual(0.35 * model.length);
    expect(report.keepFloat!.weights[0]!.float).toBe(false);
    expect(report.keepFloat!.weights[0]!.reason).toMatch(/over the size budget/);
    expect(report.weights.tensors).toBe(3);
  });

  it('keeps nothing where every weight costs about the same (no outlier)', async () => {
    const plain = reparamSpec();
    plain.initializers![0] = floatTensor('reparam', [C, C, 1, 1], randomValues(C * C, 13));
    const { report } = await quantize(buildBytes(plain), {
      mode: 'weights',
      calibration,
      keepFloat: { maxSizeRatio: 1 },
    });
    expect(report.keepFloat!.weights.filter((w) => w.float)).toEqual([]);
    // Each costs a third of the error, so the share rule alone would try them; the median rule stops it.
    expect(report.keepFloat!.weights.some((w) => /median/.test(w.reason))).toBe(true);
    expect(report.weights.tensors).toBe(3);
  });

  it('keepFloat: false, or no calibration inputs, makes every weight int8 and measures nothing', async () => {
    for (const options of [{ calibration, keepFloat: false as const }, {}]) {
      const { report } = await quantize(model, { mode: 'weights', ...options });
      expect(report.keepFloat).toBeUndefined();
      expect(report.weights.tensors).toBe(3);
    }
  });
});
