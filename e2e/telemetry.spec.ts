import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test, type Page } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';

// Telemetry in Chromium: recorded in the worker while the device is offline, queued in
// IndexedDB, and delivered to a loopback OTLP receiver once the browser is back online. The
// harness's CSP allows only its own origin (connect-src 'self'), as a strict app's would: the
// page sends to /otlp on it, and Playwright forwards those requests, bodies and headers
// unchanged, to the receiver.

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback OTLP/HTTP receiver, reached by the page as /otlp on its own origin. */
async function receiver(page: Page): Promise<{
  url: string;
  received: Received[];
  offline: { on: boolean };
  answer: { status: number };
  close: () => Promise<void>;
}> {
  const received: Received[] = [];
  const answer = { status: 200 };
  const server: Server = createServer((req, res) => {
    const cors = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Allow-Headers': 'content-type, authorization, idempotency-key',
      'Access-Control-Allow-Methods': 'POST',
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(answer.status, { ...cors, 'Content-Type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // Chromium's offline emulation does not reach a dedicated worker's requests: the network is cut
  // here too, as a failed connection.
  const offline = { on: false };
  await page.route('**/otlp/**', async (route) => {
    if (offline.on) return route.abort('internetdisconnected');
    const url = new URL(route.request().url());
    const response = await route.fetch({ url: `http://127.0.0.1:${port}${url.pathname.slice('/otlp'.length)}` });
    await route.fulfill({ response });
  });
  return {
    url: '/otlp',
    received,
    offline,
    answer,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const vad = { name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' };

/** Batches waiting in the page's telemetry queue (IndexedDB `outpost-telemetry`). */
function queued(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open('outpost-telemetry');
        // Not there yet: count nothing, and do not create it (the runtime would repair it, T5).
        open.onupgradeneeded = () => open.transaction!.abort();
        open.onerror = () => (open.error?.name === 'AbortError' ? resolve(0) : reject(open.error));
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('queue')) return resolve(0);
          const req = db.transaction('queue').objectStore('queue').count();
          req.onsuccess = () => {
            db.close();
            resolve(req.result);
          };
        };
      }),
  );
}

interface Metrics {
  resourceMetrics: {
    resource: { attributes: { key: string; value: { stringValue?: string } }[] };
    scopeMetrics: { metrics: { name: string; sum?: { dataPoints: { asInt: string }[] } }[] }[];
  }[];
}

test('T1 T2 T5: runs recorded offline are queued in IndexedDB and delivered after reconnect, each batch once with its id', async ({
  page,
  context,
}) => {
  const rx = await receiver(page);
  // The receiver is unreachable from the start: a timer flush between the load and going offline
  // must not deliver anything yet.
  rx.offline.on = true;
  try {
    await openHarness(page);
    await clearStore(page);
    await page.evaluate(
      async ({ vad, endpoint }) => {
        const w = window as unknown as Record<string, unknown>;
        const rt = await window.outpost.createRuntime({
          backends: ['wasm'],
          telemetry: { endpoint, token: 'fleet-1', flushEvery: '1s' },
        });
        w.rt = rt;
        w.model = await rt.load(vad);
      },
      { vad, endpoint: rx.url },
    );
    await context.setOffline(true);
    await page.evaluate(async () => {
      const m = (window as unknown as Record<string, { run: (f: unknown) => Promise<unknown> }>).model!;
      for (let i = 0; i < 25; i++) {
        await m.run({
          input: { type: 'float32', data: new Float32Array(512).fill(0.1), dims: [1, 512] },
          state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
          sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
        });
      }
    });
    // The timer moves the aggregates to IndexedDB; sending fails offline and the batches stay (T5).
    await expect.poll(() => queued(page), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.waitForTimeout(1500);
    expect(rx.received).toEqual([]);
    expect(await queued(page)).toBeGreaterThan(0);

    rx.offline.on = false;
    await context.setOffline(false); // the page's `online` event sends the queue
    await expect.poll(() => queued(page), { timeout: 15_000 }).toBe(0);
    const posts = rx.received.filter((r) => r.path === '/v1/metrics');
    expect(posts.length).toBeGreaterThan(0);
    let runs = 0;
    const ids = new Set<string>();
    for (const p of posts) {
      const body = JSON.parse(p.body) as Metrics;
      const batchId = body.resourceMetrics[0]!.resource.attributes.find((a) => a.key === 'outpost.batch.id');
      expect(batchId?.value.stringValue).toBe(p.headers['idempotency-key']);
      expect(p.headers.authorization).toBe('Bearer fleet-1');
      ids.add(String(p.headers['idempotency-key']));
      for (const m of body.resourceMetrics[0]!.scopeMetrics[0]!.metrics) {
        if (m.name === 'outpost.run.count') runs += m.sum!.dataPoints.reduce((n, d) => n + Number(d.asInt), 0);
      }
    }
    expect(ids.size).toBe(posts.length);
    expect(runs).toBe(25);
  } finally {
    await context.setOffline(false);
    await page.evaluate(() => (window as unknown as { rt?: { close(): Promise<void> } }).rt?.close());
    await rx.close();
  }
});

test('T1 T5: batches queued while the receiver is unreachable survive a reload and are sent by the next runtime', async ({
  page,
}) => {
  const rx = await receiver(page);
  rx.offline.on = true;
  const start = (withModel: boolean) =>
    page.evaluate(
      async ({ vad, endpoint, withModel }) => {
        const w = window as unknown as Record<string, unknown>;
        const rt = await window.outpost.createRuntime({
          backends: ['wasm'],
          telemetry: { endpoint, flushEvery: '1s' },
        });
        w.rt = rt;
        if (!withModel) return;
        const m = await rt.load(vad);
        for (let i = 0; i < 5; i++) {
          await m.run({
            input: { type: 'float32', data: new Float32Array(512).fill(0.1), dims: [1, 512] },
            state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
            sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
          });
        }
      },
      { vad, endpoint: rx.url, withModel },
    );
  try {
    await openHarness(page);
    await clearStore(page);
    await start(true);
    await expect.poll(() => queued(page), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.waitForTimeout(1500);
    await page.reload();
    await page.waitForFunction(() => window.harnessReady === true);
    expect(await queued(page)).toBeGreaterThan(0);
    expect(rx.received).toEqual([]);
    await start(false);
    rx.offline.on = false;
    await expect.poll(() => queued(page), { timeout: 15_000 }).toBe(0);
    let runs = 0;
    for (const p of rx.received.filter((r) => r.path === '/v1/metrics')) {
      for (const m of (JSON.parse(p.body) as Metrics).resourceMetrics[0]!.scopeMetrics[0]!.metrics) {
        if (m.name === 'outpost.run.count') runs += m.sum!.dataPoints.reduce((n, d) => n + Number(d.asInt), 0);
      }
    }
    expect(runs).toBe(5);
  } finally {
    await page.evaluate(() => (window as unknown as { rt?: { close(): Promise<void> } }).rt?.close());
    await rx.close();
  }
});

test('T4: when the page is hidden, what was recorded goes out with keepalive', async ({ page }) => {
  const rx = await receiver(page);
  try {
    await openHarness(page);
    await clearStore(page);
    await page.evaluate(
      async ({ vad, endpoint }) => {
        const w = window as unknown as Record<string, unknown>;
        // No timer: only the page being hidden sends.
        const rt = await window.outpost.createRuntime({ backends: ['wasm'], telemetry: { endpoint, flushEvery: 0 } });
        w.rt = rt;
        await rt.load(vad);
      },
      { vad, endpoint: rx.url },
    );
    expect(rx.received).toEqual([]);
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await expect.poll(() => rx.received.filter((r) => r.path === '/v1/metrics').length, { timeout: 10_000 }).toBe(1);
    const body = JSON.parse(rx.received.find((r) => r.path === '/v1/metrics')!.body) as Metrics;
    const names = body.resourceMetrics[0]!.scopeMetrics[0]!.metrics.map((m) => m.name);
    expect(names).toContain('outpost.load.duration');
    await expect.poll(() => queued(page)).toBe(0);
  } finally {
    await page.evaluate(() => (window as unknown as { rt?: { close(): Promise<void> } }).rt?.close());
    await rx.close();
  }
});

test("a wrong token: batches the endpoint refuses for good reach the app's error handler from the worker", async ({
  page,
}) => {
  const rx = await receiver(page);
  rx.answer.status = 401;
  try {
    await openHarness(page);
    await clearStore(page);
    await page.evaluate(
      async ({ vad, endpoint }) => {
        const w = window as unknown as Record<string, unknown>;
        const errors: unknown[] = [];
        w.errors = errors;
        const rt = await window.outpost.createRuntime({
          backends: ['wasm'],
          telemetry: { endpoint, token: 'wrong', flushEvery: '1s' },
        });
        rt.on('error', (e) => {
          const err = e.error as Error & { code?: string; status?: number; batches?: number };
          errors.push({ source: e.source, name: err.name, code: err.code, status: err.status, batches: err.batches });
        });
        w.rt = rt;
        await rt.load(vad);
      },
      { vad, endpoint: rx.url },
    );
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { errors: unknown[] }).errors.length), { timeout: 10_000 })
      .toBeGreaterThan(0);
    const [first] = await page.evaluate(() => (window as unknown as { errors: unknown[] }).errors);
    expect(first).toMatchObject({
      source: 'telemetry',
      name: 'TelemetryError',
      code: 'TELEMETRY_REFUSED',
      status: 401,
    });
    expect((first as { batches: number }).batches).toBeGreaterThan(0);
    expect(rx.received.length).toBeGreaterThan(0);
  } finally {
    await page.evaluate(() => (window as unknown as { rt?: { close(): Promise<void> } }).rt?.close());
    await rx.close();
  }
});
