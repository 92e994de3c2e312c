import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, test, type Page } from '@playwright/test';
import { demoDir, demoPort } from '../playwright.config.js';
import { rebuilt } from './support/ota.js';

// The demo of the README's first command: draw a digit, see the prediction, backend and latency;
// and publish a new version with the CLI while the page is open.

const demo = `http://127.0.0.1:${demoPort}/web-app/`;

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

test('demo: drawing a 1 and a 0 gives 1 and 0, with the backend and latency shown', async ({ page }) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await expect(page.locator('#backend')).toHaveText(/^(webgpu|wasm)/);

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
  await page.screenshot({ path: 'test-results/demo.png' });
});

test('demo: a version published with the CLI shows up in the open page, no reload, still predicting', async ({
  page,
}) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  // The demo server made a fresh repository (OUTPOST_DEMO_RESET): the channel names 1.0.0.
  await expect(page.locator('#version')).toHaveText('1.0.0');
  await expect(page.locator('#update-status')).toHaveText(/following channel stable/);
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  await page.evaluate(() => ((window as any).samePage = true));

  // The README's publish command, with a rebuilt model (other bytes, same answers) as 1.1.0.
  const tmp = await mkdtemp(join(tmpdir(), 'outpost-demo-spec-'));
  try {
    const model = join(tmp, 'digits.onnx');
    await writeFile(model, rebuilt('digits 1.1.0, published by e2e/demo.spec.ts'));
    const cli = resolve(import.meta.dirname, '../packages/cli/bin/outpost.js');
    const { stdout } = await promisify(execFile)(process.execPath, [
      cli,
      'publish',
      model,
      ...['--repo', join(demoDir, 'repo'), '--keys', join(demoDir, 'keys'), '--golden', join(demoDir, 'golden.json')],
      ...['--name', 'digits', '--version', '1.1.0', '--channel', 'stable'],
    ]);
    expect(stdout).toContain('published digits@1.1.0');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }

  // The page checks every 5 s, downloads, verifies, health-checks and switches between two runs.
  await expect(page.locator('#version')).toHaveText('1.1.0', { timeout: 60_000 });
  await expect(page.locator('#update-status')).toHaveText(/updated to 1\.1\.0 from 1\.0\.0/);
  expect(await page.evaluate(() => (window as any).samePage)).toBe(true);

  await page.click('#clear');
  await expect(page.locator('#prediction')).toHaveText('?');
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  await expect(page.locator('#backend')).toHaveText(/^(webgpu|wasm)/);
  await page.screenshot({ path: 'test-results/demo-updated.png' });

  // The switch is durable: a reload opens on 1.1.0, from IndexedDB.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await expect(page.locator('#version')).toHaveText('1.1.0');
  await expect(page.locator('#source')).toHaveText(/^from IndexedDB/);
});

test('demo: the page reports its telemetry to the demo server; the dashboard lists this device and its runs', async ({
  page,
}) => {
  await page.goto(demo);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  await drawOne(page);
  await expect(page.locator('#prediction')).toHaveText('1');
  // The page flushes every 5 s; the dashboard's API (admin token) then knows the device.
  const overview = async () => {
    const res = await page.request.get(`${demo}repo/api/overview`, { headers: { authorization: 'Bearer demo-admin' } });
    return res.ok() ? ((await res.json()) as { devices: unknown[]; latency: { model: string; runs: number }[] }) : null;
  };
  await expect.poll(async () => (await overview())?.devices.length ?? 0, { timeout: 30_000 }).toBeGreaterThan(0);
  await expect
    .poll(async () => (await overview())?.latency.find((r) => r.model === 'digits')?.runs ?? 0, { timeout: 30_000 })
    .toBeGreaterThan(0);
  // The dashboard page itself, under the demo's /repo/ mount, with the admin token.
  const dash = await page.context().newPage();
  await dash.goto(`${demo}repo/`);
  await expect(dash.locator('body')).toContainText(/token/i);
  await dash.close();
});
