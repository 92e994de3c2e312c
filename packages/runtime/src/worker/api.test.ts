import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { onnxEngine } from '@outpost/backend-onnx';
import type { BackendId, Engine, EngineSession } from '@outpost/core';
import { IDBFactory } from 'fake-indexeddb';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { sha256Hex } from '../store/index.js';
import { tamperStoredChunk } from '../testing/store.js';
import { WorkerRuntime } from './api.js';
import { registerEngine } from './engines.js';

// The worker runtime end to end in Node: real onnxruntime-web (WASM, 1 thread), a fake
// IndexedDB, and a stubbed fetch whose every request is logged.
const root = resolve(import.meta.dirname, '../../../..');
const silero = new Uint8Array(readFileSync(resolve(root, 'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx')));

interface Served {
  status?: number;
  body: Uint8Array | string;
  type?: string;
}
let served: Record<string, Served> = {};
let requests: string[] = [];

beforeAll(() => registerEngine(onnxEngine));

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
  requests = [];
  served = { '/silero.onnx': { body: silero } };
  vi.stubGlobal('fetch', async (url: string) => {
    requests.push(url);
    const s = served[url];
    if (!s) return new Response('not found', { status: 404 });
    const body = typeof s.body === 'string' ? s.body : new Uint8Array(s.body);
    return new Response(body, {
      status: s.status ?? 200,
      headers: { 'content-type': s.type ?? 'application/octet-stream', 'content-length': String(body.length) },
    });
  });
});
afterEach(() => vi.unstubAllGlobals());

async function runtime() {
  const rt = new WorkerRuntime();
  await rt.init({ backends: ['wasm'], numThreads: 1, maxInputBytes: 64 * 1024 * 1024 });
  return rt;
}

const sileroFeeds = () => ({
  input: { type: 'float32' as const, data: new Float32Array(512).fill(0.1), dims: [1, 512] },
  state: { type: 'float32' as const, data: new Float32Array(2 * 128), dims: [2, 1, 128] },
  sr: { type: 'int64' as const, data: new BigInt64Array([16000n]), dims: [] },
});

let callId = 0;
const load = (rt: WorkerRuntime, extra: Partial<{ url: string; sha256: string; version: string }> = {}) =>
  rt.load({
    callId: ++callId,
    source: { name: 'vad', version: extra.version ?? '5', url: extra.url ?? '/silero.onnx', sha256: extra.sha256 },
  });

