import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { GOLDEN, fp32, nanWeights, rebuilt, s0, wrongWeights } from '../support/ota.js';
import { TestRepo } from '../support/test-repo.js';
import {
  check,
  clearStore,
  firefoxForFile,
  loadDigits,
  newPage,
  openHarness,
  proxy,
  reload,
  repoLog,
  start,
} from './browser.js';

// Over-the-air updates in Firefox ESR (e2e/updates.spec.ts and downloads.spec.ts in Chromium):
// a real repository server on loopback, reached through the harness proxy at /repo.

let browser: Browser;
let page: Page;
let repo: TestRepo;

firefoxForFile((b, p) => {
  browser = b;
  page = p;
});

beforeEach(async () => {
  repo = await TestRepo.create();
  await openHarness(page);
  await clearStore(page);
  await proxy(repo);
});

afterEach(async () => {
  await repo.dispose();
});

async function installed(version = '1.0.0') {
  await repo.publish('digits', version, fp32(rebuilt(version)), GOLDEN);
  await repo.point('digits', version);
  await start(page, repo);
  return loadDigits(page, s0.input);
}

test('by name: installs the channel version, then loads it from the store after a reload with the repository offline', async () => {
  expect(await installed()).toEqual({ version: '1.0.0', source: 'network', digit: s0.label });
  await reload(page);
  await proxy(repo, { offline: true });
  await start(page, repo);
  expect(await loadDigits(page, s0.input)).toEqual({ version: '1.0.0', source: 'cache', digit: s0.label });
  expect(await repoLog()).toEqual([]);
});

test('an update published while the page runs is activated between two runs; no call fails', async () => {
  await installed();
  await page.evaluate((input) => {
    const w = window as any;
    w.loop = { stop: false, runs: 0, errors: [] as string[], versions: new Set<string>() };
    const feeds = () => ({ x: { type: 'float32', data: Float32Array.from(input), dims: [1, 1, 28, 28] } });
    w.loop.done = (async () => {
      while (!w.loop.stop) {
        try {
          await w.model.run(feeds());
          w.loop.versions.add(w.model.version);
        } catch (e) {
          w.loop.errors.push(String(e));
        }
        w.loop.runs++;
      }
    })();
  }, s0.input);
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  const { plans, events, version } = await check(page);
  const loop = await page.evaluate(async () => {
    const w = window as any;
    await new Promise((r) => setTimeout(r, 200));
    w.loop.stop = true;
    await w.loop.done;
    return { runs: w.loop.runs as number, errors: w.loop.errors as string[], versions: [...w.loop.versions] };
  });
  expect(plans).toEqual([{ name: 'digits', from: '1.0.0', to: '1.1.0' }]);
  expect(events.map((e) => e.type)).toEqual(['available', 'downloaded', 'activated']);
  expect(version).toBe('1.1.0');
  expect(loop.errors).toEqual([]);
  expect(loop.versions).toEqual(['1.0.0', '1.1.0']);
  expect(loop.runs).toBeGreaterThan(10);
});

test('U1 a tampered blob is refused (INTEGRITY), nothing is stored, the active version keeps serving', async () => {
  await installed();
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  await proxy(repo, { tamper: 'targets/models/digits/1.1.0/fp32' });
  const first = await check(page);
  expect(first.events.map((e) => e.type)).toEqual(['available', 'error']);
  expect(first.events[1]!.error).toEqual({ name: 'IntegrityError', code: 'INTEGRITY' });
  expect(first.version).toBe('1.0.0');
  const stored = await page.evaluate(async () =>
    ((await (window as any).rt.cache.list()) as { version: string }[]).map((m) => m.version),
  );
  expect(stored).toEqual(['1.0.0']);
  await proxy(repo);
  expect((await check(page)).version).toBe('1.1.0');
});

test('U16 an unhealthy version (NaN outputs, wrong golden answer) is rolled back, marked bad, not retried', async () => {
  await installed();
  for (const [version, edit] of [
    ['1.1.0', nanWeights],
    ['1.2.0', wrongWeights],
  ] as const) {
    await repo.publish('digits', version, fp32(rebuilt(version, edit)), GOLDEN);
    await repo.point('digits', version);
    const { events, version: running } = await check(page);
    expect(events).toMatchObject([{ type: 'available' }, { type: 'rolled-back', version }]);
    expect(running).toBe('1.0.0');
    await proxy(repo);
    const again = await check(page);
    expect(again.plans).toEqual([]);
    expect((await repoLog()).filter((p) => p.startsWith('targets/'))).toEqual([]);
  }
  expect(await loadDigits(page, s0.input)).toMatchObject({ version: '1.0.0', digit: s0.label });
});

test('U4 replayed older metadata is refused, also after a reload (highest versions are stored)', async () => {
  await repo.publish('digits', '1.0.0', fp32(rebuilt('1.0.0')), GOLDEN);
  await repo.point('digits', '1.0.0');
  const old = join(repo.dir, 'old-timestamp.json');
  await copyFile(join(repo.dir, 'metadata/timestamp.json'), old);
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  await start(page, repo);
  expect(await loadDigits(page, s0.input)).toMatchObject({ version: '1.1.0' });
  await writeFile(join(repo.dir, 'metadata/timestamp.json'), await readFile(old));
  for (let i = 0; i < 2; i++) {
    const { refused, version } = await check(page);
    expect(refused).toBe('METADATA_ROLLBACK');
    expect(version).toBe('1.1.0');
    await reload(page);
    await start(page, repo);
    await loadDigits(page, s0.input);
  }
});

test('U6 expired metadata: no install, a stale-metadata warning, the installed model keeps serving', async () => {
  await installed();
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  await page.evaluate(() => ((window as any).fakeNow = Date.now() + 2 * 86_400_000));
  const { refused, events, version } = await check(page);
  expect(refused).toBe('METADATA_EXPIRED');
  expect(events.map((e) => e.type)).toEqual(['stale-metadata']);
  expect(version).toBe('1.0.0');
});

test('U15 two tabs update at once (Web Locks): one downloads, both run the new version; a third follows by broadcast', async () => {
  await installed();
  const tabs = [page, await newPage(browser), await newPage(browser)];
  try {
    for (const tab of tabs.slice(1)) {
      await openHarness(tab);
      await start(tab, repo);
      expect(await loadDigits(tab, s0.input)).toMatchObject({ version: '1.0.0', source: 'cache' });
    }
    const bytes = rebuilt('1.1.0');
    await repo.publish('digits', '1.1.0', fp32(bytes));
    await repo.point('digits', '1.1.0');
    await proxy(repo);
    const step = (what: string) => process.env.FIREFOX_DEBUG && console.error(`[U15] ${what}`);
    step('two checks');
    const [a, b] = await Promise.all([check(tabs[0]!), check(tabs[1]!)]);
    step(`checked: ${a.version} ${b.version}`);
    expect(a.version).toBe('1.1.0');
    expect(b.version).toBe('1.1.0');
    await expect
      .poll(() => tabs[2]!.evaluate(() => (window as any).model.version as string), { timeout: 10_000 })
      .toBe('1.1.0');
    const detail = (await (await fetch(new URL('/__repo?detail=1', page.url()))).json()) as {
      path: string;
      sent: number;
    }[];
    const sent = detail.filter((r) => r.path.includes('models/digits/1.1.0/')).reduce((n, r) => n + r.sent, 0);
    expect(sent).toBe(bytes.length);
  } finally {
    for (const tab of tabs.slice(1)) await tab.close();
  }
});
