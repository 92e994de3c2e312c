import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TelemetryError } from '@outpost/core';
import { METRIC, RESOURCE } from '@outpost/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TelemetryQueue, utf8Length } from '../store/index.js';
import { metricsRequest, type ExportMetricsServiceRequest, type Metric } from './otlp.js';
import { flushQueue, parseRetryAfter } from './send.js';
import { Telemetry } from './telemetry.js';

interface Received {
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

/** A loopback OTLP receiver whose answers the test scripts. */
class Receiver {
  readonly received: Received[] = [];
  answer: (r: Received, res: ServerResponse) => void = (_r, res) => res.writeHead(200).end('{}');
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
        this.received.push(r);
        this.answer(r, res);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/otlp`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

function sumMetric(name: string, n: number): Metric {
  return {
    name,
    unit: '1',
    sum: {
      aggregationTemporality: 1,
      isMonotonic: true,
      dataPoints: Array.from({ length: n }, (_, i) => ({
        attributes: [{ key: 'outpost.model', value: { stringValue: `m${i}` } }],
        startTimeUnixNano: '1',
        timeUnixNano: '2',
        asInt: String(i + 1),
      })),
    },
  };
}

/** Queues a metrics batch of `points` data points; returns its id. */
async function enqueue(queue: TelemetryQueue, points = 2, id = crypto.randomUUID()): Promise<string> {
  const req = metricsRequest([], id, [sumMetric(METRIC.runs, points)]);
  const body = JSON.stringify(req);
  await queue.add({
    id,
    signal: 'metrics',
    body,
    bytes: utf8Length(body),
    items: points,
    createdAt: 0,
    attempts: 0,
    notBefore: 0,
  });
  return id;
}

const batchIdOf = (body: string) =>
  (JSON.parse(body) as ExportMetricsServiceRequest).resourceMetrics[0]!.resource.attributes.find(
    (a) => a.key === RESOURCE.batchId,
  )?.value;

let rx: Receiver;
let clock: number;
const now = () => clock;

beforeEach(async () => {
  globalThis.indexedDB = new IDBFactory();
  clock = 1_000_000;
  rx = new Receiver();
  await rx.start();
});
afterEach(() => rx.stop());

describe('telemetry delivery', () => {
  it('T2: each batch goes to /v1/metrics with its UUID as Idempotency-Key and outpost.batch.id, and a bearer token', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    const id = await enqueue(queue);
    const report = await flushQueue(queue, { endpoint: rx.url, token: 'fleet-token', now });
    expect(report).toMatchObject({ sent: 1, pending: 0 });
    const [r] = rx.received;
    expect(r!.url).toBe('/otlp/v1/metrics');
    expect(r!.headers['idempotency-key']).toBe(id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(batchIdOf(r!.body)).toEqual({ stringValue: id });
    expect(r!.headers.authorization).toBe('Bearer fleet-token');
    expect(r!.headers['content-type']).toBe('application/json');
  });

  it('T3/T5: 429 with Retry-After keeps the batch, pauses the flush, and resends the same bytes under the same key', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    const first = await enqueue(queue);
    await enqueue(queue);
    rx.answer = (_r, res) => res.writeHead(429, { 'Retry-After': '30' }).end();
    const report = await flushQueue(queue, { endpoint: rx.url, now, random: () => 0.5 });
    // One request only: the server asked for a pause, the second batch waits too.
    expect(rx.received).toHaveLength(1);
    expect(report.pending).toBe(2);
    expect(report.retryAt).toBeGreaterThanOrEqual(clock + 30_000);
    expect(report.retryAt).toBeLessThan(clock + 31_000);
    // Before Retry-After has passed, the batch is not sent again (the second one is due).
    rx.answer = (_r, res) => res.writeHead(200).end();
    clock += 10_000;
    await flushQueue(queue, { endpoint: rx.url, now });
    expect(rx.received.map((r) => r.headers['idempotency-key'])).not.toContain(undefined);
    expect(rx.received.filter((r) => r.headers['idempotency-key'] === first)).toHaveLength(1);
    clock += 21_000;
    await flushQueue(queue, { endpoint: rx.url, now });
    const sends = rx.received.filter((r) => r.headers['idempotency-key'] === first);
    expect(sends).toHaveLength(2);
    expect(sends[1]!.body).toBe(sends[0]!.body);
    expect(await queue.list()).toEqual([]);
  });

  it('T3: 5xx backs off with full jitter, doubling; offline leaves the batch queued and due (T5)', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    await enqueue(queue);
    rx.answer = (_r, res) => res.writeHead(503).end();
    const retry = { baseMs: 1000, maxMs: 60_000 };
    const a = await flushQueue(queue, { endpoint: rx.url, now, random: () => 0.5, retry });
    expect(a.retryAt).toBe(clock + 500); // 0.5 × 1000 × 2^0
    clock += 500;
    const b = await flushQueue(queue, { endpoint: rx.url, now, random: () => 0.5, retry });
    expect(b.retryAt).toBe(clock + 1000); // 0.5 × 1000 × 2^1
    clock += 1000;
    await rx.stop(); // connection refused: offline
    const c = await flushQueue(queue, { endpoint: rx.url, now, random: () => 0.5, retry });
    // Offline: the batch stays, due at once for the next tick or the `online` event.
    expect(c).toMatchObject({ sent: 0, pending: 1 });
    expect(c.retryAt).toBeUndefined();
    expect((await queue.list())[0]).toMatchObject({ attempts: 3, notBefore: clock });
  });

  it('T3: 400 sets the batch aside and the queue moves on in the same flush', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    const bad = await enqueue(queue);
    const good = await enqueue(queue);
    rx.answer = (r, res) => res.writeHead(r.headers['idempotency-key'] === bad ? 400 : 200).end();
    const report = await flushQueue(queue, { endpoint: rx.url, now });
    expect(report).toMatchObject({ sent: 1, setAside: 1, pending: 0 });
    expect(rx.received.map((r) => r.headers['idempotency-key'])).toEqual([bad, good]);
    expect((await queue.aside()).map((a) => [a.id, a.status])).toEqual([[bad, 400]]);
  });

  it('T3: 413 splits the batch in halves with new ids until each part fits; every data point arrives once', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    const big = await enqueue(queue, 8);
    const limit = 700;
    rx.answer = (r, res) => res.writeHead(Buffer.byteLength(r.body) > limit ? 413 : 200).end();
    const report = await flushQueue(queue, { endpoint: rx.url, now });
    expect(report.split).toBeGreaterThanOrEqual(1);
    expect(report.pending).toBe(0);
    const accepted = rx.received.filter((r) => Buffer.byteLength(r.body) <= limit);
    const keys = accepted.map((r) => r.headers['idempotency-key']);
    expect(keys).not.toContain(big);
    expect(new Set(keys).size).toBe(keys.length);
    for (const r of accepted) expect(batchIdOf(r.body)).toEqual({ stringValue: r.headers['idempotency-key'] });
    const models = accepted.flatMap((r) =>
      (JSON.parse(r.body) as ExportMetricsServiceRequest).resourceMetrics[0]!.scopeMetrics[0]!.metrics.flatMap((m) =>
        m.sum!.dataPoints.map((p) => p.attributes![0]!.value),
      ),
    );
    expect(models).toHaveLength(8);
    expect(new Set(models.map((m) => JSON.stringify(m))).size).toBe(8);
  });

  it('T4: a keepalive flush sends at most its byte budget, oldest first; the rest stays queued', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e7, maxCount: 1000 });
    for (let i = 0; i < 10; i++) await enqueue(queue, 60);
    const each = (await queue.list())[0]!.bytes;
    const seen: RequestInit[] = [];
    const spy: typeof fetch = (input, init) => {
      seen.push(init!);
      return fetch(input, init);
    };
    const budget = 60 * 1024;
    const report = await flushQueue(queue, { endpoint: rx.url, now, keepalive: true, maxBytes: budget, fetch: spy });
    const sentBytes = rx.received.reduce((n, r) => n + Buffer.byteLength(r.body), 0);
    expect(sentBytes).toBeLessThanOrEqual(budget);
    expect(report.sent).toBe(Math.floor(budget / each));
    expect(report.pending).toBe(10 - report.sent);
    expect(seen.every((i) => i.keepalive === true)).toBe(true);
  });

  it('T1: the queue keeps to its caps, dropping the oldest, and the drops are reported once as outpost.telemetry.dropped.count', async () => {
    const t = new Telemetry(
      {
        endpoint: rx.url,
        sampleRate: 1,
        flushEveryMs: 0,
        maxQueueBytes: 1e6,
        maxQueueCount: 3,
        drift: { threshold: 0.2, windowRuns: 1000, inputs: false },
      },
      { facts: async () => ({ deviceId: 'd', runtimeVersion: '0.1.0' }), storageBytes: async () => 0, now },
    );
    for (let i = 0; i < 5; i++) await enqueue(t.queue, 4);
    expect(await t.queue.list()).toHaveLength(3);
    expect(await t.queue.dropped()).toBe(8);
    const s = t.recorder.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' });
    t.recorder.run(s, 2);
    const report = await t.flush();
    expect(report.sent).toBe(3); // the caps keep the newest 3: two old ones and the new one
    const dropped = rx.received
      .flatMap((r) => (JSON.parse(r.body) as ExportMetricsServiceRequest).resourceMetrics[0]!.scopeMetrics[0]!.metrics)
      .filter((m) => m.name === METRIC.dropped);
    expect(dropped.map((m) => m.sum!.dataPoints[0]!.asInt)).toEqual(['8']);
    // Queueing that report dropped one more old batch (4 items): counted for the next report, not lost.
    expect(await t.queue.dropped()).toBe(4);
  });

  it('a background flush reports batches refused for good (a wrong token) and a queue that cannot be written; offline is no failure', async () => {
    const reported: Error[] = [];
    const config = {
      endpoint: rx.url,
      sampleRate: 1,
      flushEveryMs: 0,
      maxQueueBytes: 1e6,
      maxQueueCount: 100,
      drift: { threshold: 0.2, windowRuns: 1000, inputs: false },
    };
    const t = new Telemetry(config, {
      facts: async () => ({ deviceId: 'd', runtimeVersion: '0.1.0' }),
      storageBytes: async () => 0,
      now,
      report: (err) => reported.push(err),
    });
    const s = t.recorder.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' });
    rx.answer = (_r, res) => res.writeHead(401).end('{}');
    t.recorder.run(s, 2);
    await t.flushInBackground();
    expect(reported).toHaveLength(1);
    expect(reported[0]).toBeInstanceOf(TelemetryError);
    expect(reported[0]).toMatchObject({ code: 'TELEMETRY_REFUSED', status: 401, batches: 1 });

    // Offline: nothing to report, the batch stays queued.
    const offline = new Telemetry(
      { ...config, endpoint: 'http://127.0.0.1:9/otlp' },
      {
        facts: async () => ({ deviceId: 'd', runtimeVersion: '0.1.0' }),
        storageBytes: async () => 0,
        now,
        report: (err) => reported.push(err),
      },
    );
    offline.recorder.run(offline.recorder.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' }), 1);
    await offline.flushInBackground();
    expect(reported).toHaveLength(1);

    // The device facts (read from IndexedDB) cannot be read: the batch cannot be queued.
    const t2 = new Telemetry(config, {
      facts: async () => {
        throw new Error('storage is gone');
      },
      storageBytes: async () => 0,
      now,
      report: (err) => reported.push(err),
    });
    t2.recorder.run(t2.recorder.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' }), 1);
    await t2.flushInBackground();
    expect(reported.map((e) => e.message)).toEqual([expect.stringMatching(/HTTP 401/), 'storage is gone']);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('120', 0)).toBe(120_000);
    expect(parseRetryAfter(new Date(90_000).toUTCString(), 30_000)).toBe(60_000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });
});
