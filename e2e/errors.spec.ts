import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';

// Every bad input is a typed error with a stable code, and never takes the worker or other
// loaded models down (RELIABILITY R1, R2, S1, S2, S3).

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('R1: 404, HTML page, truncated and random bytes are typed errors; the loaded model keeps working', async ({
  page,
}) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const vad = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
    const codes: Record<string, unknown> = {};
    const bad: Record<string, string> = {
      notFound: '/models/missing.onnx',
      html: '/fixtures/html.onnx',
      htmlAsBinary: '/fixtures/html-as-binary.onnx',
      truncated: '/fixtures/truncated.onnx',
      random: '/fixtures/random.onnx',
    };
    for (const [k, url] of Object.entries(bad)) {
      try {
        await rt.load({ name: k, version: '1', url });
        codes[k] = 'loaded!';
      } catch (e) {
        const err = e as InstanceType<typeof window.outpost.OutpostError> & { status?: number };
        codes[k] = {
          code: err.code,
          name: err.name,
          isOutpost: err instanceof window.outpost.OutpostError,
          status: err.status,
        };
      }
    }
    const out = await vad.run({
      input: { type: 'float32', data: new Float32Array(512), dims: [1, 512] },
      state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
      sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
    });
    const stored = (await rt.cache.list()).map((m) => m.name);
    await rt.close();
    return { codes, stillRuns: out.output?.dims, stored };
  });
  expect(r.codes).toEqual({
    notFound: { code: 'DOWNLOAD_FAILED', name: 'DownloadError', isOutpost: true, status: 404 },
    html: { code: 'MODEL_FORMAT', name: 'ModelFormatError', isOutpost: true },
    htmlAsBinary: { code: 'MODEL_FORMAT', name: 'ModelFormatError', isOutpost: true },
    truncated: { code: 'MODEL_FORMAT', name: 'ModelFormatError', isOutpost: true },
    random: { code: 'MODEL_FORMAT', name: 'ModelFormatError', isOutpost: true },
  });
  expect(r.stillRuns).toEqual([1, 1]);
  // A failed load never appears as a stored model.
  expect(r.stored).toEqual(['vad']);
});

test('R2: wrong name, missing input, wrong type, rank, size and data length are rejected before running', async ({
  page,
}) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const m = await rt.load({ name: 'ppocr', version: '4', url: '/models/ppocr-det.onnx' });
    const f32 = (n: number) => new Float32Array(n);
    const x = { type: 'float32' as const, data: f32(3 * 64 * 64), dims: [1, 3, 64, 64] };
    const cases: Record<string, Record<string, unknown>> = {
      unknownName: { x, y: x },
      missing: {},
      wrongType: { x: { type: 'int32', data: new Int32Array(3 * 64 * 64), dims: [1, 3, 64, 64] } },
      wrongArray: { x: { type: 'float32', data: new Float64Array(3 * 64 * 64), dims: [1, 3, 64, 64] } },
      wrongRank: { x: { type: 'float32', data: f32(3 * 64 * 64), dims: [3, 64, 64] } },
      wrongSize: { x: { type: 'float32', data: f32(4 * 64 * 64), dims: [1, 4, 64, 64] } },
      wrongLength: { x: { type: 'float32', data: f32(100), dims: [1, 3, 64, 64] } },
    };
    const codes: Record<string, string> = {};
    for (const [k, feeds] of Object.entries(cases)) {
      try {
        await m.run(feeds as never);
        codes[k] = 'ran!';
      } catch (e) {
        codes[k] = `${(e as Error).name}:${(e as { code: string }).code}`;
      }
    }
    const ok = await m.run({ x });
    await rt.close();
    return { codes, okDims: Object.values(ok)[0]!.dims };
  });
  expect(r.codes).toEqual({
    unknownName: 'InputError:INPUT_UNKNOWN',
    missing: 'InputError:INPUT_MISSING',
    wrongType: 'InputError:INPUT_TYPE',
    wrongArray: 'InputError:INPUT_TYPE',
    wrongRank: 'InputError:INPUT_RANK',
    wrongSize: 'InputError:INPUT_SHAPE',
    wrongLength: 'InputError:INPUT_LENGTH',
  });
  expect(r.okDims).toEqual([1, 1, 64, 64]);
});

test('S1: hash mismatch on download is an IntegrityError; bytes tampered in IndexedDB are never run', async ({
  page,
}) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    let mismatch: unknown;
    try {
      await rt.load({ name: 'vad', version: 'x', url: '/models/silero-vad-v5.onnx', sha256: '0'.repeat(64) });
    } catch (e) {
      mismatch = { code: (e as { code: string }).code, expected: (e as { expected: string }).expected };
    }
    const m = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
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
    const res = await fetch('/__requests', { method: 'DELETE' });
    await res.text();
    const again = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
    const refetched = (await (await fetch('/__requests')).json()) as string[];
    const shaAfter = (await rt.cache.list())[0]!.sha256;
    await rt.close();
    return { mismatch, source: again.source, refetched, sha, shaAfter };
  });
  expect(r.mismatch).toEqual({ code: 'INTEGRITY', expected: '0'.repeat(64) });
  // The tampered copy was detected and replaced by a fresh download, not run.
  expect(r.source).toBe('network');
  expect(r.refetched).toEqual(['/models/silero-vad-v5.onnx']);
  expect(r.shaAfter).toBe(r.sha);
});

test('S2: a model bigger than the storage quota is a QuotaError with the estimate; stored models intact', async ({
  page,
  context,
}) => {
  const cdp = await context.newCDPSession(page);
  const origin = new URL(page.url()).origin;
  // 3.5 MB for the whole origin (a real quota, enforced by Chromium on write): the 2.3 MB VAD
  // fits, the 4.7 MB PP-OCR det does not.
  await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 3_500_000 });
  try {
    const r = await page.evaluate(async () => {
      const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
      const vad = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
      await vad.dispose();
      let err: Record<string, unknown> = {};
      try {
        await rt.load({ name: 'ppocr', version: '4', url: '/models/ppocr-det.onnx' });
      } catch (e) {
        const q = e as { name: string; code: string; quota: unknown; usage: unknown; needed: number };
        err = {
          name: q.name,
          code: q.code,
          needed: q.needed,
          estimate: typeof q.quota === 'number' && typeof q.usage === 'number',
        };
      }
      const list = (await rt.cache.list()).map((m) => m.name);
      const again = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
      const out = await again.run({
        input: { type: 'float32', data: new Float32Array(512), dims: [1, 512] },
        state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
        sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
      });
      await rt.close();
      return { err, list, vadSource: again.source, vadRuns: out.output?.dims };
    });
    // Chromium's estimate() does not reflect a DevTools quota override, so only its presence is checked.
    expect(r.err).toEqual({ name: 'QuotaError', code: 'QUOTA_EXCEEDED', needed: 4745517, estimate: true });
    expect(r.list).toEqual(['vad']);
    expect(r.vadSource).toBe('cache');
    expect(r.vadRuns).toEqual([1, 1]);
  } finally {
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
  }
});

test('S3: a model larger than one chunk is stored in chunks and loads back intact', async ({ page }) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
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