describe('WorkerRuntime (Node, real onnxruntime-web)', () => {
  it('downloads, verifies, stores and runs a model; unknown dims come back as null', async () => {
    const rt = await runtime();
    const progress: number[] = [];
    const info = await rt.load(
      { callId: ++callId, source: { name: 'vad', version: '5', url: '/silero.onnx', sha256: await sha256Hex(silero) } },
      (p) => progress.push(p.loaded),
    );
    expect(info).toMatchObject({ name: 'vad', version: '5', backend: 'wasm', source: 'network' });
    expect(info.inputs).toEqual([
      { name: 'input', type: 'float32', dims: [null, null] },
      { name: 'state', type: 'float32', dims: [2, null, 128] },
      { name: 'sr', type: 'int64', dims: [] },
    ]);
    expect(progress.at(-1)).toBe(silero.length);
    const { outputs } = await rt.run({ callId: ++callId, modelId: info.id, feeds: sileroFeeds() });
    expect(outputs.output?.dims).toEqual([1, 1]);
    expect(outputs.stateN?.dims).toEqual([2, 1, 128]);
    expect(Number.isFinite((outputs.output!.data as Float32Array)[0])).toBe(true);
    expect(await rt.cacheList()).toMatchObject([
      { name: 'vad', version: '5', bytes: silero.length, sha256: await sha256Hex(silero) },
    ]);
    await rt.dispose(info.id);
  });

  it('a second load of the same name + version makes no network request', async () => {
    const rt = await runtime();
    await load(rt);
    expect(requests).toEqual(['/silero.onnx']);
    const again = await load(rt);
    expect(again.source).toBe('cache');
    expect(requests).toEqual(['/silero.onnx']);
    // A new worker (a reload) finds it in IndexedDB too.
    const fresh = await runtime();
    expect((await load(fresh)).source).toBe('cache');
    expect(requests).toEqual(['/silero.onnx']);
  });

  it('S1: bytes tampered in the store are detected, dropped and fetched again, never run', async () => {
    const rt = await runtime();
    await load(rt);
    await tamperStoredChunk(100, 1);
    const info = await load(rt);
    expect(info.source).toBe('network');
    expect(requests).toEqual(['/silero.onnx', '/silero.onnx']);
  });

  it('hash mismatch on download: IntegrityError, nothing stored', async () => {
    const rt = await runtime();
    const err = await load(rt, { sha256: 'a'.repeat(64) }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INTEGRITY', expected: 'a'.repeat(64), actual: await sha256Hex(silero) });
    expect(await rt.cacheList()).toEqual([]);
  });

  it('404: DownloadError with the status; nothing stored', async () => {
    const rt = await runtime();
    await expect(load(rt, { url: '/missing.onnx' })).rejects.toMatchObject({ code: 'DOWNLOAD_FAILED', status: 404 });
    expect(await rt.cacheList()).toEqual([]);
  });

  it('offline and not cached: NotCachedError', async () => {
    const rt = await runtime();
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(load(rt)).rejects.toMatchObject({ code: 'NOT_CACHED', model: 'vad' });
  });

  it('R1: an HTML page, truncated bytes and random bytes are ModelFormatErrors; the worker keeps serving', async () => {
    const rt = await runtime();
    const good = await load(rt);
    served['/page.onnx'] = { body: '<!doctype html><title>x</title>', type: 'text/html' };
    served['/page-as-binary.onnx'] = { body: '<!doctype html><title>x</title>' };
    served['/truncated.onnx'] = { body: silero.subarray(0, silero.length >> 1) };
    const rand = new Uint8Array(20_000).map((_, i) => (i * 7919 + 13) & 0xff);
    served['/random.onnx'] = { body: rand };
    served['/empty.onnx'] = { body: new Uint8Array(0) };
    for (const url of ['/page.onnx', '/page-as-binary.onnx', '/truncated.onnx', '/random.onnx', '/empty.onnx']) {
      const err = await load(rt, { url, version: url }).catch((e: unknown) => e);
      expect(err, url).toMatchObject({ code: 'MODEL_FORMAT' });
    }
    const { outputs } = await rt.run({ callId: ++callId, modelId: good.id, feeds: sileroFeeds() });
    expect(outputs.output?.dims).toEqual([1, 1]);
  });

  it('R2: a bad input is rejected before running and the model keeps working', async () => {
    const rt = await runtime();
    const info = await load(rt);
    const feeds = { ...sileroFeeds(), sr: { type: 'int32' as const, data: new Int32Array([16000]), dims: [] } };
    await expect(rt.run({ callId: ++callId, modelId: info.id, feeds })).rejects.toMatchObject({
      code: 'INPUT_TYPE',
      input: 'sr',
    });
    const ok = await rt.run({ callId: ++callId, modelId: info.id, feeds: sileroFeeds() });
    expect(ok.outputs.output?.dims).toEqual([1, 1]);
  });

  it('R6: many concurrent runs on two models never cross results', async () => {
    const rt = await runtime();
    const a = await load(rt);
    const b = await load(rt, { version: '5b' });
    const feedsFor = (v: number) => ({
      ...sileroFeeds(),
      input: { type: 'float32' as const, data: new Float32Array(512).fill(v), dims: [1, 512] },
    });
    // Reference outputs, one at a time.
    const values = [0, 0.05, 0.2, 0.5, 0.9];
    const ref = new Map<number, number>();
    for (const v of values) {
      const { outputs } = await rt.run({ callId: ++callId, modelId: a.id, feeds: feedsFor(v) });
      ref.set(v, (outputs.output!.data as Float32Array)[0]!);
    }
    const calls = [];
    for (let i = 0; i < 40; i++) {
      const v = values[i % values.length]!;
      const model = i % 2 ? a : b;
      calls.push(
        rt
          .run({ callId: ++callId, modelId: model.id, feeds: feedsFor(v) })
          .then((r) => [v, (r.outputs.output!.data as Float32Array)[0]] as const),
      );
    }
    for (const [v, out] of await Promise.all(calls)) expect(out).toBe(ref.get(v));
  });

  it('cancel drops a run still waiting its turn', async () => {
    const rt = await runtime();
    const info = await load(rt);
    const first = rt.run({ callId: ++callId, modelId: info.id, feeds: sileroFeeds() });
    const secondId = ++callId;
    const second = rt.run({ callId: secondId, modelId: info.id, feeds: sileroFeeds() });
    rt.cancel(secondId);
    await expect(first).resolves.toBeDefined();
    await expect(second).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('runs after dispose are rejected with DisposedError', async () => {
    const rt = await runtime();
    const info = await load(rt);
    await rt.dispose(info.id);
    await expect(rt.run({ callId: ++callId, modelId: info.id, feeds: sileroFeeds() })).rejects.toMatchObject({
      code: 'DISPOSED',
    });
  });

  it('a WebGPU session whose first run fails is reopened on WASM, the run succeeds and says so', async () => {
    // A fake engine for a fake format (first bytes 08 99): its WebGPU sessions open and pass the
    // probe run, then fail on real input, the way onnxruntime-web's WebGPU provider sometimes does.
    const runs: BackendId[] = [];
    const session = (backend: BackendId): EngineSession => ({
      backend,
      inputs: [{ name: 'x', type: 'float32', dims: [1] }],
      outputs: [{ name: 'y', type: 'float32', dims: [1] }],
      run: async (feeds) => {
        runs.push(backend);
        // The probe run (synthetic 0.5 inputs) passes; the app's first real input fails.
        if (backend === 'webgpu' && (feeds.x!.data as Float32Array)[0] === 42) throw new Error('GPU validation error');
        return { y: feeds.x! };
      },
      dispose: async () => undefined,
    });
    const flaky: Engine = {
      name: 'flaky-test-engine',
      priority: 1000,
      accepts: (m) => m.graph[0] === 0x08 && m.graph[1] === 0x99,
      probe: async () => null,
      init: async () => undefined,
      open: async (_m, backend) => session(backend),
    };
    registerEngine(flaky);
    served['/flaky.bin'] = { body: new Uint8Array([0x08, 0x99, 1, 2, 3]) };
    // A device with a (fake) WebGPU adapter.
    const rt = new WorkerRuntime({ missing: async () => null, adapter: async () => ({ features: [] }) });
    await rt.init({ backends: ['webgpu', 'wasm'], numThreads: 1, maxInputBytes: 1 << 20 });
    const info = await rt.load({ callId: ++callId, source: { name: 'flaky', version: '1', url: '/flaky.bin' } });
    expect(info.backend).toBe('webgpu');
    const feeds = { x: { type: 'float32' as const, data: new Float32Array([42]), dims: [1] } };
    const first = await rt.run({ callId: ++callId, modelId: info.id, feeds });
    expect(first.backend).toBe('wasm');
    expect(first.fallbackReason).toMatch(/^webgpu: first run failed: GPU validation error/);
    expect(Array.from(first.outputs.y!.data as Float32Array)).toEqual([42]);
    const second = await rt.run({ callId: ++callId, modelId: info.id, feeds });
    expect(second.backend).toBeUndefined();
    expect(runs).toEqual(['webgpu', 'webgpu', 'wasm', 'wasm']);
  });

  it('downloads and stores the companion files an engine names (TF.js shards), and loads them from the store', async () => {
    // A fake format: a JSON graph that lists its shards, like a TF.js model.json.
    const opened: string[][] = [];
    const shards: Engine = {
      name: 'sharded-test-engine',
      priority: 1000,
      accepts: (m) => m.graph[0] === 0x7b && new TextDecoder().decode(m.graph).includes('"shards"'),
      companions: (graph, url) =>
        (JSON.parse(new TextDecoder().decode(graph)) as { shards: string[] }).shards.map((p) => ({
          path: p,
          url: new URL(p, url).href,
        })),
      probe: async () => null,
      init: async () => undefined,
      open: async (m, backend) => {
        opened.push(m.external.map((f) => `${f.path}:${f.data.length}`));
        return { backend, inputs: [], outputs: [], run: async () => ({}), dispose: async () => undefined };
      },
    };
    registerEngine(shards);
    served['http://h/m/model.json'] = { body: JSON.stringify({ shards: ['w1.bin', 'w2.bin'] }) };
    served['http://h/m/w1.bin'] = { body: new Uint8Array(10) };
    served['http://h/m/w2.bin'] = { body: new Uint8Array(20) };
    const rt = await runtime();
    const source = { name: 'sharded', version: '1', url: 'http://h/m/model.json' };
    const first = await rt.load({ callId: ++callId, source });
    expect(first.source).toBe('network');
    expect(requests).toEqual(['http://h/m/model.json', 'http://h/m/w1.bin', 'http://h/m/w2.bin']);
    const again = await (await runtime()).load({ callId: ++callId, source });
    expect(again.source).toBe('cache');
    expect(requests).toHaveLength(3);
    expect(opened).toEqual([
      ['w1.bin:10', 'w2.bin:20'],
      ['w1.bin:10', 'w2.bin:20'],
    ]);
    expect((await rt.cacheList())[0]).toMatchObject({
      name: 'sharded',
      bytes: 30 + served['http://h/m/model.json']!.body.length,
    });
  });

  it('variants: the choice is made once per device, stored with the winner only, and remade when the device changes', async () => {
    // Fake format "08 77 <k>": variant k's session answers y = k; only k = 2 matches the golden output.
    const opened: string[] = [];
    const engine: Engine = {
      name: 'variant-test-engine',
      priority: 1000,
      accepts: (m) => m.graph[0] === 0x08 && m.graph[1] === 0x77,
      probe: async (b) => (b === 'wasm' ? null : 'no WebGPU in this test'),
      init: async () => undefined,
      open: async (m, backend) => {
        const k = m.graph[2]!;
        opened.push(`v${k}`);
        return {
          backend,
          inputs: [{ name: 'x', type: 'float32', dims: [1] }],
          outputs: [{ name: 'y', type: 'float32', dims: [1] }],
          run: async () => ({ y: { type: 'float32', data: new Float32Array([k]), dims: [1] } }),
          dispose: async () => undefined,
        };
      },
    };
    registerEngine(engine);
    for (const k of [1, 2, 3]) served[`/v${k}.bin`] = { body: new Uint8Array([0x08, 0x77, k]) };
    const source = {
      name: 'variants',
      version: '1',
      variants: [1, 2, 3].map((k) => ({ id: `v${k}`, files: [{ path: 'model.bin', url: `/v${k}.bin` }] })),
      golden: {
        inputs: { x: { type: 'float32' as const, data: new Float32Array([0]), dims: [1] } },
        outputs: { y: { type: 'float32' as const, data: new Float32Array([2]), dims: [1] } },
        tolerance: 0,
      },
    };
    vi.stubGlobal('navigator', { userAgent: 'Mozilla/5.0 Chrome/150.0.0.0' });
    const rt = await runtime();
    const first = await rt.load({ callId: ++callId, source });
    expect(first.variant).toBe('v2');
    expect(first.choice).toMatchObject({ variant: 'v2', backend: 'wasm', cached: false });
    expect(first.choice?.deviceKey).toContain('Chrome 150');
    expect(first.choice?.trials.map((t) => [t.variant, t.ok])).toEqual([
      ['v1', false],
      ['v2', true],
      ['v3', false],
    ]);
    expect((await rt.cacheList()).map((m) => m.variant)).toEqual(['v2']);

    // Same device: the stored choice and bytes are used; nothing is downloaded or tried again.
    requests = [];
    opened.length = 0;
    const second = await (await runtime()).load({ callId: ++callId, source });
    expect(second).toMatchObject({ variant: 'v2', source: 'cache', choice: { cached: true } });
    expect(requests).toEqual([]);
    expect(opened).toEqual(['v2']);

    // A browser update: the choice is made again.
    vi.stubGlobal('navigator', { userAgent: 'Mozilla/5.0 Chrome/151.0.0.0' });
    opened.length = 0;
    const third = await (await runtime()).load({ callId: ++callId, source });
    expect(third.choice).toMatchObject({ variant: 'v2', cached: false });
    expect(opened).toEqual(['v1', 'v2', 'v3']);
  });
});

describe('WorkerRuntime telemetry (Node, real onnxruntime-web)', () => {
  it('records loads, runs and errors per model/version/backend in memory and sends them on flush, never inputs or outputs', async () => {
    const posts: { url: string; headers: Record<string, string>; body: string }[] = [];
    const inner = globalThis.fetch;
    vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
      if (!url.startsWith('http://collector.test/')) return inner(url);
      posts.push({ url, headers: init!.headers as Record<string, string>, body: String(init!.body) });
      return new Response('{}', { status: 200 });
    });
    const rt = new WorkerRuntime();
    await rt.init({
      backends: ['wasm'],
      numThreads: 1,
      maxInputBytes: 64 * 1024 * 1024,
      telemetry: {
        endpoint: 'http://collector.test/',
        token: 't0k',
        sampleRate: 1,
        flushEveryMs: 0,
        maxQueueBytes: 1e6,
        maxQueueCount: 100,
        drift: { threshold: 0.2, windowRuns: 1000, inputs: false },
      },
    });
    const cold = await load(rt);
    const warm = await load(rt);
    for (let i = 0; i < 3; i++) await rt.run({ callId: ++callId, modelId: warm.id, feeds: sileroFeeds() });
    const bad = { ...sileroFeeds(), input: { type: 'float32' as const, data: new Float32Array(3), dims: [1, 512] } };
    await expect(rt.run({ callId: ++callId, modelId: cold.id, feeds: bad })).rejects.toThrow();
    rt.telemetryEvent({ kind: 'activated', name: 'vad', version: '5', from: '4' });
    // Recording wrote nothing: the telemetry database has no batch before the flush.
    expect(posts).toEqual([]);
    const report = await rt.telemetryFlush();
    expect(report).toMatchObject({ sent: 2, pending: 0 });
    expect(posts.map((p) => p.url).sort()).toEqual([
      'http://collector.test/v1/logs',
      'http://collector.test/v1/metrics',
    ]);
    expect(posts[0]!.headers.Authorization).toBe('Bearer t0k');
    const metrics = JSON.parse(posts.find((p) => p.url.endsWith('/v1/metrics'))!.body) as {
      resourceMetrics: {
        scopeMetrics: {
          metrics: { name: string; sum?: { dataPoints: { asInt: string; attributes?: unknown[] }[] } }[];
        }[];
      }[];
    };
    const byName = Object.fromEntries(metrics.resourceMetrics[0]!.scopeMetrics[0]!.metrics.map((m) => [m.name, m]));
    expect(byName['outpost.run.count']!.sum!.dataPoints[0]!.asInt).toBe('3');
    expect(byName['outpost.error.count']!.sum!.dataPoints[0]!.attributes).toContainEqual({
      key: 'outpost.error.code',
      value: { stringValue: 'INPUT_LENGTH' },
    });
    expect(byName['outpost.cache.hit.count']!.sum!.dataPoints[0]!.asInt).toBe('1');
    expect(byName['outpost.load.duration']).toBeDefined();
    expect(byName['outpost.run.duration']).toBeDefined();
    expect(byName['outpost.storage.bytes']).toBeDefined();
    for (const p of posts) expect(p.body).not.toContain('0.1,0.1');
  });

  it('a sampled run that returns NaN or Infinity counts as a failed run (NONFINITE_OUTPUT) for the fleet; the app still gets it', async () => {
    const posts: string[] = [];
    const inner = globalThis.fetch;
    vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
      if (!url.startsWith('http://collector.test/')) return inner(url);
      posts.push(String(init!.body));
      return new Response('{}', { status: 200 });
    });
    // An engine whose model echoes its input: NaN in, NaN out.
    const echo: Engine = {
      name: 'echo-test-engine',
      priority: 1000,
      accepts: (m) => m.graph[0] === 0x08 && m.graph[1] === 0x98,
      probe: async () => null,
      init: async () => undefined,
      open: async (_m, backend: BackendId) => ({
        backend,
        inputs: [{ name: 'x', type: 'float32', dims: [2] }],
        outputs: [{ name: 'y', type: 'float32', dims: [2] }],
        run: async (feeds) => ({ y: feeds.x! }),
        dispose: async () => undefined,
      }),
    };
    registerEngine(echo);
    served['/echo.bin'] = { body: new Uint8Array([0x08, 0x98, 1]) };
    const rt = new WorkerRuntime();
    await rt.init({
      backends: ['wasm'],
      numThreads: 1,
      maxInputBytes: 1 << 20,
      telemetry: {
        endpoint: 'http://collector.test/',
        sampleRate: 1,
        flushEveryMs: 0,
        maxQueueBytes: 1e6,
        maxQueueCount: 100,
        drift: { threshold: 0.2, windowRuns: 1000, inputs: false },
      },
    });
    const info = await rt.load({ callId: ++callId, source: { name: 'echo', version: '1', url: '/echo.bin' } });
    const x = (a: number, b: number) => ({
      x: { type: 'float32' as const, data: Float32Array.from([a, b]), dims: [2] },
    });
    for (const feeds of [x(1, 2), x(Number.NaN, 0), x(3, Number.POSITIVE_INFINITY), x(4, 5)]) {
      const out = await rt.run({ callId: ++callId, modelId: info.id, feeds });
      expect(Array.from(out.outputs.y!.data as Float32Array)).toEqual(Array.from(feeds.x.data));
    }
    await rt.telemetryFlush();
    const metrics = posts
      .map(
        (b) =>
          JSON.parse(b) as {
            resourceMetrics?: {
              scopeMetrics: {
                metrics: {
                  name: string;
                  sum?: {
                    dataPoints: { asInt: string; attributes?: { key: string; value: { stringValue?: string } }[] }[];
                  };
                }[];
              }[];
            }[];
          },
      )
      .flatMap((r) => r.resourceMetrics ?? [])
      .flatMap((r) => r.scopeMetrics[0]!.metrics);
    const sum = (name: string, code?: string) =>
      metrics
        .filter((m) => m.name === name)
        .flatMap((m) => m.sum!.dataPoints)
        .filter(
          (d) =>
            code === undefined ||
            d.attributes?.some((a) => a.key === 'outpost.error.code' && a.value.stringValue === code),
        )
        .reduce((n, d) => n + Number(d.asInt), 0);
    expect(sum('outpost.run.count')).toBe(2);
    expect(sum('outpost.error.count', 'NONFINITE_OUTPUT')).toBe(2);
  });
});
