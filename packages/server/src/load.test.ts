import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { metricsBody } from './testing/otlp-bodies.js';
import { ENGINES, testStorages, type Engine } from './testing/storages.js';
import { DEVICE_TOKEN, openTelemetryServer } from './testing/telemetry-server.js';

// V4: the telemetry ingest under a bounded load on loopback. The server runs here, from source,
// as `outpost serve` sets it up (schema validation, device token, the default per-device rate
// limit); autocannon runs in a child process, so it takes the other core rather than this event
// loop. The figures are printed for the record, not asserted: the machine is shared.
// `npm run bench` (bench/lib/ingest.mjs) is the measurement with a fixed method.

/**
 * Batches after the warm-up, sent by `CONNECTIONS` keep-alive connections. PostgreSQL (its own
 * cluster on the same 2 cores) takes about half of SQLite's rate here: fewer keep the test short.
 */
const BATCHES: Record<Engine, number> = { sqlite: 2000, postgres: 1000 };
const WARMUP = 200;
const CONNECTIONS = 16;
/** Each batch comes from one of these devices in turn: 2-3 batches each, far below 600 a minute. */
const DEVICES = 1000;

interface Run {
  ms: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p50: number;
  p99: number;
}

/** The load generator: each request a distinct 50-point batch with its own Idempotency-Key. */
const GENERATOR = `
import autocannon from ${JSON.stringify(pathToFileURL(createRequire(import.meta.url).resolve('autocannon')).href)};
const { url, token, template, devices, connections, warmup, batches } = JSON.parse(process.argv[2]);
let n = 0;
const request = {
  method: 'POST',
  path: '/v1/metrics',
  setupRequest: (req) => {
    const id = 'v4-' + n;
    const body = template.replace('{{batch}}', id).replace('{{device}}', 'd-' + (n % devices));
    n++;
    const headers = { 'content-type': 'application/json', authorization: 'Bearer ' + token, 'idempotency-key': id };
    return { ...req, headers, body };
  },
};
const run = async (amount) => {
  const t0 = performance.now();
  const r = await autocannon({ url, connections, amount, requests: [request] });
  return { ms: performance.now() - t0, ok: r['2xx'], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
    p50: r.latency.p50, p99: r.latency.p99 };
};
const warm = await run(warmup);
const load = await run(batches);
process.stdout.write(JSON.stringify({ sent: n, warm, load }));
`;

async function generate(dir: string, port: number, batches: number): Promise<{ sent: number; warm: Run; load: Run }> {
  const script = join(dir, 'load.mjs');
  await writeFile(script, GENERATOR);
  // 48 gauge points besides the histogram and the run count: 50 points, as in the bench.
  const template = JSON.stringify(metricsBody('{{device}}', '{{batch}}', { padding: 48 }));
  const args = { url: `http://127.0.0.1:${port}`, token: DEVICE_TOKEN, template, devices: DEVICES };
  const child = spawn(
    process.execPath,
    [script, JSON.stringify({ ...args, connections: CONNECTIONS, warmup: WARMUP, batches })],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += String(b)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`load generator exited (${code})`);
  return JSON.parse(out) as { sent: number; warm: Run; load: Run };
}

const storages = testStorages();

describe.each(ENGINES)('ingest load into %s', (engine) => {
  it(`V4: ${BATCHES[engine]} distinct batches from ${DEVICES} devices, ${CONNECTIONS} connections on loopback: every one answered 2xx and stored, none lost`, async () => {
    const { app, storage, dir, close } = await openTelemetryServer({
      prefix: 'outpost-v4-',
      storage: (d) => storages.open(engine, d),
    });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { sent, warm, load } = await generate(dir, (app.server.address() as AddressInfo).port, BATCHES[engine]);
      const stored = await storage.batchCount();
      const perSec = (load.ok / load.ms) * 1000;
      console.log(
        `V4 ${engine}: ${perSec.toFixed(0)} batches/s of 50 points, p50 ${load.p50} ms, p99 ${load.p99} ms ` +
          `(${load.ok} batches after ${warm.ok} warm-up, ${CONNECTIONS} connections; ${stored.metrics} stored)`,
      );

      for (const r of [warm, load]) {
        expect(r).toMatchObject({ non2xx: 0, errors: 0, timeouts: 0 });
      }
      expect(sent).toBe(WARMUP + BATCHES[engine]);
      expect(warm.ok + load.ok).toBe(sent);
      // No lost batch: the store holds exactly the batches it acknowledged, each once.
      expect(stored).toEqual({ metrics: sent, logs: 0 });
      // Only a sanity bound: a p99 of seconds means ingest stalls, not that the machine is busy.
      expect(load.p99).toBeLessThan(5000);
    } finally {
      await close();
    }
  });
});
