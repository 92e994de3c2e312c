import type { BackendId, EngineSession, ModelVariant, TensorMap } from '@outpost/core';
import { describe, expect, it } from 'vitest';
import { candidates, chooseVariant, maxAbsDiff, type DeviceCaps } from './variants.js';

const caps = (over: Partial<DeviceCaps> = {}): DeviceCaps => ({
  backends: ['webgpu', 'wasm'],
  gpuFeatures: new Set(),
  key: 'test-device',
  ...over,
});

const variant = (id: string, backends?: BackendId[], requires?: string[]): ModelVariant => ({
  id,
  files: [{ path: `${id}.onnx`, url: `/${id}.onnx` }],
  backends,
  requires,
});

/** A fake clock the fake sessions advance: each run costs `ms` of "time". */
function world() {
  let t = 0;
  const now = () => t;
  const session = (backend: BackendId, ms: number, output: number): EngineSession => ({
    backend,
    inputs: [{ name: 'x', type: 'float32', dims: [1] }],
    outputs: [{ name: 'y', type: 'float32', dims: [1] }],
    run: async () => {
      t += ms;
      return { y: { type: 'float32', data: new Float32Array([output]), dims: [1] } };
    },
    dispose: async () => undefined,
  });
  return { now, session };
}

const golden = {
  inputs: { x: { type: 'float32' as const, data: new Float32Array([1]), dims: [1] } },
  outputs: { y: { type: 'float32' as const, data: new Float32Array([2]), dims: [1] } },
  tolerance: 1e-3,
};

describe('variant choice', () => {
  it('a fast variant that is wrong on this device loses to a correct slower one', async () => {
    const w = world();
    // fp16 on WebGPU is fastest but wrong here (as onnxruntime's WebGPU INT8 paths have been).
    const perf: Record<string, [number, number]> = {
      'fp16/webgpu': [1, 2.5],
      'int8/wasm': [5, 2.0001],
      'fp32/wasm': [9, 2],
    };
    const { list, skipped } = candidates(
      [variant('fp16', ['webgpu']), variant('int8', ['wasm']), variant('fp32', ['wasm'])],
      caps(),
      new Map(),
    );
    const chosen = await chooseVariant(
      list,
      skipped,
      async (v, b) => {
        const [ms, out] = perf[`${v.id}/${b}`]!;
        return w.session(b, ms, out);
      },
      golden,
      caps(),
      { runs: 3, budgetMs: 1000, now: w.now },
    );
    expect(chosen.choice.variant).toBe('int8');
    expect(chosen.choice.backend).toBe('wasm');
    const fp16 = chosen.choice.trials.find((t) => t.variant === 'fp16')!;
    expect(fp16).toMatchObject({ ok: false, maxAbsDiff: 0.5 });
    expect(chosen.choice.trials.find((t) => t.variant === 'fp32')).toMatchObject({ ok: true, medianMs: 9 });
    expect(chosen.choice.trials.find((t) => t.variant === 'int8')).toMatchObject({ ok: true, medianMs: 5 });
  });

  it('skips variants whose adapter features the device lacks, and runs them only on WebGPU', () => {
    const vs = [variant('f16', undefined, ['shader-f16']), variant('fp32')];
    const without = candidates(vs, caps(), new Map());
    expect(without.list.map((c) => `${c.variant.id}/${c.backend}`)).toEqual(['fp32/webgpu', 'fp32/wasm']);
    expect(without.skipped.map((s) => `${s.variant}/${s.backend}: ${s.reason}`)).toEqual([
      'f16/webgpu: needs shader-f16',
      'f16/wasm: needs shader-f16',
    ]);
    const withF16 = candidates(vs, caps({ gpuFeatures: new Set(['shader-f16']) }), new Map());
    expect(withF16.list.map((c) => `${c.variant.id}/${c.backend}`)).toEqual(['f16/webgpu', 'fp32/webgpu', 'fp32/wasm']);
  });

  it('tries cheapest first and stops at the time budget, having tried at least one', async () => {
    const w = world();
    const { list, skipped } = candidates(
      [variant('big'), variant('small')],
      caps({ backends: ['wasm'] }),
      new Map([
        ['big', 100],
        ['small', 10],
      ]),
    );
    expect(list.map((c) => c.variant.id)).toEqual(['small', 'big']);
    const chosen = await chooseVariant(list, skipped, async (_v, b) => w.session(b, 50, 2), golden, caps(), {
      runs: 3,
      budgetMs: 10,
      now: w.now,
    });
    expect(chosen.choice.variant).toBe('small');
    expect(chosen.choice.trials.find((t) => t.variant === 'big')?.reason).toMatch(/budget/);
  });

  it('fails with every reason when no variant is correct', async () => {
    const w = world();
    const { list, skipped } = candidates([variant('a'), variant('b')], caps({ backends: ['wasm'] }), new Map());
    const err = await chooseVariant(list, skipped, async (_v, b) => w.session(b, 1, 7), golden, caps(), {
      runs: 1,
      budgetMs: 1000,
      now: w.now,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'BACKEND_UNAVAILABLE' });
    expect((err as { attempts: unknown[] }).attempts).toHaveLength(2);
  });

  it('maxAbsDiff: exact, shape mismatch and non-finite values', () => {
    const t = (v: number[]): TensorMap => ({ y: { type: 'float32', data: Float32Array.from(v), dims: [v.length] } });
    expect(maxAbsDiff(t([1, 2]), t([1, 2.5]))).toBe(0.5);
    expect(maxAbsDiff(t([1]), t([1, 2]))).toBe(Infinity);
    expect(maxAbsDiff(t([NaN, 2]), t([1, 2]))).toBe(Infinity);
    expect(maxAbsDiff({}, t([1]))).toBe(Infinity);
  });
});
