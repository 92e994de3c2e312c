import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';

// The same Chromium without --enable-unsafe-webgpu: headless, it then has no WebGPU adapter.
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  },
});

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('the default preference falls back to WASM and says why', async ({ page }) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime();
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const first = { backend: m.backend, fallbackReason: m.fallbackReason };
    const forced = await rt
      .load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' }, { backend: 'webgpu' })
      .then(
        () => 'loaded',
        (e: { code: string; attempts: unknown }) => ({ code: e.code, attempts: e.attempts }),
      );
    await rt.close();
    return { ...first, forced };
  });
  expect(r.backend).toBe('wasm');
  expect(r.fallbackReason).toMatch(/^webgpu: /);
  // Forcing the missing backend is one combined error that lists the attempt.
  expect(r.forced).toMatchObject({ code: 'BACKEND_UNAVAILABLE', attempts: [{ backend: 'webgpu' }] });
});
