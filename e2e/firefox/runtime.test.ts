import type { Page } from 'puppeteer-core';
import { beforeEach, expect, test } from 'vitest';
import { clearStore, firefoxForFile, openHarness } from './browser.js';

// The runtime in Firefox ESR (e2e/runtime.spec.ts, errors.spec.ts and no-webgpu.spec.ts in
// Chromium): digits on WASM with 1 and 2 threads under cross-origin isolation, no WebGPU, typed
// errors for bad models and inputs, dispose. Every runtime here takes a load stalled for 20 s as
// a hung worker (supervision.loadTimeout; the default 2 minutes is past the test timeout): about
// 1 load in 100 never finishes creating its 2-thread WASM session in Firefox.

let page: Page;
/** Worker script URLs Firefox reported (BiDi dedicated-worker realms, nested ones included). */
const workers: string[] = [];

firefoxForFile((_, p) => {
  page = p;
  page.on('workercreated', (w) => workers.push(w.url()));
});

beforeEach(async () => {
  await openHarness(page);
  await clearStore(page);
  workers.length = 0;
});

/** Loads digits on WASM with `numThreads` and classifies the sample digits, then disposes. */
const classify = (numThreads: number) =>
  page.evaluate(async (numThreads) => {
    const samples = (await (await fetch('/models/digits-sample.json')).json()) as {
      samples: { label: number; input: number[] }[];
    };
    const rt = await window.outpost.createRuntime({
      backends: ['wasm'],
      wasm: { numThreads },
      supervision: { loadTimeout: '20s' },
    });
    const model = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const predictions: number[] = [];
    for (const s of samples.samples) {
      const out = await model.run({ x: { type: 'float32', data: Float32Array.from(s.input), dims: [1, 1, 28, 28] } });
      const l = Array.from(out.logits!.data as Float32Array);
      predictions.push(l.indexOf(Math.max(...l)));
    }
    const info = { backend: model.backend, source: model.source, inputs: model.inputs };
    await model.dispose();
    const afterDispose = await model
      .run({ x: { type: 'float32', data: new Float32Array(784), dims: [1, 1, 28, 28] } })
      .then(
        () => 'ran',
        (e: { name: string; code: string }) => `${e.name}:${e.code}`,
      );
    await rt.close();
    return {
      ...info,
      afterDispose,
      predictions,
      labels: samples.samples.map((s) => s.label),
      isolated: crossOriginIsolated,
    };
  }, numThreads);

test('digits on WASM, 1 thread: load, right answers, dispose; no pthread worker', async () => {
  const r = await classify(1);
  expect(r.backend).toBe('wasm');
  expect(r.inputs).toEqual([{ name: 'x', type: 'float32', dims: ['batch', 1, 28, 28] }]);
  expect(r.predictions).toEqual(r.labels);
  expect(r.afterDispose).toBe('DisposedError:DISPOSED');
  expect(workers.filter((u) => u.includes('ort-wasm-simd-threaded'))).toEqual([]);
});

test('digits on WASM, 2 threads: cross-origin isolated, onnxruntime starts a pthread worker', async () => {
  const r = await classify(2);
  expect(r.isolated).toBe(true);
  expect(r.backend).toBe('wasm');
  expect(r.predictions).toEqual(r.labels);
  expect(workers.filter((u) => u.includes('ort-wasm-simd-threaded')).length).toBeGreaterThanOrEqual(1);
});

test('no WebGPU in Firefox ESR: the default preference falls back to WASM and says why', async () => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ supervision: { loadTimeout: '20s' } });
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const first = { backend: m.backend, fallbackReason: m.fallbackReason, gpu: 'gpu' in navigator };
    const forced = await rt
      .load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' }, { backend: 'webgpu' })
      .then(
        () => 'loaded',
        (e: { code: string; attempts: unknown }) => ({ code: e.code, attempts: e.attempts }),
      );
    await rt.close();
    return { ...first, forced };
  });
  expect(r.gpu).toBe(false);
  expect(r.backend).toBe('wasm');
  expect(r.fallbackReason).toMatch(/^webgpu: /);
  expect(r.forced).toMatchObject({ code: 'BACKEND_UNAVAILABLE', attempts: [{ backend: 'webgpu' }] });
});

test('R1: 404, HTML page, truncated and random bytes are typed errors; the loaded model keeps working', async () => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], supervision: { loadTimeout: '20s' } });
    const digits = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const codes: Record<string, string> = {};
    const bad: Record<string, string> = {
      notFound: '/models/missing.onnx',
      html: '/fixtures/html.onnx',
      htmlAsBinary: '/fixtures/html-as-binary.onnx',
      truncated: '/fixtures/truncated.onnx',
      random: '/fixtures/random.onnx',
    };
    for (const [k, url] of Object.entries(bad)) {
      codes[k] = await rt.load({ name: k, version: '1', url }).then(
        () => 'loaded!',
        (e: InstanceType<typeof window.outpost.OutpostError>) =>
          `${e.name}:${e.code}:${String(e instanceof window.outpost.OutpostError)}`,
      );
    }
    const out = await digits.run({ x: { type: 'float32', data: new Float32Array(784), dims: [1, 1, 28, 28] } });
    const stored = (await rt.cache.list()).map((m) => m.name);
    await rt.close();
    return { codes, stillRuns: out.logits?.dims, stored };
  });
  expect(r.codes).toEqual({
    notFound: 'DownloadError:DOWNLOAD_FAILED:true',
    html: 'ModelFormatError:MODEL_FORMAT:true',
    htmlAsBinary: 'ModelFormatError:MODEL_FORMAT:true',
    truncated: 'ModelFormatError:MODEL_FORMAT:true',
    random: 'ModelFormatError:MODEL_FORMAT:true',
  });
  expect(r.stillRuns).toEqual([1, 10]);
  expect(r.stored).toEqual(['digits']);
});

test('R2: wrong name, missing input, wrong type, rank, size and data length are rejected before running', async () => {
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], supervision: { loadTimeout: '20s' } });
    const m = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const f32 = (n: number) => new Float32Array(n);
    const x = { type: 'float32' as const, data: f32(784), dims: [1, 1, 28, 28] };
    const cases: Record<string, Record<string, unknown>> = {
      unknownName: { x, y: x },
      missing: {},
      wrongType: { x: { type: 'int32', data: new Int32Array(784), dims: [1, 1, 28, 28] } },
      wrongRank: { x: { type: 'float32', data: f32(784), dims: [1, 28, 28] } },
      wrongSize: { x: { type: 'float32', data: f32(2 * 784), dims: [1, 2, 28, 28] } },
      wrongLength: { x: { type: 'float32', data: f32(100), dims: [1, 1, 28, 28] } },
    };
    const codes: Record<string, string> = {};
    for (const [k, feeds] of Object.entries(cases)) {
      codes[k] = await m.run(feeds as never).then(
        () => 'ran!',
        (e: { name: string; code: string }) => `${e.name}:${e.code}`,
      );
    }
    const ok = await m.run({ x });
    await rt.close();
    return { codes, okDims: ok.logits!.dims };
  });
  expect(r.codes).toEqual({
    unknownName: 'InputError:INPUT_UNKNOWN',
    missing: 'InputError:INPUT_MISSING',
    wrongType: 'InputError:INPUT_TYPE',
    wrongRank: 'InputError:INPUT_RANK',
    wrongSize: 'InputError:INPUT_SHAPE',
    wrongLength: 'InputError:INPUT_LENGTH',
  });
  expect(r.okDims).toEqual([1, 10]);
});
