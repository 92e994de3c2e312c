import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { chromium, expect, test, type Page } from '@playwright/test';
import Database from 'better-sqlite3';
import config, { demoDir, demoPort } from '../playwright.config.js';
import { exampleBuildDir } from '../examples/shared/host.js';
import { expectStrictCsp, watchCsp } from './support/csp.js';
import { rebuilt } from './support/ota.js';

// The offline PWA (examples/offline-pwa), as a user meets it: a first visit online installs the
// service worker, which precaches the app, the Outpost worker and ONNX Runtime's files; the page
// reloads and recognises a digit with the network off (the model from Outpost's IndexedDB store);
// telemetry recorded offline reaches the demo server's database once the network is back; and a
// version published meanwhile installs over the air. Digits versions: this spec owns 2.x.

const app = `http://127.0.0.1:${demoPort}/offline-pwa/`;
const root = resolve(import.meta.dirname, '..');
// The build the examples' server serves (built for its own demo repository).
const dist = exampleBuildDir('offline-pwa', demoDir);

async function stroke(page: Page, points: [number, number][]): Promise<void> {
  const box = (await page.locator('#pad').boundingBox())!;
  const [first, ...rest] = points;
  await page.mouse.move(box.x + first![0], box.y + first![1]);
  await page.mouse.down();
  for (const [x, y] of rest) await page.mouse.move(box.x + x, box.y + y, { steps: 4 });
  await page.mouse.up();
}

/** Draws a 1 on a clear pad and expects the page to read it. */
async function drawOne(page: Page): Promise<void> {
  await page.click('#clear');
  await expect(page.locator('#prediction')).toHaveText('?');
  await stroke(page, [
    [140, 40],
    [140, 240],
  ]);
  await expect(page.locator('#prediction')).toHaveText('1');
}

async function ready(page: Page): Promise<void> {
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
}

/** Paths (under the app) of every entry in the service worker's precache, and each one's headers. */
async function precached(page: Page) {
  return page.evaluate(async (app) => {
    const out: { path: string; bytes: number; headers: Record<string, string> }[] = [];
    for (const name of await caches.keys()) {
      if (!name.startsWith('workbox-precache')) continue;
      const cache = await caches.open(name);
      for (const req of await cache.keys()) {
        const res = (await cache.match(req))!;
        const url = new URL(req.url);
        url.searchParams.delete('__WB_REVISION__');
        out.push({
          path: url.href.replace(app, ''),
          bytes: (await res.arrayBuffer()).byteLength,
          headers: Object.fromEntries(res.headers),
        });
      }
    }
    return out;
  }, app);
}

/** The digits versions the demo repository has published (its newest signed targets). */
async function publishedDigits(): Promise<string[]> {
  const metadata = join(demoDir, 'repo', 'metadata');
  const newest = (await readdir(metadata))
    .map((f) => /^(\d+)\.targets\.json$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => b - a)[0];
  const targets = JSON.parse(await readFile(join(metadata, `${newest}.targets.json`), 'utf8')) as {
    signed: { targets: Record<string, { custom?: { outpost?: { model?: string; version?: string } } }> };
  };
  return Object.values(targets.signed.targets)
    .map((t) => t.custom?.outpost)
    .filter((o) => o?.model === 'digits')
    .map((o) => o!.version!);
}

