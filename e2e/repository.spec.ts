import { expect, test, type Page } from '@playwright/test';
import { openHarness } from './helpers.js';
import type { RepoRequest } from './harness/repo-proxy.js';
import { check, eachTestRepo, fp32, GOLDEN, loadDigits, proxy, rebuilt, s0, start } from './support/ota.js';
import type { TestRepo } from './support/test-repo.js';

// The device's store under the repository: hostile metadata (U3, U10), eviction (S5),
// retention (S6), and offline bundles for air-gapped devices.

let repo: TestRepo;

eachTestRepo((r) => (repo = r));

async function installed(page: Page) {
  await repo.publish('digits', '1.0.0', fp32(rebuilt('1.0.0')), GOLDEN);
  await repo.point('digits', '1.0.0');
  await start(page, repo);
  await loadDigits(page);
}

const stored = (page: Page) =>
  page.evaluate(async () =>
    ((await (window as any).rt.cache.list()) as { version: string }[]).map((m) => m.version).sort(),
  );

test('U3 timestamp signed by an unknown key, or unsigned: refused, the trusted metadata and model stay', async ({
  page,
}) => {
  await installed(page);
  for (const mode of ['foreign-key', 'unsigned'] as const) {
    await repo.forgeTimestamp(mode);
    const { result, events, version } = await check(page);
    expect(result.refused?.code).toBe('METADATA_SIGNATURE');
    expect(events.map((e) => e.type)).toEqual(['stale-metadata']);
    expect(version).toBe('1.0.0');
  }
  // Properly signed metadata is accepted again afterwards: nothing bad was kept.
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  expect((await check(page)).version).toBe('1.1.0');
});

test('U10 metadata that is an HTML page, invalid UTF-8 or endless JSON: a typed refusal at the byte cap', async ({
  page,
}) => {
  await installed(page);
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  const faults = [
    { html: 'metadata/timestamp.json' },
    { replace: { match: 'metadata/timestamp.json', base64: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString('base64') } },
    { endless: 'metadata/timestamp.json' },
  ];
  for (const f of faults) {
    await proxy(page, repo, f);
    const { result, version } = await check(page);
    expect(result.refused?.code).toBe('METADATA_FORMAT');
    expect(version).toBe('1.0.0');
  }
  const log = (await (await page.request.get('/__repo?detail=1')).json()) as RepoRequest[];
  const endless = log.find((r) => r.path === 'metadata/timestamp.json')!;
  // The page reads at most the 16 KiB cap (unit-tested in @outpost/protocol's readCapped) and
  // then hangs up; the proxy only sees the socket close after the browser's network buffers
  // filled, a few MB on loopback (0.9-10.7 MB seen), and gives up by itself at 100 MB: below
  // that, it was the page that stopped the download.
  expect(endless.sent).toBeLessThan(100_000_000);
  console.log(`U10: the endless timestamp was cut after ${endless.sent} bytes were written to the socket`);
});

test('S5 storage evicted: offline load is a clear NOT_CACHED error, online it is fetched again', async ({ page }) => {
  await installed(page);
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true);
  // What the browser does under storage pressure: the origin's IndexedDB is gone.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.clearDataForOrigin', { origin: new URL(page.url()).origin, storageTypes: 'indexeddb' });
  await proxy(page, repo, { offline: true });
  await start(page, repo);
  const err = await page.evaluate(() =>
    (window as any).rt.load('digits').then(
      () => null,
      (e: any) => ({ code: e.code, message: e.message }),
    ),
  );
  expect(err?.code).toBe('NOT_CACHED');
  expect(err?.message).toMatch(/not installed and the repository cannot be reached/);
  await proxy(page, repo);
  expect(await loadDigits(page)).toEqual({ version: '1.0.0', source: 'network', digit: s0.label });
});

test('S6 retention keeps 2 versions by recency, never the active or a pinned one', async ({ page }) => {
  await installed(page);
  await page.evaluate(() => (window as any).rt.cache.pin('digits', '1.0.0'));
  for (const v of ['1.1.0', '1.2.0', '1.3.0']) {
    await repo.publish('digits', v, fp32(rebuilt(v)), GOLDEN);
    await repo.point('digits', v);
    expect((await check(page)).version).toBe(v);
  }
  // Pinned 1.0.0 and active 1.3.0 fill the two places: 1.1.0 and 1.2.0 were evicted.
  expect(await stored(page)).toEqual(['1.0.0', '1.3.0']);
  await page.evaluate(() => (window as any).rt.cache.unpin('digits', '1.0.0'));
  await repo.publish('digits', '1.4.0', fp32(rebuilt('1.4.0')), GOLDEN);
  await repo.point('digits', '1.4.0');
  await check(page);
  expect(await stored(page)).toEqual(['1.3.0', '1.4.0']);
});

test('offline bundle: exported on one device, verified and installed on another with no network', async ({
  page,
  browser,
}) => {
  await installed(page);
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.point('digits', '1.1.0');
  await check(page);
  const bundle = await page.evaluate(async () => [...(await (window as any).rt.cache.export('digits', '1.1.0'))]);

  // A second device (its own browser context: own storage) that never reaches the repository.
  const other = await browser.newContext();
  const kiosk = await other.newPage();
  await openHarness(kiosk);
  await proxy(kiosk, repo, { offline: true });
  await start(kiosk, repo);
  const tampered = [...bundle];
  tampered[tampered.length - 100] ^= 0xff;
  const bad = await kiosk.evaluate(
    (b) =>
      (window as any).rt.cache.import(Uint8Array.from(b)).then(
        () => null,
        (e: any) => e.code,
      ),
    tampered,
  );
  expect(bad).toBe('INTEGRITY');
  const ok = await kiosk.evaluate((b) => (window as any).rt.cache.import(Uint8Array.from(b)), bundle);
  expect(ok).toEqual({ name: 'digits', version: '1.1.0' });
  expect(await loadDigits(kiosk)).toEqual({ version: '1.1.0', source: 'cache', digit: s0.label });
  await other.close();

  // The importing device's clock decides too: a device two weeks on finds the bundle's
  // timestamp expired, and installs nothing (U6 holds offline as well).
  const late = await browser.newContext();
  const kiosk2 = await late.newPage();
  await openHarness(kiosk2);
  await proxy(kiosk2, repo, { offline: true });
  await kiosk2.evaluate(() => ((window as any).fakeNow = Date.now() + 14 * 86_400_000));
  await start(kiosk2, repo);
  const expired = await kiosk2.evaluate(
    (b) =>
      (window as any).rt.cache.import(Uint8Array.from(b)).then(
        () => null,
        (e: any) => e.code,
      ),
    bundle,
  );
  expect(expired).toBe('METADATA_EXPIRED');
  await late.close();
});
