import 'fake-indexeddb/auto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { onnxEngine } from '@outpost/backend-onnx';
import { IDBFactory } from 'fake-indexeddb';
import { addRelease, setChannel, utf8 } from '@outpost/protocol';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryRepo } from '../../../protocol/src/test-repo.js';
import { WorkerRuntime } from './api.js';
import { registerEngine } from './engines.js';

// A model loaded by name from a signed repository brings its drift reference along: the worker
// fetches and verifies it, bins the outputs of sampled runs and raises a drift event.
const root = resolve(import.meta.dirname, '../../../..');
const digits = new Uint8Array(readFileSync(resolve(root, 'models/digits/digits.onnx')));
const REPO = 'http://repo.test/';
const COLLECTOR = 'http://collector.test';

beforeAll(() => registerEngine(onnxEngine));
beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
});
afterEach(() => vi.unstubAllGlobals());

describe('drift from the repository reference', () => {
  it('outputs far from the reference raise an outpost.drift event with PSI and KL, sent as OTLP logs', async () => {
    const now = Date.now();
    const repo = await MemoryRepo.create(now);
    // The reference puts 99 % of logits at 1000 or more, which no logit of a blank digit is.
    const reference = { tensors: { logits: { edges: [-1000, 1000, 2000], counts: [1, 99] } } };
    repo.apply(
      await addRelease(
        repo.state,
        {
          model: 'digits',
          version: '1.0.0',
          files: [{ variant: 'fp32', file: 'digits.onnx', format: 'onnx', primary: true, bytes: digits }],
          reference: utf8(JSON.stringify(reference)),
        },
        repo.signers,
        now,
      ),
    );
    repo.apply(
      await setChannel(
        repo.state,
        { channel: 'stable', model: 'digits', version: '1.0.0', rolloutBp: 10000 },
        repo.signers,
        now,
      ),
    );
    const posts: { url: string; body: string }[] = [];
    const fetched: string[] = [];
    vi.stubGlobal('fetch', async (input: string | URL, init?: RequestInit) => {
      const url = String(input);
      fetched.push(url);
      if (url.startsWith(COLLECTOR)) {
        posts.push({ url, body: String(init?.body) });
        return new Response('{}', { status: 200 });
      }
      const bytes = repo.files.get(url.slice(REPO.length));
      if (!bytes) return new Response('not found', { status: 404 });
      return new Response(new Uint8Array(bytes), { status: 200, headers: { 'content-length': String(bytes.length) } });
    });
    const rt = new WorkerRuntime();
    await rt.init({
      backends: ['wasm'],
      numThreads: 1,
      maxInputBytes: 64 * 1024 * 1024,
      repository: { url: REPO, trustedRoot: repo.rootText(), channel: 'stable' },
      telemetry: {
        endpoint: COLLECTOR,
        sampleRate: 1,
        flushEveryMs: 0,
        maxQueueBytes: 1e6,
        maxQueueCount: 100,
        drift: { threshold: 0.2, windowRuns: 4, inputs: false },
      },
    });
    const info = await rt.loadNamed({ callId: 1, name: 'digits', activate: true });
    expect(info.version).toBe('1.0.0');
    // The reference is fetched and verified in the background: let that finish before the runs.
    await vi.waitFor(() => expect(fetched.some((u) => u.endsWith('.reference.json'))).toBe(true));
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 4; i++) {
      await rt.run({
        callId: 10 + i,
        modelId: info.id,
        feeds: { x: { type: 'float32', data: new Float32Array(784), dims: [1, 1, 28, 28] } },
      });
    }
    await rt.telemetryFlush();
    const logs = posts.find((p) => p.url.endsWith('/v1/logs'));
    expect(logs).toBeDefined();
    const records = (
      JSON.parse(logs!.body) as {
        resourceLogs: {
          scopeLogs: {
            logRecords: {
              eventName: string;
              attributes: { key: string; value: { doubleValue?: number; stringValue?: string } }[];
            }[];
          }[];
        }[];
      }
    ).resourceLogs[0]!.scopeLogs[0]!.logRecords;
    const drift = records.find((r) => r.eventName === 'outpost.drift');
    expect(drift).toBeDefined();
    const attr = Object.fromEntries(drift!.attributes.map((a) => [a.key, a.value]));
    expect(attr['outpost.drift.tensor']).toEqual({ stringValue: 'logits' });
    // All 40 logits in bin 0 against 1 % there: PSI = (1-.01)ln(1/.01) + (1e-4-.99)ln(1e-4/.99) ≈ 13.67.
    expect(attr['outpost.drift.psi']!.doubleValue).toBeGreaterThan(10);
    expect(attr['outpost.drift.kl']!.doubleValue).toBeCloseTo(Math.log(1 / 0.01), 1);
    const metrics = posts.find((p) => p.url.endsWith('/v1/metrics'))!.body;
    expect(metrics).toContain('"outpost.drift.psi"');
  });
});
