import { describe, expect, it } from 'vitest';
import { build, buildBytes, floatTensor, int, randomValues, vi } from './__tests__/build.js';
import type { GraphSpec } from './__tests__/build.js';
import { collectRanges } from './calibrate.js';
import { compareOutputs, relativeError } from './evaluate.js';
import { DataType, encodeModel, floatData, getIntAttribute } from './onnx.js';
import type { ModelProto } from './onnx.js';
import { insertQdq, qdqCandidates, qdqTensors } from './qdq.js';
import { runAll } from './runtime.js';
import type { Feeds } from './runtime.js';
import { quantizeWeights } from './weights.js';

const feed = (dims: number[], seed: number, scale = 1): Feeds => ({
  x: {
    type: 'float32',
    data: randomValues(
      dims.reduce((a, b) => a * b),
      seed,
    ).map((v) => v * scale),
    dims,
  },
});

async function qdq(spec: GraphSpec, dims: number[]) {
  const bytes = buildBytes(spec);
  const model = build(spec);
  const weights = quantizeWeights(model, 'all');
  const candidates = qdqCandidates(model, weights);
  const calibration = [1, 2, 3].map((s) => feed(dims, s));
  const ranges = await collectRanges(build(spec), qdqTensors(candidates), calibration, { kind: 'minmax' });
  insertQdq(model, { nodes: new Set(candidates.map((n) => n.name)), ranges, weights });
  const out = encodeModel(model);
  const evalFeeds = [feed(dims, 9)];
  const err = relativeError(compareOutputs(await runAll(bytes, evalFeeds), await runAll(out, evalFeeds)));
  return { model, candidates, ranges, err };
}

const init = (m: ModelProto, name: string) => m.graph!.initializer.find((t) => t.name === name)!;
const node = (m: ModelProto, output: string) => m.graph!.node.find((n) => n.output.includes(output))!;

/** Asserts the DQ(x) + DQ(w) [+ DQ(b)] → op → Q → DQ pattern around `opName`. */
function expectQdqPattern(m: ModelProto, opName: string, withBias: boolean) {
  const op = m.graph!.node.find((n) => n.name === opName)!;
  const producers = op.input.filter(Boolean).map((i) => node(m, i).opType);
  expect(producers).toEqual(
    withBias ? ['DequantizeLinear', 'DequantizeLinear', 'DequantizeLinear'] : ['DequantizeLinear', 'DequantizeLinear'],
  );
  // The activation DQ reads a QuantizeLinear with uint8 zero point.
  const dqx = node(m, op.input[0]!);
  expect(node(m, dqx.input[0]!).opType).toBe('QuantizeLinear');
  expect(init(m, dqx.input[2]!).dataType).toBe(DataType.UINT8);
  // The output goes through Q → DQ before anything reads it.
  const consumers = m.graph!.node.filter((n) => n.input.includes(op.output[0]!));
  expect(consumers.map((n) => n.opType)).toEqual(['QuantizeLinear']);
  if (withBias) {
    const dqb = node(m, op.input[2]!);
    expect(init(m, dqb.input[0]!).dataType).toBe(DataType.INT32);
  }
}

