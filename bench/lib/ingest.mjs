// Server ingest (V4): `outpost serve`'s telemetry path under a bounded load generator on loopback.
// The server runs in its own process (SQLite in a temporary folder, schema validation, device
// token, per-device rate limit all on); autocannon, in this process, shares the same cores.
// Every request is a distinct batch (its own Idempotency-Key) of 50 points from one of 1,000
// devices; afterwards the server's stored batch count must equal the 200s it gave: no lost batch.
// Run alone with `node bench/lib/ingest.mjs` (after `npm run build`).
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';

const SERVER = pathToFileURL(fileURLToPath(new URL('../../packages/server/dist/index.js', import.meta.url))).href;
const DEVICES = 1000;
const POINTS = 50;

/** One batch of `POINTS` points as text, with its batch id and device id spliced in. */
function batchTemplate() {
  const kv = (key, v) => `{"key":"${key}","value":{"stringValue":"${v}"}}`;
  const subject = [kv('outpost.model', 'digits'), kv('outpost.model.version', '1.0.0'), kv('outpost.backend', 'wasm')];
  const t = `${Date.now()}000000`;
  const bounds = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
  const metrics = [
    `{"name":"outpost.run.duration","unit":"ms","histogram":{"aggregationTemporality":1,"dataPoints":[{"attributes":[${subject}],"startTimeUnixNano":"${t}","timeUnixNano":"${t}","count":"20","sum":61.5,"bucketCounts":${JSON.stringify(bounds.concat(0).map((_, i) => String(i < 5 ? 4 : 0)))},"explicitBounds":${JSON.stringify(bounds)}}]}}`,
    `{"name":"outpost.run.count","sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[{"attributes":[${subject}],"startTimeUnixNano":"${t}","timeUnixNano":"${t}","asInt":"20"}]}}`,
    `{"name":"outpost.storage.bytes","gauge":{"dataPoints":[${Array.from({ length: POINTS - 2 }, (_, k) => `{"attributes":[${kv('outpost.model', `m${k}`)}],"timeUnixNano":"${t}","asInt":"${1000 + k}"}`).join(',')}]}}`,
  ];
  const head = `{"resourceMetrics":[{"resource":{"attributes":[${kv('service.name', 'outpost-runtime')},{"key":"outpost.batch.id","value":{"stringValue":"`;
  const mid = `"}},{"key":"outpost.device.id","value":{"stringValue":"`;
  const tail = `"}},${kv('outpost.channel', 'stable')}]},"scopeMetrics":[{"scope":{"name":"@outpost/runtime"},"metrics":[${metrics.join(',')}]}]}]}`;
  return (batchId, deviceId) => head + batchId + mid + deviceId + tail;
}

async function startServer(dir) {
  const script = join(dir, 'serve.mjs');
  await mkdir(join(dir, 'repo/metadata'), { recursive: true });
  await writeFile(
    script,
    `import { createServer, openSqliteStorage } from ${JSON.stringify(SERVER)};
     const storage = openSqliteStorage(${JSON.stringify(join(dir, 'data/outpost.db'))});
     const app = createServer({ repo: ${JSON.stringify(join(dir, 'repo'))},
       telemetry: { storage, deviceTokens: ['bench-device'], adminToken: 'bench-admin' } });
     await app.listen({ port: 0, host: '127.0.0.1' });
     process.stdout.write(app.server.address().port + '\\n');
     process.on('SIGTERM', async () => { await app.close(); await storage.close(); process.exit(0); });`,
  );
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (b) => resolve(Number(String(b).trim())));
    child.once('exit', (code) => reject(new Error(`ingest server exited (${code}): is packages/server built?`)));
  });
  return { child, port };
}

/**
 * Runs the load for `seconds` with `connections` concurrent keep-alive connections.
 * @returns {Promise<{ batchesPerSec: number, p50: number, p99: number, ok: number, non2xx: number, errors: number, stored: number, lost: number, points: number, connections: number, seconds: number }>}
 */
export async function serverIngest({ seconds = 10, connections = 10 } = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-ingest-'));
  const { child, port } = await startServer(dir);
  try {
    const body = batchTemplate();
    let n = 0;
    const url = `http://127.0.0.1:${port}/v1/metrics`;
    const headers = { 'content-type': 'application/json', authorization: 'Bearer bench-device' };
    const request = {
      method: 'POST',
      path: '/v1/metrics',
      setupRequest: (req) => {
        const id = `b-${process.pid}-${n}`;
        const device = `d-${n % DEVICES}`;
        n++;
        return { ...req, headers: { ...headers, 'idempotency-key': id }, body: body(id, device) };
      },
    };
    // Warm-up (JIT, SQLite pages), not counted.
    const warm = await autocannon({ url, connections, duration: 2, requests: [request] });
    const r = await autocannon({ url, connections, duration: seconds, requests: [request] });
    const status = await fetch(`http://127.0.0.1:${port}/api/status`, {
      headers: { authorization: 'Bearer bench-admin' },
    }).then((res) => res.json());
    const stored = status.batches.metrics;
    const ok = r['2xx'];
    // Every 200 (warm-up included) must be stored; a request cut off at the end may be stored unanswered.
    return {
      batchesPerSec: ok / seconds,
      p50: r.latency.p50,
      p99: r.latency.p99,
      ok,
      non2xx: r.non2xx,
      errors: r.errors + r.timeouts,
      stored,
      sent: n,
      lost: Math.max(0, warm['2xx'] + ok - stored),
      points: POINTS,
      connections,
      seconds,
    };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(dir, { recursive: true, force: true });
  }
}

/** One line for the report. */
export function ingestLine(r) {
  return (
    `Server ingest (SQLite, validation, device token, rate limit on): ${r.batchesPerSec.toFixed(0)} batches/s of ` +
    `${r.points} points, p50 ${r.p50} ms, p99 ${r.p99} ms (${r.connections} connections, ${r.seconds} s; ` +
    `${r.non2xx} non-2xx, ${r.errors} errors; ${r.stored} stored of ${r.sent} sent, ${r.lost} acknowledged and lost)`
  );
}

/** The V4 target rows (the shape report.mjs's targetTable prints). */
export function ingestTargets(r) {
  const pass = r.batchesPerSec >= 1000 && r.p99 <= 100 && r.lost === 0 && r.non2xx === 0 && r.errors === 0;
  return [
    {
      name: `server ingest, ${r.points}-point batches`,
      value: `${r.batchesPerSec.toFixed(0)}/s, p99 ${r.p99} ms, ${r.lost} lost`,
      limit: '>= 1000/s, p99 <= 100 ms, 0 lost',
      pass,
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await serverIngest();
  console.log(ingestLine(r));
  for (const t of ingestTargets(r)) console.log(`${t.name}: ${t.value} (${t.limit}) ${t.pass ? 'PASS' : 'MISS'}`);
}
