import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP } from './dashboard.js';
import { openSqliteStorage } from './sqlite.js';
import { logsBody, metricsBody } from './testing/otlp-bodies.js';
import { ENGINES, testStorages } from './testing/storages.js';
import {
  ADMIN_TOKEN,
  auth,
  DEVICE_TOKEN,
  deviceHeaders,
  openTelemetryServer,
  post,
  type TelemetryServer,
} from './testing/telemetry-server.js';

//#region tests
/** The storage adapters every ingest and API test runs against. */
const storages = testStorages();

async function overview(app: FastifyInstance) {
  const res = await app.inject({ method: 'GET', url: '/api/overview', headers: auth(ADMIN_TOKEN) });
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe.each(ENGINES)('telemetry ingest (OTLP/HTTP JSON) into %s', (engine) => {
  let ctx: TelemetryServer;
  beforeAll(async () => {
    ctx = await openTelemetryServer({ storage: (dir) => storages.open(engine, dir) });
  });
  afterAll(async () => ctx.close());

  it('stores metrics and logs, and the API answers devices, versions, latency, errors, rollbacks and drift', async () => {
    const { app } = ctx;
    let res = await post(
      app,
      '/v1/metrics',
      metricsBody('dev-a', undefined, { errors: { RUN_FAILED: 2 } }),
      deviceHeaders(randomUUID()),
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({});
    res = await post(
      app,
      '/v1/metrics',
      metricsBody('dev-b', randomUUID(), { version: '1.1.0', backend: 'webgpu', durations: [0.7, 0.8, 0.9, 1.8] }),
    );
    expect(res.statusCode).toBe(200);
    res = await post(
      app,
      '/v1/logs',
      logsBody(
        'dev-b',
        randomUUID(),
        [
          { version: '1.1.0', kind: 'activated', from: '1.0.0' },
          { version: '1.1.0', kind: 'rolled-back', from: '1.1.0' },
          { version: '1.1.0', kind: 'activated', from: '1.0.0' },
        ],
        { psi: 0.31, kl: 0.12 },
      ),
    );
    expect(res.statusCode).toBe(200);

    const o = await overview(app);
    expect(o.devices.map((d: { deviceId: string }) => d.deviceId).sort()).toEqual(['dev-a', 'dev-b']);
    expect(o.devices[0]).toMatchObject({ channel: 'stable', browser: 'chrome', cores: 4, memoryGb: 8, batches: 2 });
    expect(o.versions).toEqual([
      { channel: 'stable', model: 'digits', version: '1.0.0', devices: 1 },
      { channel: 'stable', model: 'digits', version: '1.1.0', devices: 1 },
    ]);
    const wasm = o.latency.find((l: { backend: string }) => l.backend === 'wasm');
    // 10 runs: 3 in (1,2], 2 in (2,5], 3 in (5,10], 1 in (10,20], 1 in (50,100].
    expect(wasm).toMatchObject({ model: 'digits', version: '1.0.0', runs: 10 });
    expect(wasm.p50).toBeCloseTo(5 + 5 * (0 / 3), 5); // rank 5 ends the (2,5] bucket
    expect(wasm.p95).toBeCloseTo(50 + 50 * 0.5, 5); // rank 9.5: half-way through (50,100]
    const gpu = o.latency.find((l: { backend: string }) => l.backend === 'webgpu');
    expect(gpu).toMatchObject({ version: '1.1.0', runs: 4 });
    expect(gpu.p50).toBeGreaterThan(0.5);
    expect(gpu.p50).toBeLessThanOrEqual(1);
    const health = o.health.find((h: { backend: string }) => h.backend === 'wasm');
    expect(health).toMatchObject({ runs: 10, errors: 2, errorsByCode: { RUN_FAILED: 2 } });
    expect(health.errorRate).toBeCloseTo(2 / 12);
    expect(o.updates).toEqual([
      {
        model: 'digits',
        version: '1.1.0',
        events: { activated: 2, 'rolled-back': 1 },
        devices: 1,
        rollbackRate: 0.5,
      },
    ]);
    expect(o.drift).toHaveLength(1);
    expect(o.drift[0]).toMatchObject({ deviceId: 'dev-b', model: 'digits', tensor: 'logits', psi: 0.31, kl: 0.12 });
  });

  it('T2: a retried batch is acknowledged and not stored twice (header or resource batch id)', async () => {
    const { app, storage } = ctx;
    const before = await storage.batchCount();
    const key = randomUUID();
    const body = metricsBody('dev-t2', undefined, { model: 't2', durations: [3, 3, 3] });
    for (let k = 0; k < 3; k++) {
      const res = await post(app, '/v1/metrics', body, deviceHeaders(key));
      expect(res.statusCode).toBe(200);
    }
    // Same id only in the resource, as a Collector in between would pass it on.
    const inResource = metricsBody('dev-t2', randomUUID(), { model: 't2', durations: [3] });
    expect((await post(app, '/v1/metrics', inResource)).statusCode).toBe(200);
    expect((await post(app, '/v1/metrics', inResource)).statusCode).toBe(200);
    // Concurrent retries of one batch.
    const k2 = randomUUID();
    const same = metricsBody('dev-t2', k2, { model: 't2', durations: [3, 3] });
    await Promise.all([1, 2, 3, 4].map(() => post(app, '/v1/metrics', same, deviceHeaders(k2))));
    const after = await storage.batchCount();
    expect(after.metrics - before.metrics).toBe(3);
    const health = await storage.health({ sinceMs: 0, model: 't2' });
    expect(health[0]!.runs).toBe(3 + 1 + 2);
    // A logs batch may reuse a metrics batch's id without being taken for a retry.
    expect((await post(app, '/v1/logs', logsBody('dev-t2', key, []))).statusCode).toBe(200);
    expect((await storage.batchCount()).logs - before.logs).toBe(1);
  });

  it('V2: telemetry without a valid device token, and the API without the admin token, get 401', async () => {
    const { app, storage } = ctx;
    const before = await storage.batchCount();
    const body = metricsBody('dev-v2', randomUUID());
    for (const headers of [
      {},
      auth('wrong'),
      auth(ADMIN_TOKEN),
      { authorization: DEVICE_TOKEN },
      { authorization: 'Basic x' },
    ]) {
      const res = await post(app, '/v1/metrics', body, headers);
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect((await post(app, '/v1/logs', logsBody('dev-v2', randomUUID(), []), headers)).statusCode).toBe(401);
    }
    expect(await storage.batchCount()).toEqual(before);
    for (const headers of [{}, auth(DEVICE_TOKEN), auth('wrong')]) {
      for (const url of ['/api/overview', '/api/devices', '/api/latency', '/api/status']) {
        expect((await app.inject({ method: 'GET', url, headers })).statusCode).toBe(401);
      }
    }
  });

  it('V3: oversized bodies get 413, malformed ones 400, and the server keeps serving', async () => {
    const { app } = ctx;
    const huge = metricsBody('dev-v3', randomUUID(), { padding: 20_000 });
    expect(JSON.stringify(huge).length).toBeGreaterThan(1 << 20);
    expect((await post(app, '/v1/metrics', huge)).statusCode).toBe(413);
    const malformed = [
      '{"resourceMetrics": [',
      'not json',
      JSON.stringify({ resourceMetrics: 'x' }),
      JSON.stringify({ resourceMetrics: [{ scopeMetrics: [{ metrics: [{ sum: {} }] }] }] }), // no name
      JSON.stringify({
        resourceMetrics: [{ scopeMetrics: [{ metrics: [{ name: 'm', sum: { dataPoints: [{ asInt: '1.5' }] } }] }] }],
      }),
      JSON.stringify({ resourceLogs: [{ scopeLogs: [{ logRecords: [{ timeUnixNano: 'yesterday' }] }] }] }),
    ];
    for (const body of malformed) {
      const path = body.includes('resourceLogs') ? '/v1/logs' : '/v1/metrics';
      const res = await post(app, path, body);
      expect(res.statusCode, body.slice(0, 60)).toBe(400);
    }
    expect(
      (await post(app, '/v1/metrics', metricsBody('dev-v3', randomUUID()), deviceHeaders('../x'))).statusCode,
    ).toBe(400);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/metrics',
      headers: { ...auth(DEVICE_TOKEN), 'content-type': 'application/x-protobuf' },
      payload: Buffer.from([1, 2, 3]),
    });
    expect(res.statusCode).toBe(415);
    expect((await post(app, '/v1/metrics', metricsBody('dev-v3', randomUUID()))).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/metadata/timestamp.json' })).statusCode).toBe(404);
  });
});

describe('dashboard', () => {
  it('serves the page at /, its code and style as files, and Chart.js from node_modules; the data stays behind the admin token', async () => {
    const { app, close } = await openTelemetryServer();
    try {
      const page = await app.inject({ method: 'GET', url: '/' });
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toMatch(/^text\/html/);
      // Relative URLs, so the server also works mounted under a path (the demo's /repo/).
      expect(page.body).toContain('src="dashboard/chart.umd.min.js"');
      expect(page.body).toContain('src="dashboard/dashboard.js"');
      expect(page.body).toContain('href="dashboard/dashboard.css"');
      // Nothing inline, so the page works under a Content-Security-Policy without 'unsafe-inline'.
      expect(page.body).not.toMatch(/<script>|<style|\sstyle=|\son[a-z]+=/);
      // And the server says so itself: a policy without 'unsafe-inline' or eval, never framed.
      expect(page.headers['content-security-policy']).toBe(DASHBOARD_CSP);
      expect(page.headers['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
      expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(page.headers['x-content-type-options']).toBe('nosniff');
      const code = await app.inject({ method: 'GET', url: '/dashboard/dashboard.js' });
      expect(code.statusCode).toBe(200);
      expect(code.headers['content-type']).toMatch(/^text\/javascript/);
      expect(code.body).toContain("fetch('api/overview'");
      const style = await app.inject({ method: 'GET', url: '/dashboard/dashboard.css' });
      expect(style.statusCode).toBe(200);
      expect(style.headers['content-type']).toMatch(/^text\/css/);
      const chart = await app.inject({ method: 'GET', url: '/dashboard/chart.umd.min.js' });
      expect(chart.statusCode).toBe(200);
      expect(chart.body).toContain('Chart');
      expect((await app.inject({ method: 'GET', url: '/api/overview' })).statusCode).toBe(401);
    } finally {
      await close();
    }
  });
});

describe('telemetry limits and restarts', () => {
  it('rate-limits each device of a fleet on its own (429 with Retry-After)', async () => {
    const { app, close } = await openTelemetryServer({ telemetry: { rateLimit: { max: 2, timeWindowMs: 60_000 } } });
    try {
      const codes = [];
      for (let k = 0; k < 3; k++)
        codes.push((await post(app, '/v1/metrics', metricsBody('dev-r1', randomUUID()))).statusCode);
      expect(codes).toEqual([200, 200, 429]);
      const limited = await post(app, '/v1/metrics', metricsBody('dev-r1', randomUUID()));
      expect(limited.headers['retry-after']).toBeDefined();
      expect((await post(app, '/v1/metrics', metricsBody('dev-r2', randomUUID()))).statusCode).toBe(200);
    } finally {
      await close();
    }
  });

  it('forwards each stored batch once to an OTLP endpoint (a Collector), retried batches not again', async () => {
    const got: { path: string; key: string | undefined; body: unknown }[] = [];
    let fail = 1; // the Collector's first answer is a 503: the batch is retried
    const collector = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (fail-- > 0) return res.writeHead(503).end();
        got.push({
          path: req.url ?? '',
          key: req.headers['idempotency-key'] as string,
          body: JSON.parse(String(Buffer.concat(chunks))),
        });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const { port } = collector.address() as AddressInfo;
    const { app, close } = await openTelemetryServer({ telemetry: { forward: `http://127.0.0.1:${port}/otlp` } });
    try {
      const key = randomUUID();
      const body = metricsBody('dev-f', key);
      expect((await post(app, '/v1/metrics', body)).statusCode).toBe(200);
      expect((await post(app, '/v1/metrics', body)).statusCode).toBe(200);
      expect(
        (await post(app, '/v1/logs', logsBody('dev-f', randomUUID(), [{ version: '1.0.0', kind: 'activated' }])))
          .statusCode,
      ).toBe(200);
      for (let i = 0; i < 200 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      expect(got.map((g) => g.path).sort()).toEqual(['/otlp/v1/logs', '/otlp/v1/metrics']);
      const metrics = got.find((g) => g.path.endsWith('metrics'))!;
      expect(metrics.key).toBe(key);
      expect(metrics.body).toEqual(body);
      const status = await app.inject({ method: 'GET', url: '/api/status', headers: auth(ADMIN_TOKEN) });
      expect(status.json().forward).toMatchObject({ forwarded: 2, failed: 0, pending: 0 });
    } finally {
      await close();
      collector.close();
    }
  });

  it('creates the database and its folder on first start, in WAL mode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-db-'));
    try {
      const file = join(dir, 'outpost-data/outpost.db');
      const s = openSqliteStorage(file);
      await s.close();
      const db = new Database(file, { readonly: true });
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      db.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('V5: a server killed mid-ingest loses no acknowledged batch, and keeps no half batch', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-v5-'));
    const file = join(dir, 'data/outpost.db');
    await mkdir(join(dir, 'repo/metadata'), { recursive: true });
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const script = join(dir, 'serve.mjs');
    await writeFile(
      script,
      `import { createServer, openSqliteStorage } from ${JSON.stringify(dist)};
       const app = createServer({ repo: ${JSON.stringify(join(dir, 'repo'))}, telemetry: {
         storage: openSqliteStorage(${JSON.stringify(file)}), deviceTokens: ['t'], rateLimit: false } });
       await app.listen({ port: 0, host: '127.0.0.1' });
       process.stdout.write(app.server.address().port + '\\n');`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout.once('data', (b: Buffer) => resolve(Number(String(b).trim())));
        child.once('exit', (code) => reject(new Error(`server exited (${code}); is packages/server built?`)));
      });
      const acked = new Set<string>();
      let stop = false;
      const sender = async () => {
        while (!stop) {
          const id = randomUUID();
          try {
            const res = await fetch(`http://127.0.0.1:${port}/v1/metrics`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: 'Bearer t', 'idempotency-key': id },
              body: JSON.stringify(metricsBody(`dev-${id.slice(0, 4)}`, id, { padding: 48 })),
            });
            await res.arrayBuffer();
            if (res.status === 200) acked.add(id);
          } catch {
            return; // killed
          }
        }
      };
      const senders = Array.from({ length: 8 }, sender);
      while (acked.size < 200) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      stop = true;
      await Promise.all(senders);

      const db = new Database(file);
      const rows = db
        .prepare(
          'SELECT b.id AS id, b.rows AS rows, (SELECT COUNT(*) FROM points p WHERE p.batch_id = b.id) AS n FROM batches b',
        )
        .all() as { id: string; rows: number; n: number }[];
      db.close();
      const stored = new Map(rows.map((r) => [r.id, r]));
      const missing = [...acked].filter((id) => !stored.has(id));
      expect(missing).toEqual([]);
      for (const r of rows) expect(r.n, r.id).toBe(r.rows);
      expect(rows.every((r) => r.rows === 50)).toBe(true);

      // And the store opens again and answers.
      const s = openSqliteStorage(file);
      expect((await s.batchCount()).metrics).toBe(rows.length);
      await s.close();
    } finally {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
//#endregion
