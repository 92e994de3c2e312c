import { expect, test } from '@playwright/test';
import { clearRequests, clearStore, openHarness, serverRequests } from './helpers.js';

// Per-device variant choice: a variant that would run on WebGPU but gives wrong answers there
// must lose to a correct WASM one, and the choice is reused on the next load.

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('a broken WebGPU variant loses to the correct WASM one; the choice is kept for this device', async ({ page }) => {
  const load = () =>
    page.evaluate(async () => {
      const sample = (await (await fetch('/models/digits-sample.json')).json()) as {
        samples: { input: number[]; logits: number[] }[];
      };
      const s = sample.samples[0]!;
      const rt = await window.outpost.createRuntime();
      const m = await rt.load({
        name: 'digits',
        version: '1.0.0',
        variants: [
          {
            id: 'gpu-broken',
            files: [{ path: 'digits.onnx', url: '/fixtures/digits-broken.onnx' }],
            backends: ['webgpu'],
          },
          { id: 'fp32', files: [{ path: 'digits.onnx', url: '/models/digits.onnx' }], backends: ['wasm'] },
        ],
        golden: {
          inputs: { x: { type: 'float32', data: Float32Array.from(s.input), dims: [1, 1, 28, 28] } },
          outputs: { logits: { type: 'float32', data: Float32Array.from(s.logits), dims: [1, 10] } },
          tolerance: 1e-3,
        },
      });
      const stored = await rt.cache.list();
      await rt.close();
      return { variant: m.variant, backend: m.backend, source: m.source, choice: m.choice, stored };
    });

  const first = await load();
  expect(first.variant).toBe('fp32');
  expect(first.backend).toBe('wasm');
  expect(first.choice?.cached).toBe(false);
  const broken = first.choice?.trials.find((t) => t.variant === 'gpu-broken');
  expect(broken).toMatchObject({ backend: 'webgpu', ok: false });
  expect(broken!.maxAbsDiff).toBeGreaterThan(1e-3);
  expect(first.choice?.trials.find((t) => t.variant === 'fp32')).toMatchObject({ backend: 'wasm', ok: true });
  expect(first.choice?.deviceKey).toMatch(/Chrome \d+ \| gpu .+ \| onnxruntime-web 1\.30\.0/);
  // Only the winner is kept.
  expect(first.stored.map((m) => m.variant)).toEqual(['fp32']);

  await clearRequests(page);
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true);
  const second = await load();
  expect(second).toMatchObject({ variant: 'fp32', backend: 'wasm', source: 'cache', choice: { cached: true } });
  expect((await serverRequests(page)).filter((p) => p.endsWith('.onnx'))).toEqual([]);
});
