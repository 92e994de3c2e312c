import type { Page } from 'puppeteer-core';
import { beforeEach, expect, test } from 'vitest';
import { clearRequests, clearStore, firefoxForFile, openHarness, reload, serverRequests } from './browser.js';

// The IndexedDB model store in Firefox ESR (e2e/runtime.spec.ts and errors.spec.ts in Chromium):
// a round trip across reloads with no network, integrity, chunking, and what Firefox reports of
// its storage.

let page: Page;

firefoxForFile((_, p) => (page = p));

beforeEach(async () => {
  await openHarness(page);
  await clearStore(page);
});

const loadAndRun = () =>
  page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], supervision: { loadTimeout: '20s' } });
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const out = await m.run({ x: { type: 'float32', data: new Float32Array(784), dims: [1, 1, 28, 28] } });
    const list = await rt.cache.list();
    const usage = await rt.cache.usage();
    await rt.close();
    return { source: m.source, logits: Array.from(out.logits!.data as Float32Array), list, usage };
  });

test('store round trip: a reload loads from IndexedDB with zero network requests for the model', async () => {
  const first = await loadAndRun();
  expect(first.source).toBe('network');
  await clearRequests();
  await reload(page);
  const second = await loadAndRun();
  expect(second.source).toBe('cache');
  expect(second.logits).toEqual(first.logits);
  expect(await serverRequests()).toEqual([]);
  expect(second.list).toHaveLength(1);
  expect(second.list[0]).toMatchObject({ name: 'digits', version: '1.0.0' });
  expect(second.list[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(second.usage.bytes).toBe(second.list[0]!.bytes);
  // Firefox's quota for a best-effort origin: a share of the disk's free space, or a 10 GiB
  // group limit (recorded in the README's browser table).
  expect(second.usage.quota).toBeGreaterThan(10_000_000);
});

test('S1: a hash mismatch on download is an IntegrityError; bytes tampered in IndexedDB are never run', async () => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], supervision: { loadTimeout: '20s' } });
    const mismatch = await rt
      .load({ name: 'digits', version: 'x', url: '/models/digits.onnx', sha256: '0'.repeat(64) })
      .then(
        () => 'loaded',
        (e: { name: string; code: string; expected: string }) => ({ name: e.name, code: e.code, expected: e.expected }),
      );
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const sha = (await rt.cache.list())[0]!.sha256;
    await m.dispose();
    // Flip one byte of the stored model, as a broken disk or another script might.
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open('outpost-models');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const db = open.result;
        const tx = db.transaction('chunks', 'readwrite');
        const cursorReq = tx.objectStore('chunks').openCursor();
        cursorReq.onsuccess = () => {
          const c = cursorReq.result!;
          const value = c.value as { data: ArrayBuffer };
          const bytes = new Uint8Array(value.data.slice(0));
          bytes[1000] = bytes[1000]! ^ 0xff;
          c.update({ ...value, data: bytes.buffer });
        };
        tx.oncomplete = () => {
          db.close();
          resolve();
        };
        tx.onerror = () => reject(tx.error);
      };
    });
    await (await fetch('/__requests', { method: 'DELETE' })).text();
    const again = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const refetched = (await (await fetch('/__requests')).json()) as string[];
    const shaAfter = (await rt.cache.list())[0]!.sha256;
    await rt.close();
    return { mismatch, source: again.source, refetched, sha, shaAfter };
  });
  expect(r.mismatch).toEqual({ name: 'IntegrityError', code: 'INTEGRITY', expected: '0'.repeat(64) });
  expect(r.source).toBe('network');
  expect(r.refetched).toEqual(['/models/digits.onnx']);
  expect(r.shaAfter).toBe(r.sha);
});

test('S3: a model larger than one chunk is stored in chunks and loads back intact', async () => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], supervision: { loadTimeout: '20s' } });
    const a = await rt.load({ name: 'ppocr', version: '4', url: '/models/ppocr-det.onnx' });
    await a.dispose();
    const chunks = await new Promise<number[]>((resolve, reject) => {
      const open = indexedDB.open('outpost-models');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const req = open.result.transaction('chunks').objectStore('chunks').getAll();
        req.onsuccess = () => {
          resolve((req.result as { data: ArrayBuffer }[]).map((c) => c.data.byteLength));
          open.result.close();
        };
      };
    });
    const b = await rt.load({ name: 'ppocr', version: '4', url: '/models/ppocr-det.onnx' });
    const out = await b.run({ x: { type: 'float32', data: new Float32Array(3 * 64 * 64), dims: [1, 3, 64, 64] } });
    await rt.close();
    return { chunks, source: b.source, dims: Object.values(out)[0]!.dims };
  });
  expect(r.chunks.length).toBe(2);
  expect(r.chunks.reduce((a, b) => a + b, 0)).toBe(4745517);
  expect(r.source).toBe('cache');
  expect(r.dims).toEqual([1, 1, 64, 64]);
});
