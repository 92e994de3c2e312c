import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresStorage, positional } from './postgres.js';
import { createServer } from './server.js';
import type { StorageAdapter } from './storage.js';
import { logsBody, metricsBody } from './testing/otlp-bodies.js';
import { startPostgres, type PostgresForTests } from './testing/postgres-cluster.js';
import { ADMIN_TOKEN, auth, DEVICE_TOKEN, deviceHeaders, post } from './testing/telemetry-server.js';

// PostgreSQL is the storage for several servers behind a load balancer: these tests run two
// servers on one real database (a cluster started for the tests, see testing/postgres-cluster.ts).

let db: PostgresForTests;
let dir: string;
beforeAll(async () => {
  // Its own cluster even when CI provides one: the V5 test shuts it down and starts it again.
  db = await startPostgres({ own: true });
  dir = await mkdtemp(join(tmpdir(), 'outpost-pg-repo-'));
  await mkdir(join(dir, 'metadata'), { recursive: true });
});
afterAll(async () => {
  await db.stop();
  await rm(dir, { recursive: true, force: true });
});

function serverOn(storage: StorageAdapter): FastifyInstance {
  return createServer({
    repo: dir,
    telemetry: { storage, deviceTokens: [DEVICE_TOKEN], adminToken: ADMIN_TOKEN, rateLimit: false },
  });
}

describe('PostgreSQL storage', () => {
  it('names parameters once each, in order of first use', () => {
    expect(positional('a = @x AND (CAST(@y AS TEXT) IS NULL OR b = @y) AND c >= @x', { x: 1, y: 'v', z: 0 })).toEqual({
      text: 'a = $1 AND (CAST($2 AS TEXT) IS NULL OR b = $2) AND c >= $1',
      values: [1, 'v'],
    });
    expect(() => positional('a = @missing', {})).toThrow(/@missing/);
  });

  it('servers starting together on an empty database create the schema once', async () => {
    const url = await db.createDatabase();
    const opened = await Promise.all([1, 2, 3, 4].map(() => openPostgresStorage(url)));
    for (const s of opened) expect(await s.batchCount()).toEqual({ metrics: 0, logs: 0 });
    await Promise.all(opened.map((s) => s.close()));
  });

  it('two servers behind a load balancer store each batch once, retries to either included, and both answer the same', async () => {
    const url = await db.createDatabase();
    const [a, b] = await Promise.all([openPostgresStorage(url), openPostgresStorage(url)]);
    const servers = [serverOn(a!), serverOn(b!)];
    try {
      // 20 devices, 5 batches each; every batch sent 3 times, alternating servers, all at once.
      const sends: Promise<{ statusCode: number }>[] = [];
      for (let dev = 0; dev < 20; dev++) {
        for (let k = 0; k < 5; k++) {
          const id = randomUUID();
          const body = metricsBody(`dev-${dev}`, id, { durations: [4, 4, 6], version: dev < 5 ? '1.1.0' : '1.0.0' });
          const headers = deviceHeaders(id);
          for (let r = 0; r < 3; r++) sends.push(post(servers[(dev + k + r) % 2]!, '/v1/metrics', body, headers));
        }
      }
      const logId = randomUUID();
      const events = logsBody('dev-0', logId, [{ version: '1.1.0', kind: 'activated', from: '1.0.0' }]);
      const logs = deviceHeaders(logId);
      sends.push(post(servers[0]!, '/v1/logs', events, logs), post(servers[1]!, '/v1/logs', events, logs));
      const codes = (await Promise.all(sends)).map((r) => r.statusCode);
      expect(codes.filter((c) => c !== 200)).toEqual([]);

      expect(await a!.batchCount()).toEqual({ metrics: 100, logs: 1 });
      expect(await b!.batchCount()).toEqual({ metrics: 100, logs: 1 });
      for (const s of [a!, b!]) {
        const latency = await s.latency({ sinceMs: 0 });
        const runs = latency.reduce((n, l) => n + l.runs, 0);
        expect(runs).toBe(20 * 5 * 3);
        const devices = await s.devices({ sinceMs: 0 });
        expect(devices).toHaveLength(20);
        // Five metrics batches each; dev-0 also sent the logs batch.
        expect(devices.map((d) => d.batches).sort()).toEqual([...new Array<number>(19).fill(5), 6]);
        expect(await s.versions({ sinceMs: 0 })).toEqual([
          { channel: 'stable', model: 'digits', version: '1.0.0', devices: 15 },
          { channel: 'stable', model: 'digits', version: '1.1.0', devices: 5 },
        ]);
        expect(await s.updates({ sinceMs: 0 })).toMatchObject([
          { model: 'digits', version: '1.1.0', events: { activated: 1 } },
        ]);
      }
      const overview = await servers[1]!.inject({
        method: 'GET',
        url: '/api/overview',
        headers: auth(ADMIN_TOKEN),
      });
      expect(overview.json<{ devices: unknown[] }>().devices).toHaveLength(20);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
      await Promise.all([a!.close(), b!.close()]);
    }
  });

  it('V5: with the database down a batch gets 503 and Retry-After, nothing half-stored; resent after it is back, it is stored once', async () => {
    const url = await db.createDatabase();
    const storage = await openPostgresStorage(url, { maxConnections: 2 });
    const app = serverOn(storage);
    try {
      const first = randomUUID();
      expect((await post(app, '/v1/metrics', metricsBody('dev-d', first), deviceHeaders(first))).statusCode).toBe(200);
      await db.shutdown();
      const id = randomUUID();
      const body = metricsBody('dev-d', id, { durations: [1, 2, 3] });
      const down = await post(app, '/v1/metrics', body, deviceHeaders(id));
      expect(down.statusCode).toBe(503);
      expect(down.headers['retry-after']).toBe('5');
      expect(down.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|postgres/i);
      await db.start();
      expect((await post(app, '/v1/metrics', body, deviceHeaders(id))).statusCode).toBe(200);
      expect((await post(app, '/v1/metrics', body, deviceHeaders(id))).statusCode).toBe(200);
      expect(await storage.batchCount()).toEqual({ metrics: 2, logs: 0 });
      const runs = (await storage.health({ sinceMs: 0 })).reduce((n, h) => n + h.runs, 0);
      expect(runs).toBe(10 + 3);
    } finally {
      await app.close();
      await storage.close();
    }
  });
});
