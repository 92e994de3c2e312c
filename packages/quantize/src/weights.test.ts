import { describe, expect, it } from 'vitest';
import { build, buildBytes, floatTensor, int, ints, randomValues, vi } from './__tests__/build.js';
import type { GraphSpec } from './__tests__/build.js';
import { DataType, decodeModel, encodeModel, floatData, getIntAttribute, toNumber } from './onnx.js';
import { activationParams, quantizeBias, quantizeUint8, quantizeWeightPerChannel } from './quant-math.js';
import { runAll } from './runtime.js';
import { quantizeWeights } from './weights.js';

function int8Data(model: ReturnType<typeof build>, name: string): Int8Array {
  const t = model.graph!.initializer.find((i) => i.name === name)!;
  expect(t.dataType).toBe(DataType.INT8);
  return new Int8Array(Uint8Array.from(t.rawData).buffer);
}

function scales(model: ReturnType<typeof build>, name: string): Float32Array {
  return floatData(model.graph!.initializer.find((i) => i.name === name)!);
}

async function maxDiff(
  spec: GraphSpec,
  feeds: Record<string, { data: Float32Array; dims: number[] }>,
  form: 'all' | Set<string> = 'all',
) {
  const ref = await runAll(buildBytes(spec), [{ ...withType(feeds) }]);
  const model = build(spec);
  quantizeWeights(model, form);
  const out = await runAll(encodeModel(model), [{ ...withType(feeds) }]);
  let m = 0;
  let refMax = 0;
  for (const [k, v] of Object.entries(ref[0]!)) {
    v.data.forEach((x, i) => {
      m = Math.max(m, Math.abs(x - out[0]![k]!.data[i]!));
      refMax = Math.max(refMax, Math.abs(x));
    });
  }
  // Error relative to the output's range: int8 weights give well under 1 %.
  return { m: m / refMax, model };
}

const withType = (f: Record<string, { data: Float32Array; dims: number[] }>) =>
  Object.fromEntries(Object.entries(f).map(([k, v]) => [k, { type: 'float32' as const, ...v }]));

describe('quant math', () => {
  it('per-channel symmetric int8: scale = max|w|/127 per channel, extremes map to ±127', () => {
    // dims [2, 3], axis 0: channel 0 = row 0, channel 1 = row 1.
    const q = quantizeWeightPerChannel(Float32Array.of(1, -0.5, 0.25, -4, 2, 0), [2, 3], 0);
    expect(Array.from(q.scale)).toEqual([Math.fround(1 / 127), Math.fround(4 / 127)]);
    expect(Array.from(q.q)).toEqual([127, -64, 32, -127, 64, 0]);
    // axis 1: channels are columns.
    const c = quantizeWeightPerChannel(Float32Array.of(1, -2, 0.5, 1), [2, 2], 1);
    expect(Array.from(c.scale)).toEqual([Math.fround(1 / 127), Math.fround(2 / 127)]);
    expect(Array.from(c.q)).toEqual([127, -127, 64, 64]);
  });

  it('an all-zero channel gets scale 1 and stays exactly zero', () => {
    const q = quantizeWeightPerChannel(new Float32Array(4), [2, 2], 0);
    expect(Array.from(q.scale)).toEqual([1, 1]);
    expect(Array.from(q.q)).toEqual([0, 0, 0, 0]);
  });

  it('uint8 activations: range widened to include 0, zero point exact, saturation at 0 and 255', () => {
    expect(activationParams(-1, 3)).toEqual({ scale: 4 / 255, zeroPoint: 64 });
    expect(activationParams(2, 6)).toEqual({ scale: 6 / 255, zeroPoint: 0 }); // all-positive: zp 0
    expect(activationParams(-6, -2)).toEqual({ scale: 6 / 255, zeroPoint: 255 });
    expect(activationParams(0, 0)).toEqual({ scale: 1, zeroPoint: 0 });
    const p = activationParams(-1, 3);
    expect(quantizeUint8(0, p)).toBe(64);
    expect(quantizeUint8(100, p)).toBe(255);
    expect(quantizeUint8(-100, p)).toBe(0);
  });

  it('int32 bias uses input scale × per-channel weight scale, zero point 0', () => {
    const b = quantizeBias(Float32Array.of(1, -1), 0.5, Float32Array.of(0.1, 0.01));
    expect(Array.from(b.scale)).toEqual([Math.fround(0.05), Math.fround(0.005)]);
    expect(Array.from(b.q)).toEqual([20, -200]);
  });
});

