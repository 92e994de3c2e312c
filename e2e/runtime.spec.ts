import { expect, test, type Page } from '@playwright/test';
import { clearRequests, clearStore, openHarness, serverRequests } from './helpers.js';

// The runtime in Chromium: the reference digits model on WASM with 1 and 2 threads and on
// WebGPU (SwiftShader here), the store across reloads, progress and cancellation.

interface Sample {
  label: number;
  input: number[];
}

/** Loads digits on the given backend/threads and classifies the card's sample digits. */
async function classify(page: Page, options: { backend: 'wasm' | 'webgpu'; numThreads?: number }) {
  return page.evaluate(async ({ backend, numThreads }) => {
    const samples = (await (await fetch('/models/digits-sample.json')).json()) as { samples: Sample[] };
    const rt = await window.outpost.createRuntime({ backends: [backend], wasm: { numThreads: numThreads ?? 1 } });
    const model = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const predictions: number[] = [];
    const logits: number[][] = [];
    for (const s of samples.samples) {
      const out = await model.run({ x: { type: 'float32', data: Float32Array.from(s.input), dims: [1, 1, 28, 28] } });
      const l = Array.from(out.logits!.data as Float32Array);
      logits.push(l);
      predictions.push(l.indexOf(Math.max(...l)));
    }
    const info = {
      backend: model.backend,
      fallbackReason: model.fallbackReason,
      source: model.source,
      inputs: model.inputs,
      outputs: model.outputs,
    };
    await rt.close();
    return { ...info, predictions, labels: samples.samples.map((s) => s.label), logits, isolated: crossOriginIsolated };
  }, options);
}

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('digits on WASM, 1 thread: right answers, declared inputs and outputs, no thread workers', async ({ page }) => {
  const threads: string[] = [];
  page.on('worker', (w) => w.url().includes('ort-wasm-simd-threaded') && threads.push(w.url()));
  const r = await classify(page, { backend: 'wasm', numThreads: 1 });
  expect(r.backend).toBe('wasm');
  expect(r.inputs).toEqual([{ name: 'x', type: 'float32', dims: ['batch', 1, 28, 28] }]);
  expect(r.outputs.map((o) => o.name)).toContain('logits');
  expect(r.predictions).toEqual(r.labels);
  expect(threads).toEqual([]);
});

test('digits on WASM, 2 threads: onnxruntime starts a pthread worker under cross-origin isolation', async ({
  page,
}) => {
  const threads: string[] = [];
  page.on('worker', (w) => w.url().includes('ort-wasm-simd-threaded') && threads.push(w.url()));
  const r = await classify(page, { backend: 'wasm', numThreads: 2 });
  expect(r.isolated).toBe(true);
  expect(r.backend).toBe('wasm');
  expect(r.predictions).toEqual(r.labels);
  // 2 threads = the Outpost worker plus one pthread worker from onnxruntime-web's pool.
  expect(threads.length).toBeGreaterThanOrEqual(1);
});

test('digits on WebGPU (SwiftShader adapter): same answers as WASM', async ({ page }) => {
  const gpu = await classify(page, { backend: 'webgpu' });
  expect(gpu.backend).toBe('webgpu');
  expect(gpu.fallbackReason).toBeUndefined();
  expect(gpu.predictions).toEqual(gpu.labels);
  const cpu = await classify(page, { backend: 'wasm' });
  let maxDiff = 0;
  gpu.logits.forEach((row, i) =>
    row.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - cpu.logits[i]![j]!)))),
  );
  expect(maxDiff).toBeLessThan(1e-3);
});

test('default preference: WebGPU first when the device has an adapter', async ({ page }) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime();
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const first = { backend: m.backend, fallbackReason: m.fallbackReason };
    await rt.close();
    return first;
  });
  expect(r).toEqual({ backend: 'webgpu', fallbackReason: undefined });
});

test('a reload loads from IndexedDB with zero network requests for the model', async ({ page }) => {
  const first = await classify(page, { backend: 'wasm' });
  expect(first.source).toBe('network');
  await clearRequests(page);
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true);
  const second = await classify(page, { backend: 'wasm' });
  expect(second.source).toBe('cache');
  expect(second.predictions).toEqual(second.labels);
  // The harness logs every model and fixture request: only the sample digits (JSON) were fetched.
  expect(await serverRequests(page)).toEqual(['/models/digits-sample.json']);
  const list = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const l = await rt.cache.list();
    const usage = await rt.cache.usage();
    await rt.close();
    return { l, usage };
  });
  expect(list.l).toHaveLength(1);
  expect(list.l[0]).toMatchObject({ name: 'digits', version: '1.0.0' });
  expect(list.l[0]!.sha256).toMatch(/^[0-9a-f]{64}$/);
  expect(list.usage.bytes).toBe(list.l[0]!.bytes);
});

test('progress is reported while downloading; abort cancels the download and stores nothing', async ({ page }) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const progress: { loaded: number; total: number | null }[] = [];
    const ac = new AbortController();
    const t0 = performance.now();
    // The slow fixture trickles 10 KB/s: abort once some bytes have arrived.
    const result = await rt
      .load(
        { name: 'slow', version: '1', url: '/fixtures/slow.onnx' },
        {
          signal: ac.signal,
          onProgress: (p) => {
            progress.push(p);
            if (p.loaded > 2048) ac.abort();
          },
        },
      )
      .then(
        () => 'loaded',
        (e: { name: string; code: string }) => `${e.name}:${e.code}`,
      );
    const elapsed = performance.now() - t0;
    const stored = await rt.cache.list();
    // The runtime is still usable after an aborted load.
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    await rt.close();
    return { result, progress, elapsed, stored, after: m.backend };
  });
  expect(r.result).toBe('AbortError:ABORTED');
  expect(r.progress.length).toBeGreaterThan(0);
  expect(r.progress[0]!.total).toBe(2327524);
  expect(r.elapsed).toBeLessThan(10_000);
  expect(r.stored).toEqual([]);
  expect(r.after).toBe('wasm');
});

test('transfer: true hands input buffers to the worker; outputs always arrive transferred', async ({ page }) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const copied = new Float32Array(784);
    await m.run({ x: { type: 'float32', data: copied, dims: [1, 1, 28, 28] } });
    const moved = new Float32Array(784);
    const out = await m.run({ x: { type: 'float32', data: moved, dims: [1, 1, 28, 28] } }, { transfer: true });
    await rt.close();
    const logits = out.logits!.data;
    return {
      copiedLength: copied.length,
      movedLength: moved.length,
      outOwnsBuffer: logits.byteOffset === 0 && logits.byteLength === logits.buffer.byteLength,
    };
  });
  expect(r).toEqual({ copiedLength: 784, movedLength: 0, outOwnsBuffer: true });
});

test('an AbortSignal cancels a run still waiting its turn; runs before it complete', async ({ page }) => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], wasm: { numThreads: 1 } });
    const m = await rt.load({ name: 'ppocr', version: '4', url: '/models/ppocr-det.onnx' });
    const x = () => ({
      x: { type: 'float32' as const, data: new Float32Array(3 * 320 * 320), dims: [1, 3, 320, 320] },
    });
    const ac = new AbortController();
    const settled = (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { code: string }) => e.code,
      );
    const first = settled(m.run(x()));
    const second = settled(m.run(x()));
    const third = settled(m.run(x(), { signal: ac.signal }));
    ac.abort();
    const results = await Promise.all([first, second, third]);
    const after = await settled(m.run(x()));
    await rt.close();
    return { results, after };
  });
  expect(r.results).toEqual(['ok', 'ok', 'ABORTED']);
  expect(r.after).toBe('ok');
});
