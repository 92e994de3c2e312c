import { chromium, expect, test } from '@playwright/test';
import { fp32, GOLDEN, proxy, rebuilt, start } from './support/ota.js';
import { TestRepo } from './support/test-repo.js';
import config from '../playwright.config.js';

// U7 for the whole browser: Chromium runs under Debian's libfaketime with its wall clock three
// years ahead (page, worker and all): the repository's metadata is expired, nothing installs.
// The other directions (clock back, clock fixed again) run through the injectable clock in
// updates.spec.ts and the protocol's unit tests; Chromium under libfaketime takes about a
// minute to start and navigate here, so one whole-browser run it is.

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const YEAR = 365 * 86_400_000;

for (const [offset, years] of [['+3y', 3]] as const) {
  test(`U7 Chromium under faketime ${offset}: expired metadata, no install`, async () => {
    test.setTimeout(300_000);
    const t0 = Date.now();
    const mark = (what: string) => console.log(`${offset} ${what} at ${Date.now() - t0} ms`);
    const repo = await TestRepo.create();
    await repo.publish('digits', '1.0.0', fp32(rebuilt('1.0.0')), GOLDEN);
    await repo.point('digits', '1.0.0');
    const browser = await chromium.launch({
      executablePath: config.use?.launchOptions?.executablePath,
      args: config.use?.launchOptions?.args,
      env: {
        ...process.env,
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME: offset,
        // Only the wall clock moves; Chromium's scheduling runs on the monotonic clock.
        DONT_FAKE_MONOTONIC: '1',
      },
    });
    mark('launched');
    try {
      const page = await browser.newPage({ baseURL: config.use?.baseURL });
      await page.goto('/');
      mark('navigated');
      await page.waitForFunction(() => window.harnessReady === true);
      mark('ready');
      // The page and its workers really see the shifted clock (else this test proves nothing).
      const skew = await page.evaluate(async () => {
        const worker = new Worker('/csp-probe-worker.js');
        worker.terminate();
        return Date.now();
      });
      expect(Math.round((skew - Date.now()) / YEAR)).toBe(years);
      await proxy(page, repo);
      await start(page, repo);
      const outcome = await page.evaluate(async () => {
        const w = window as any;
        w.fakeNow = undefined;
        try {
          const m = await w.rt.load('digits');
          return { version: m.version as string };
        } catch (e: any) {
          return { code: e.code as string };
        }
      });
      const log = (await (await page.request.get('/__repo')).json()) as string[];
      expect(outcome).toEqual({ code: 'METADATA_EXPIRED' });
      expect(log.filter((p) => p.startsWith('targets/'))).toEqual([]);
    } finally {
      await browser.close();
      await repo.dispose();
    }
  });
}
