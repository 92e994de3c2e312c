import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test, type Page } from '@playwright/test';
import { DASHBOARD_CSP } from '@outpost/server';
import { demoDir, demoPort } from '../playwright.config.js';
import { expectStrictCsp, watchCsp, type CspWatch } from './support/csp.js';
import { rebuilt } from './support/ota.js';

// The web app of the README's first command (`npm start`): draw a digit, see the prediction,
// backend and latency; find the text in a picture; and publish a new version with the CLI while
// the page is open. Other specs publish into the same demo repository (digits 2.x: the PWA);
// this one owns digits 3.x.

// A machine without a GPU, like this one (headless Chromium's WebGPU is SwiftShader, on the CPU,
// and PP-OCR det takes seconds there): the pages see no WebGPU and run on WASM.
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  },
});

const origin = `http://127.0.0.1:${demoPort}`;
const demo = `${origin}/web-app/`;

// The examples' server sends the README's strict Content-Security-Policy: whatever it refuses,
// in the page or in its workers (Outpost's, ONNX Runtime's threads), fails the test.
let csp: CspWatch;
test.beforeEach(async ({ page }) => {
  csp = await watchCsp(page);
});
test.afterEach(() => csp.expectNone());

async function stroke(page: Page, points: [number, number][]): Promise<void> {
  const box = (await page.locator('#pad').boundingBox())!;
  const [first, ...rest] = points;
  await page.mouse.move(box.x + first![0], box.y + first![1]);
  await page.mouse.down();
  for (const [x, y] of rest) await page.mouse.move(box.x + x, box.y + y, { steps: 4 });
  await page.mouse.up();
}

async function drawOne(page: Page): Promise<void> {
  await stroke(page, [
    [140, 40],
    [140, 240],
  ]);
}

test('web app: drawing a 1 and a 0 gives 1 and 0, with the backend and latency shown', async ({ page }) => {
  expectStrictCsp(await page.goto(demo));
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await expect(page.locator('#backend')).toHaveText(/^wasm/);

  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  await expect(page.locator('#latency')).toHaveText(/^\d+\.\d\d ms$/);
  await expect(page.locator('#bars li')).toHaveCount(10);

  await page.click('#clear');
  await expect(page.locator('#prediction')).toHaveText('?');
  const circle: [number, number][] = [];
  for (let a = 0; a <= 2 * Math.PI + 0.3; a += 0.25) circle.push([140 + 60 * Math.sin(a), 140 - 95 * Math.cos(a)]);
  await stroke(page, circle);
  await expect(page.locator('#prediction')).toHaveText('0');
});

test('web app: PP-OCR det finds the text in a picture, loaded by name on first use, and the cache lists both models', async ({
  page,
}) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  await page.click('#sample');
  // The sample picture has five lines of text.
  await expect(page.locator('#ocr-boxes')).toHaveText(/^\d+$/, { timeout: 60_000 });
  const boxes = Number(await page.locator('#ocr-boxes').textContent());
  expect(boxes).toBeGreaterThanOrEqual(4);
  expect(boxes).toBeLessThanOrEqual(12);
  // 1.0.0 from the fresh repository, or a later one the kiosk spec published.
  await expect(page.locator('#ocr-version')).toHaveText(/^\d+\.\d+\.\d+$/);
  await expect(page.locator('#ocr-latency')).toHaveText(/^\d+\.\d ms \(480×320\)$/);
  await expect(page.locator('#cache li')).toHaveCount(2);
  await expect(page.locator('#cache')).toContainText(/ocr-det \d+\.\d+\.\d+/);
  await expect(page.locator('#cache')).toContainText(/digits \d+\.\d+\.\d+/);
  // The README's screenshot of this example.
  await page.setViewportSize({ width: 900, height: 1400 });
  await page.screenshot({ path: resolve(import.meta.dirname, '../examples/web-app/screenshot.png'), fullPage: true });
});

test('web app: a version published with the CLI shows up in the open page, no reload, still predicting', async ({
  page,
}) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  // The server made a fresh repository (OUTPOST_DEMO_RESET) with 1.0.0; another spec may have
  // published since: start from whatever the channel names.
  await expect(page.locator('#version')).toHaveText(/^\d+\.\d+\.\d+$/);
  const before = (await page.locator('#version').textContent())!;
  await expect(page.locator('#update-status')).toHaveText(/following channel stable/);
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  await page.evaluate(() => ((window as any).samePage = true));

  // The README's publish command, with a rebuilt model (other bytes, same answers) as 1.1.0.
  const tmp = await mkdtemp(join(tmpdir(), 'outpost-demo-spec-'));
  try {
    const model = join(tmp, 'digits.onnx');
    await writeFile(model, rebuilt('digits 3.0.0, published by e2e/web-app.spec.ts'));
    const cli = resolve(import.meta.dirname, '../packages/cli/bin/outpost.js');
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli,
      'publish',
      model,
      ...['--repo', join(demoDir, 'repo'), '--keys', join(demoDir, 'keys'), '--golden', join(demoDir, 'golden.json')],
      ...['--name', 'digits', '--version', '3.0.0', '--channel', 'stable'],
    ]);
    expect(stdout).toContain('published digits@3.0.0');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  // The page checks every 5 s, downloads, verifies, health-checks and switches between two runs.
  await expect(page.locator('#version')).toHaveText('3.0.0', { timeout: 60_000 });
  await expect(page.locator('#update-status')).toContainText(`updated to 3.0.0 from ${before}`);
  expect(await page.evaluate(() => (window as any).samePage)).toBe(true);

  await page.click('#clear');
  await expect(page.locator('#prediction')).toHaveText('?');
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  await expect(page.locator('#backend')).toHaveText(/^(webgpu|wasm)/);

  // The switch is durable: a reload opens on 3.0.0, from IndexedDB.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await expect(page.locator('#version')).toHaveText('3.0.0');
  await expect(page.locator('#source')).toHaveText(/^from IndexedDB/);
});

test('web app: the page reports its telemetry to the demo server; the dashboard lists this device and its runs', async ({
  page,
}) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  // The page flushes every 5 s; the dashboard's API (admin token) then knows the device.
  const overview = async () => {
    const res = await page.request.get(`${origin}/repo/api/overview`, {
      headers: { authorization: 'Bearer demo-admin' },
    });
    return res.ok() ? ((await res.json()) as { devices: unknown[]; latency: { model: string; runs: number }[] }) : null;
  };
  await expect.poll(async () => (await overview())?.devices.length ?? 0, { timeout: 30_000 }).toBeGreaterThan(0);
  await expect
    .poll(async () => (await overview())?.latency.find((r) => r.model === 'digits')?.runs ?? 0, { timeout: 30_000 })
    .toBeGreaterThan(0);
  // The dashboard page itself, under the demo's /repo/ mount: `outpost serve` sends its page with
  // a policy of its own (stricter: no WebAssembly, never framed), its code under the demo's. It
  // asks for the admin token, then lists this device.
  const dash = await page.context().newPage();
  const dashCsp = await watchCsp(dash, [DASHBOARD_CSP]);
  expectStrictCsp(await dash.goto(`${origin}/repo/`), DASHBOARD_CSP);
  await dash.fill('#token', 'demo-admin');
  await dash.click('#login button');
  await expect(dash.locator('#main')).toBeVisible();
  // Its first cell: a device id (a table with no rows says "none yet").
  await expect(dash.locator('#devices td').first()).toHaveText(/^(?!none yet$)\S+/);
  dashCsp.expectNone();
  await dash.close();
});
