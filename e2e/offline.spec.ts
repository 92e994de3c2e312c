import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';

// With the network gone, a cached model still loads: in a worker that was started while online,
// and in a fresh page whose script, worker and onnxruntime-web files come from the app's service
// worker (here the harness's minimal one; examples/offline-pwa uses Workbox).

const vad = { name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' };

async function runVad(page: import('@playwright/test').Page, fresh: boolean) {
  return page.evaluate(
    async ({ vad, fresh }) => {
      const w = window as unknown as { rt?: Awaited<ReturnType<typeof window.outpost.createRuntime>> };
      if (fresh || !w.rt) w.rt = await window.outpost.createRuntime({ backends: ['wasm'] });
      const m = await w.rt.load(vad);
      const out = await m.run({
        input: { type: 'float32', data: new Float32Array(512).fill(0.1), dims: [1, 512] },
        state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
        sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
      });
      await m.dispose();
      return { source: m.source, p: (out.output!.data as Float32Array)[0]! };
    },
    { vad, fresh },
  );
}

test('offline with a live worker: a cached model loads and runs with the network gone', async ({ page, context }) => {
  await openHarness(page);
  await clearStore(page);
  const online = await runVad(page, true);
  expect(online.source).toBe('network');
  await context.setOffline(true);
  try {
    // Proof the network is really gone for the page and its worker.
    const reachable = await page.evaluate(() =>
      fetch('/models/silero-vad-v5.onnx').then(
        () => true,
        () => false,
      ),
    );
    expect(reachable).toBe(false);
    const offline = await runVad(page, false);
    expect(offline.source).toBe('cache');
    expect(offline.p).toBeCloseTo(online.p, 6);
    // A model that was never cached fails clearly instead of hanging.
    const err = await page.evaluate(async () => {
      const w = window as unknown as { rt: Awaited<ReturnType<typeof window.outpost.createRuntime>> };
      return w.rt.load({ name: 'ppocr', version: '4', url: '/models/ppocr-det.onnx' }).then(
        () => 'loaded',
        (e: { code: string }) => e.code,
      );
    });
    expect(err).toBe('NOT_CACHED');
  } finally {
    await context.setOffline(false);
  }
});

test('offline from a fresh page: the app shell and worker from the service worker, the model from IndexedDB', async ({
  page,
  context,
}) => {
  await openHarness(page, '/?sw=1');
  await clearStore(page);
  // A first visit while online, under the service worker, fills both caches.
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true);
  const online = await runVad(page, true);
  expect(online.source).toBe('network');

  await context.setOffline(true);
  try {
    const fresh = await context.newPage();
    await openHarness(fresh, '/?sw=1');
    const offline = await runVad(fresh, true);
    expect(offline.source).toBe('cache');
    expect(offline.p).toBeCloseTo(online.p, 6);
    expect(await fresh.evaluate(() => crossOriginIsolated)).toBe(true);
    await fresh.close();
  } finally {
    await context.setOffline(false);
  }
});
