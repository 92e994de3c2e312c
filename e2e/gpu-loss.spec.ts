import { expect, test } from '@playwright/test';
import { clearStore, openHarness, workersNamed } from './helpers.js';

// R5: the WebGPU device is lost under a model (here a real GPUDevice.destroy() on the device
// onnxruntime-web runs on, in the worker; Chromium's WebGPU is SwiftShader on this machine). A run
// then fails (it never returns zeros), the model moves to WASM by itself, and the next result
// says so: backend 'wasm' with the reason.

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('R5: a lost WebGPU device fails the run (never zeros), the model moves to WASM and says why', async ({ page }) => {
  const before = await page.evaluate(async () => {
    const w = window as unknown as Record<string, unknown>;
    const rt = await window.outpost.createRuntime({ backends: ['webgpu', 'wasm'] });
    const model = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const samples = (
      (await (await fetch('/models/digits-sample.json')).json()) as { samples: { input: number[]; logits: number[] }[] }
    ).samples;
    w.rt = rt;
    w.runSample = async (i: number) => {
      const s = samples[i]!;
      try {
        const out = await model.run({ x: { type: 'float32', data: Float32Array.from(s.input), dims: [1, 1, 28, 28] } });
        const got = Array.from(out.logits!.data as Float32Array);
        const diff = Math.max(...got.map((v, k) => Math.abs(v - s.logits[k]!)));
        return {
          ok: true,
          diff,
          allZero: got.every((v) => v === 0),
          backend: model.backend,
          reason: model.fallbackReason,
        };
      } catch (e) {
        const err = e as Error & { code?: string };
        return { ok: false, name: err.name, code: err.code, message: err.message, backend: model.backend };
      }
    };
    return (w.runSample as (i: number) => Promise<unknown>)(0);
  });
  expect(before).toMatchObject({ ok: true, backend: 'webgpu' });

  // The device onnxruntime-web's WebGPU sessions use, destroyed in the worker: the module the
  // worker imported is the one at the same URL, so importing it again gives the same `env`.
  let destroyed = false;
  for (const w of await workersNamed(page, 'outpost')) {
    destroyed = await w.evaluate(async () => {
      const url = performance
        .getEntriesByType('resource')
        .map((e) => e.name)
        .find((n) => /onnxruntime-web.*webgpu.*\.m?js/.test(n));
      if (!url)
        throw new Error(
          performance
            .getEntriesByType('resource')
            .map((e) => e.name)
            .join('\n'),
        );
      const ort = (await import(/* @vite-ignore */ url)) as {
        env: { webgpu: { device: Promise<{ destroy(): void; lost: Promise<unknown> }> } };
      };
      const device = await ort.env.webgpu.device;
      device.destroy();
      await device.lost;
      return true;
    });
  }
  expect(destroyed).toBe(true);

  const runs = [];
  for (let i = 1; i <= 4; i++)
    runs.push(
      await page.evaluate(
        (i) => (window as unknown as { runSample: (i: number) => Promise<Record<string, unknown>> }).runSample(i),
        i,
      ),
    );
  // Never zeros, never a wrong answer: a run either fails with a typed error or is right.
  for (const r of runs) {
    if (r.ok) {
      expect(r.allZero).toBe(false);
      expect(r.diff as number).toBeLessThan(1e-3);
    } else {
      expect(r).toMatchObject({ name: 'RunError', code: 'RUN_FAILED' });
      expect(String(r.message)).toMatch(/device was lost/);
    }
  }
  // The first run after the loss failed (it was on the lost device); the model then moved.
  expect(runs[0]).toMatchObject({ ok: false });
  const last = runs.at(-1)!;
  expect(last).toMatchObject({ ok: true, backend: 'wasm' });
  expect(String(last.reason)).toMatch(/webgpu: the device was lost/);
  console.log(`R5: after the loss: ${runs.map((r) => (r.ok ? `ok on ${String(r.backend)}` : 'failed')).join(', ')}`);
  await page.evaluate(() => (window as unknown as { rt: { close(): Promise<void> } }).rt.close());
});