/** Publishes the digits model (other bytes, same answers) as `version` on stable with the CLI. */
async function publishDigits(version: string): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), 'outpost-pwa-spec-'));
  try {
    const model = join(tmp, 'digits.onnx');
    await writeFile(model, rebuilt(`digits ${version}, published by e2e/offline-pwa.spec.ts`));
    const cli = join(root, 'packages/cli/bin/outpost.js');
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli,
      'publish',
      model,
      ...['--repo', join(demoDir, 'repo'), '--keys', join(demoDir, 'keys'), '--golden', join(demoDir, 'golden.json')],
      ...['--name', 'digits', '--version', version, '--channel', 'stable'],
    ]);
    expect(stdout).toContain(`published digits@${version}`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

interface RunRow {
  device_id: string;
  value: number;
  time_ms: number;
  received_ms: number;
}

/** Digits run counts the demo server stored, recorded (device clock) from `sinceMs` on. */
function storedRuns(sinceMs: number): RunRow[] {
  // The examples' server writes here (examples/shared/demo-repo.ts); WAL lets us read alongside.
  const db = new Database(join(demoDir, 'data', 'outpost.db'), { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        `SELECT p.device_id, p.value, p.time_ms, b.received_ms FROM points p
         JOIN batches b ON b.kind = 'metrics' AND b.id = p.batch_id
         WHERE p.metric = 'outpost.run.count' AND p.model = 'digits' AND p.time_ms >= ?`,
      )
      .all(sinceMs) as RunRow[];
  } finally {
    db.close();
  }
}

test('offline PWA: installs, precaches ORT, starts and infers offline, sends offline telemetry on reconnect, installs an update', async () => {
  test.setTimeout(300_000);
  // A persistent profile: Chromium never offers to install from an incognito-like context, which
  // is what a plain Playwright context is (Page.getInstallabilityErrors reports `in-incognito`).
  const profile = await mkdtemp(join(tmpdir(), 'outpost-pwa-profile-'));
  const context = await chromium.launchPersistentContext(profile, { ...config.use?.launchOptions });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    // The examples' server sends the README's strict Content-Security-Policy: whatever it
    // refuses, in the page, its workers or its service worker, fails the test (last step).
    const csp = await watchCsp(page);

    await test.step('first visit, online: the service worker installs and controls the page', async () => {
      expectStrictCsp(await page.goto(app));
      expectStrictCsp(await page.request.get(`${app}sw.js`));
      await ready(page);
      await expect(page.locator('#network')).toHaveText('online');
      await page.waitForSelector('body[data-offline-ready="true"]', { timeout: 60_000 });
      await page.waitForSelector('body[data-controlled="true"]', { timeout: 30_000 });
      expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(`${app}sw.js`);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      await drawOne(page);
    });

    await test.step('the precache holds ONNX Runtime (whole, with isolation headers) and every worker script', async () => {
      const entries = await precached(page);
      const paths = entries.map((e) => e.path);
      // Every file @outpost/vite emitted for ONNX Runtime, at its full size: the 14 and 27 MB
      // .wasm files are far past Workbox's 2 MiB default limit.
      const ort = await readdir(join(dist, 'outpost-ort'));
      expect(ort).toContain('ort-wasm-simd-threaded.wasm');
      for (const file of ort) {
        const entry = entries.find((e) => e.path === `outpost-ort/${file}`);
        expect(entry, `outpost-ort/${file} precached`).toBeDefined();
        expect(entry!.bytes).toBe((await stat(join(dist, 'outpost-ort', file))).size);
      }
      // The Outpost worker and ONNX Runtime's own workers, as Chromium started them.
      const workers = page.workers().map((w) => w.url().replace(app, ''));
      expect(workers.some((w) => /^assets\/.+\.js$/.test(w))).toBe(true);
      for (const w of workers) expect(paths).toContain(w);
      expect(paths).toContain('index.html');
      // Served from the cache, these headers are what keeps the page cross-origin isolated offline.
      for (const e of entries) expect(e.headers['cross-origin-embedder-policy'], e.path).toBe('require-corp');
      expect(entries.find((e) => e.path === 'index.html')!.headers['cross-origin-opener-policy']).toBe('same-origin');
    });

    await test.step('Chromium reports no installability errors', async () => {
      const cdp = await context.newCDPSession(page);
      const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
      expect(installabilityErrors).toEqual([]);
      const manifest = await cdp.send('Page.getAppManifest');
      expect(manifest.errors).toEqual([]);
      await cdp.detach();
    });

    // Runs recorded while offline are counted from here (device clock; same machine as the server).
    let offlineAt = 0;
    await test.step('offline: the page reloads from the service worker and recognises a digit', async () => {
      await context.setOffline(true);
      offlineAt = Date.now();
      // Waiting for the page to see it also keeps the reload from racing the emulation.
      await expect(page.locator('#network')).toHaveText('offline');
      const nav = await page.reload();
      expect(nav?.fromServiceWorker()).toBe(true);
      // The precached page keeps its policy: offline, the app runs under it still.
      expectStrictCsp(nav);
      await ready(page);
      await expect(page.locator('#network')).toHaveText('offline');
      await expect(page.locator('#source')).toHaveText(/^from IndexedDB/);
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      // The network is really gone for the page (and, below, for the worker's telemetry).
      const reachable = await page.evaluate(() =>
        fetch('/repo/metadata/timestamp.json', { cache: 'no-store' }).then(
          () => true,
          () => false,
        ),
      );
      expect(reachable).toBe(false);
      await drawOne(page);
      await drawOne(page);
      await page.screenshot({ path: 'test-results/offline-pwa-offline.png' });
    });

    let onlineAt = 0;
    await test.step('telemetry recorded offline is queued, then stored by the server after reconnect', async () => {
      // The runtime moves its aggregates to the IndexedDB queue every 5 s; offline, they stay. A
      // queued batch alone may be the load's, queued before the digits were drawn: one whole
      // interval after the drawing, the runs are queued too.
      await page.waitForTimeout(6_000);
      await expect
        .poll(() => page.evaluate(() => Number(document.body.dataset.telemetryQueued)), {
          timeout: 20_000,
        })
        .toBeGreaterThan(0);
      expect(storedRuns(offlineAt)).toEqual([]);
      // Taken before: the page's `online` event may send the queue before setOffline returns.
      onlineAt = Date.now();
      await context.setOffline(false);
      await expect(page.locator('#network')).toHaveText('online');
      await expect(page.locator('#telemetry')).toHaveText('all sent', { timeout: 30_000 });
      let rows: RunRow[] = [];
      await expect
        .poll(() => (rows = storedRuns(offlineAt).filter((r) => r.time_ms < onlineAt)).length, { timeout: 30_000 })
        .toBeGreaterThan(0);
      // Recorded while offline, received only after the reconnect, from one device (this page).
      expect(rows.reduce((n, r) => n + r.value, 0)).toBeGreaterThanOrEqual(2);
      for (const r of rows) expect(r.received_ms).toBeGreaterThanOrEqual(onlineAt);
      expect(new Set(rows.map((r) => r.device_id)).size).toBe(1);
    });

    await test.step('a version published with the CLI installs over the air: "new model ready"', async () => {
      const before = (await page.locator('#version').textContent())!;
      expect(before).toMatch(/^\d+\.\d+\.\d+$/);
      const published = await publishedDigits();
      // This spec's range: the next 2.x not published yet.
      let minor = 0;
      while (published.includes(`2.${minor}.0`)) minor++;
      const next = `2.${minor}.0`;
      await publishDigits(next);
      await expect(page.locator('#new-model')).toBeVisible({ timeout: 60_000 });
      await expect(page.locator('#new-model')).toHaveText(
        new RegExp(`New model ready: digits ${next} \\(was ${before}`),
      );
      await expect(page.locator('#version')).toHaveText(next);
      // The README's picture: the new version, recognising a digit, with the network off.
      await context.setOffline(true);
      await expect(page.locator('#network')).toHaveText('offline');
      await drawOne(page);
      await page.screenshot({ path: 'examples/offline-pwa/screenshot.png' });

      // Installed for good: offline, a reload opens on it, from IndexedDB.
      await page.reload();
      await ready(page);
      await expect(page.locator('#version')).toHaveText(next);
      await expect(page.locator('#source')).toHaveText(/^from IndexedDB/);
      await drawOne(page);
      await context.setOffline(false);
    });

    await test.step('nothing was refused under the strict CSP, online or offline', () => csp.expectNone());
  } finally {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  }
});
