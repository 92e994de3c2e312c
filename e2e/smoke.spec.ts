import { expect, test } from '@playwright/test';

test('smoke: ppocr det on wasm', async ({ page }) => {
  page.on('console', (m) => console.log('[page]', m.text()));
  page.on('pageerror', (e) => console.log('[pageerror]', e.message));
  await page.goto('/');
  await page.waitForFunction(() => window.harnessReady);
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const m = await rt.load({ name: 'ppocr', version: '1', url: '/models/ppocr-det.onnx' });
    const x = new Float32Array(3 * 320 * 320).fill(0.2);
    const out = await m.run({ x: { type: 'float32', data: x, dims: [1, 3, 320, 320] } });
    return { backend: m.backend, inputs: m.inputs, outputs: m.outputs, iso: crossOriginIsolated, keys: Object.keys(out), dims: Object.values(out)[0]!.dims };
  });
  console.log(JSON.stringify(r));
  expect(r.backend).toBe('wasm');
});