describe('quantizeWeights (weight-only INT8)', () => {
  it('Conv: int8 weight per output channel (axis 0), zero points 0, fp32 bias, close outputs', async () => {
    const w = randomValues(4 * 3 * 3 * 3, 3).map((v, i) => v * (1 + Math.floor(i / 27))); // channel c scaled by c+1
    const spec: GraphSpec = {
      nodes: [{ opType: 'Conv', input: ['x', 'w', 'b'], output: ['y'], attribute: [] }],
      initializers: [floatTensor('w', [4, 3, 3, 3], w), floatTensor('b', [4], [0.1, 0.2, 0.3, 0.4])],
      inputs: [vi('x', [1, 3, 8, 8])],
      outputs: [vi('y', [1, 4, 6, 6])],
    };
    const { m, model } = await maxDiff(spec, { x: { data: randomValues(192, 5), dims: [1, 3, 8, 8] } });
    const dq = model.graph!.node.find((n) => n.opType === 'DequantizeLinear')!;
    expect(dq.input).toEqual(['w_quantized', 'w_scale', 'w_zero_point']);
    expect(dq.output).toEqual(['w']);
    expect(getIntAttribute(dq, 'axis', -1)).toBe(0);
    const s = scales(model, 'w_scale');
    expect(s.length).toBe(4);
    for (let c = 0; c < 4; c++) {
      const maxAbs = Math.max(...Array.from(w.subarray(c * 27, (c + 1) * 27), Math.abs));
      expect(s[c]).toBeCloseTo(maxAbs / 127, 7);
    }
    expect(Math.max(...Array.from(int8Data(model, 'w_quantized'), Math.abs))).toBe(127);
    expect(Array.from(int8Data(model, 'w_zero_point'))).toEqual([0, 0, 0, 0]);
    expect(model.graph!.initializer.find((t) => t.name === 'b')!.dataType).toBe(DataType.FLOAT);
    expect(m).toBeGreaterThan(0);
    expect(m).toBeLessThan(0.01);
  });

  it('weights not planned for QDQ: Cast + Mul by a broadcast per-channel scale, same values as DQ', async () => {
    const spec: GraphSpec = {
      nodes: [{ opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [] }],
      initializers: [floatTensor('w', [4, 3, 3, 3], randomValues(108, 3))],
      inputs: [vi('x', [1, 3, 8, 8])],
      outputs: [vi('y', [1, 4, 6, 6])],
    };
    const x = { x: { data: randomValues(192, 5), dims: [1, 3, 8, 8] } };
    const cast = await maxDiff(spec, x, new Set());
    const dq = await maxDiff(spec, x, 'all');
    expect(cast.model.graph!.node.map((n) => n.opType)).toEqual(['Cast', 'Mul', 'Conv']);
    const s = cast.model.graph!.initializer.find((t) => t.name === 'w_scale')!;
    expect(s.dims.map(toNumber)).toEqual([4, 1, 1, 1]);
    expect(floatData(s)).toEqual(scales(dq.model, 'w_scale'));
    expect(int8Data(cast.model, 'w_quantized')).toEqual(int8Data(dq.model, 'w_quantized'));
    expect(cast.m).toBeCloseTo(dq.m, 6);
  });

  it('ConvTranspose: weight [C_in, C_out, kh, kw] gets one scale per output channel (axis 1)', async () => {
    // Output channel o scaled by 10^o, so a per-input-channel (axis 0) scale would lose channel 0.
    const w = randomValues(2 * 3 * 2 * 2, 7).map((v, i) => v * 10 ** (Math.floor(i / 4) % 3));
    const spec: GraphSpec = {
      nodes: [{ opType: 'ConvTranspose', input: ['x', 'w'], output: ['y'], attribute: [ints('strides', [2, 2])] }],
      initializers: [floatTensor('w', [2, 3, 2, 2], w)],
      inputs: [vi('x', [1, 2, 4, 4])],
      outputs: [vi('y', [1, 3, 8, 8])],
    };
    const { m, model } = await maxDiff(spec, { x: { data: randomValues(32, 5), dims: [1, 2, 4, 4] } }, new Set());
    const s = model.graph!.initializer.find((t) => t.name === 'w_scale')!;
    expect(s.dims.map(toNumber)).toEqual([1, 3, 1, 1]);
    for (let o = 0; o < 3; o++) {
      let maxAbs = 0;
      for (let i = 0; i < w.length; i++) if (Math.floor(i / 4) % 3 === o) maxAbs = Math.max(maxAbs, Math.abs(w[i]!));
      expect(floatData(s)[o]).toBe(Math.fround(maxAbs / 127));
    }
    expect(m).toBeLessThan(0.01);
  });

  it('depthwise Conv: weight [C, 1, kh, kw] gets one scale per channel (axis 0)', async () => {
    const w = randomValues(4 * 9, 8).map((v, i) => v * 10 ** Math.floor(i / 9));
    const spec: GraphSpec = {
      nodes: [{ opType: 'Conv', input: ['x', 'w'], output: ['y'], attribute: [int('group', 4)] }],
      initializers: [floatTensor('w', [4, 1, 3, 3], w)],
      inputs: [vi('x', [1, 4, 6, 6])],
      outputs: [vi('y', [1, 4, 4, 4])],
    };
    const { m, model } = await maxDiff(spec, { x: { data: randomValues(144, 6), dims: [1, 4, 6, 6] } }, new Set());
    const s = floatData(model.graph!.initializer.find((t) => t.name === 'w_scale')!);
    expect(s.length).toBe(4);
    for (let c = 0; c < 4; c++) {
      expect(s[c]).toBe(Math.fround(Math.max(...Array.from(w.subarray(c * 9, (c + 1) * 9), Math.abs)) / 127));
    }
    // Relative to the largest output (channel 3, 1000x channel 0), as for every test here.
    expect(m).toBeLessThan(0.01);
  });

  it('MatMul: B [K, N] quantized per column (axis 1)', async () => {
    const spec: GraphSpec = {
      nodes: [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      initializers: [floatTensor('w', [16, 8], randomValues(128, 9))],
      inputs: [vi('x', [2, 16])],
      outputs: [vi('y', [2, 8])],
    };
    const { m, model } = await maxDiff(spec, { x: { data: randomValues(32, 2), dims: [2, 16] } });
    const dq = model.graph!.node.find((n) => n.opType === 'DequantizeLinear')!;
    expect(getIntAttribute(dq, 'axis', -1)).toBe(1);
    expect(scales(model, 'w_scale').length).toBe(8);
    expect(m).toBeLessThan(0.01);
  });

  for (const transB of [0, 1]) {
    it(`Gemm transB=${transB}: per-channel axis ${transB ? 0 : 1}, output channels N=5`, async () => {
      const dims = transB ? [5, 7] : [7, 5];
      const spec: GraphSpec = {
        nodes: [{ opType: 'Gemm', input: ['x', 'w', 'b'], output: ['y'], attribute: [int('transB', transB)] }],
        initializers: [floatTensor('w', dims, randomValues(35, 4)), floatTensor('b', [5], randomValues(5, 8))],
        inputs: [vi('x', [3, 7])],
        outputs: [vi('y', [3, 5])],
      };
      const { m, model } = await maxDiff(spec, { x: { data: randomValues(21, 6), dims: [3, 7] } });
      const dq = model.graph!.node.find((n) => n.opType === 'DequantizeLinear')!;
      expect(getIntAttribute(dq, 'axis', -1)).toBe(transB ? 0 : 1);
      expect(scales(model, 'w_scale').length).toBe(5);
      expect(m).toBeLessThan(0.01);
    });
  }

  it('quantizes a shared weight once and leaves non-weight initializers alone', () => {
    const model = build({
      nodes: [
        { opType: 'MatMul', input: ['x', 'w'], output: ['a'] },
        { opType: 'MatMul', input: ['a', 'w'], output: ['b'] },
        { opType: 'Add', input: ['b', 'c'], output: ['y'] },
      ],
      initializers: [floatTensor('w', [4, 4], randomValues(16)), floatTensor('c', [4], randomValues(4))],
      inputs: [vi('x', [1, 4])],
      outputs: [vi('y', [1, 4])],
    });
    const done = quantizeWeights(model, 'all');
    expect([...done.keys()]).toEqual(['w']);
    expect(done.get('w')!.ops).toEqual(['MatMul', 'MatMul']);
    expect(model.graph!.node.filter((n) => n.opType === 'DequantizeLinear').length).toBe(1);
    expect(model.graph!.node[0]!.opType).toBe('DequantizeLinear'); // produced before it is used
    expect(model.graph!.initializer.map((t) => t.name).sort()).toEqual(['c', 'w_quantized', 'w_scale', 'w_zero_point']);
    const encoded = decodeModel(encodeModel(model));
    expect(encoded.graph!.initializer.find((t) => t.name === 'w_quantized')!.dims.map(toNumber)).toEqual([4, 4]);
  });
});
