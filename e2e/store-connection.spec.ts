import { expect, test } from '@playwright/test';
import { clearRequests, clearStore, openHarness, serverRequests } from './helpers';

// RELIABILITY S4: the model store's IndexedDB connection is lost under a live runtime.

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

const VAD = { name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' };

type Live = { rt: Awaited<ReturnType<typeof window.outpost.createRuntime>>; closed: Promise<boolean> };

test('S4 IndexedDB cleared under a live runtime (its connection closed by Chromium): the next load re-downloads and verifies, the store keeps working', async ({
  page,
  context,
}) => {
  const first = await page.evaluate(async (src) => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const m = await rt.load(src);
    await m.dispose();
    const list = (await rt.cache.list()).map((x) => x.name);
    // A witness connection on the page: Chromium fires `close` on it as it does on the worker's.
    const witness = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('outpost-models');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const closed = new Promise<boolean>((resolve) => {
      witness.onclose = () => resolve(true);
      setTimeout(() => resolve(false), 10_000);
    });
    (window as unknown as { s4: Live }).s4 = { rt, closed };
    return { source: m.source, list };
  }, VAD);
  expect(first).toEqual({ source: 'network', list: ['vad'] });

  await clearRequests(page);
  const cdp = await context.newCDPSession(page);
  await cdp.send('Storage.clearDataForOrigin', { origin: new URL(page.url()).origin, storageTypes: 'indexeddb' });

  const r = await page.evaluate(async (src) => {
    const { rt, closed } = (window as unknown as { s4: Live }).s4;
    const witnessClosed = await closed;
    const listAfterClear = (await rt.cache.list()).map((x) => x.name);
    let again: { source?: string; dims?: readonly number[]; error?: { name: string; code?: string } };
    try {
      const m = await rt.load(src);
      const out = await m.run({
        input: { type: 'float32', data: new Float32Array(512), dims: [1, 512] },
        state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
        sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
      });
      again = { source: m.source, dims: out.output?.dims };
      await m.dispose();
    } catch (e) {
      const err = e as { name: string; code?: string };
      again = { error: { name: err.name, code: err.code } };
    }
    const listAfterLoad = (await rt.cache.list()).map((x) => x.name);
    // And from the store once more: the re-stored bytes read back and verified.
    const cached = await rt.load(src);
    const cachedSource = cached.source;
    await rt.close();
    return { witnessClosed, listAfterClear, again, listAfterLoad, cachedSource };
  }, VAD);

  expect(r.witnessClosed).toBe(true);
  expect(r.listAfterClear).toEqual([]);
  expect(r.again).toEqual({ source: 'network', dims: [1, 1] });
  expect(r.listAfterLoad).toEqual(['vad']);
  expect(r.cachedSource).toBe('cache');
  expect((await serverRequests(page)).filter((u) => u.includes('silero-vad-v5.onnx'))).toHaveLength(1);
});