describe('insertQdq (static QDQ INT8)', () => {
  it('Conv: DQ(x) + DQ(w) + DQ(int32 bias) → Conv → Q → DQ, bias scale = x scale × w scale', async () => {
    const spec: GraphSpec = {
      nodes: [
        { opType: 'Conv', name: 'conv', input: ['x', 'w', 'b'], output: ['c'], attribute: [] },
        { opType: 'Relu', name: 'relu', input: ['c'], output: ['y'] },
      ],
      initializers: [floatTensor('w', [4, 3, 3, 3], randomValues(108, 3)), floatTensor('b', [4], [0.5, -0.5, 0.25, 0])],
      inputs: [vi('x', [1, 3, 8, 8])],
      outputs: [vi('y', [1, 4, 6, 6])],
    };
    const { model, ranges, err } = await qdq(spec, [1, 3, 8, 8]);
    expectQdqPattern(model, 'conv', true);
    const xScale = floatData(init(model, 'x_act_scale'))[0]!;
    const r = ranges.get('x')!;
    expect(xScale).toBeCloseTo((Math.max(0, r.max) - Math.min(0, r.min)) / 255, 7);
    const wScale = floatData(init(model, 'w_scale'));
    const bScale = floatData(init(model, 'conv_bias_scale'));
    bScale.forEach((s, c) => expect(s).toBeCloseTo(xScale * wScale[c]!, 9));
    const bq = new Int32Array(Uint8Array.from(init(model, 'conv_bias_quantized').rawData).buffer);
    expect(bq[0]).toBe(Math.round(0.5 / bScale[0]!));
    expect(getIntAttribute(node(model, 'conv_bias'), 'axis', -1)).toBe(0);
    expect(model.graph!.initializer.some((t) => t.name === 'b')).toBe(false); // fp32 bias dropped
    expect(err).toBeLessThan(0.03);
  });

  it('MatMul chain: a quantized output feeding the next MatMul is not quantized twice', async () => {
    const spec: GraphSpec = {
      nodes: [
        { opType: 'MatMul', name: 'mm1', input: ['x', 'w1'], output: ['h'] },
        { opType: 'MatMul', name: 'mm2', input: ['h', 'w2'], output: ['y'] },
      ],
      initializers: [
        floatTensor('w1', [16, 16], randomValues(256, 4)),
        floatTensor('w2', [16, 8], randomValues(128, 5)),
      ],
      inputs: [vi('x', [4, 16])],
      outputs: [vi('y', [4, 8])],
    };
    const { model, err } = await qdq(spec, [4, 16]);
    expectQdqPattern(model, 'mm1', false);
    expectQdqPattern(model, 'mm2', false);
    const ops = model.graph!.node.map((n) => n.opType);
    expect(ops.filter((o) => o === 'QuantizeLinear').length).toBe(3); // x, h, y
    expect(node(model, 'h').opType).toBe('DequantizeLinear');
    expect(err).toBeLessThan(0.03);
  });

  for (const transB of [0, 1]) {
    it(`Gemm transB=${transB}: QDQ pattern with int32 bias per output channel`, async () => {
      const spec: GraphSpec = {
        nodes: [
          { opType: 'Gemm', name: 'gemm', input: ['x', 'w', 'b'], output: ['y'], attribute: [int('transB', transB)] },
        ],
        initializers: [
          floatTensor('w', transB ? [6, 10] : [10, 6], randomValues(60, 6)),
          floatTensor('b', [6], randomValues(6, 7)),
        ],
        inputs: [vi('x', [2, 10])],
        outputs: [vi('y', [2, 6])],
      };
      const { model, err } = await qdq(spec, [2, 10]);
      expectQdqPattern(model, 'gemm', true);
      expect(floatData(init(model, 'gemm_bias_scale')).length).toBe(6);
      // 10-term dot products of random values: a few outputs sit near 0, so relative error is larger.
      expect(err).toBeLessThan(0.06);
    });
  }

  it('skips nodes it cannot fuse: transA Gemm, constant input, bias of the wrong shape', () => {
    const model = build({
      nodes: [
        { opType: 'Gemm', name: 'ta', input: ['x', 'w'], output: ['a'], attribute: [int('transA', 1)] },
        { opType: 'MatMul', name: 'cst', input: ['w', 'w'], output: ['b'] },
        { opType: 'Gemm', name: 'bb', input: ['x', 'w', 'b2'], output: ['c'] },
      ],
      initializers: [floatTensor('w', [4, 4], randomValues(16)), floatTensor('b2', [1, 4], randomValues(4))],
      inputs: [vi('x', [4, 4])],
      outputs: [vi('a', [4, 4]), vi('b', [4, 4]), vi('c', [4, 4])],
    });
    expect(qdqCandidates(model, quantizeWeights(model))).toEqual([]);
  });

  it('saturates: calibration range smaller than the data clamps at 0 and 255 instead of wrapping', async () => {
    const spec: GraphSpec = {
      nodes: [{ opType: 'MatMul', name: 'mm', input: ['x', 'w'], output: ['y'] }],
      initializers: [floatTensor('w', [2, 2], [1, 0, 0, 1])], // identity
      inputs: [vi('x', [1, 2])],
      outputs: [vi('y', [1, 2])],
    };
    const model = build(spec);
    const weights = quantizeWeights(model, 'all');
    const ranges = new Map([
      ['x', { min: -1, max: 1 }],
      ['y', { min: -1, max: 1 }],
    ]);
    insertQdq(model, { nodes: new Set(['mm']), ranges, weights });
    const [out] = await runAll(encodeModel(model), [
      { x: { type: 'float32', data: Float32Array.of(50, -50), dims: [1, 2] } },
    ]);
    const y = Array.from(out!.y!.data);
    expect(y[0]).toBeCloseTo(1, 1);
    expect(y[1]).toBeCloseTo(-1, 1);
  });
});
