import { expect, test } from '@playwright/test';
import base from '../playwright.config.js';
import { clearStore, openHarness } from './helpers.js';
import { EAGER_MEASURE_MEMORY, mb, prepareSoak, soak } from './support/soak.js';
import { TestRepo } from './support/test-repo.js';

// R7 in `npm test`: the soak of `npm run soak` (e2e/soak/) shortened to 2,000 runs and 10
// over-the-air updates of digits in one page, with one PP-OCRv4 det run at 320x320 in 50.

test.use({
  launchOptions: {
    ...base.use?.launchOptions,
    args: [...(base.use?.launchOptions?.args ?? []), EAGER_MEASURE_MEMORY],
  },
});

const PLAN = { runsPerCycle: 180, cycles: 10, ocrEvery: 50 };
/** As in the full soak: heaps at working size by cycle 3 (~700 runs), then a quarter at most. */
const FROM = 3;
const GROWTH = 0.25;

let repo: TestRepo;
test.beforeEach(async () => {
  repo = await TestRepo.create();
});
test.afterEach(async () => {
  await repo.dispose();
});

test('R7 short soak: 2,000 runs and 10 update cycles in one page, no run failed, memory bounded', async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
  await prepareSoak(page, repo);
  const r = await soak(page, repo, PLAN);
  const from = r.points.find((p) => p.cycle === FROM)!;
  const end = r.points.find((p) => p.cycle === PLAN.cycles)!;
  console.log(
    `R7 short soak: ${r.runs} runs in ${r.seconds.toFixed(1)} s; cycle ${FROM} -> ${PLAN.cycles}: measureUserAgentSpecificMemory ${mb(from.uaBytes)} -> ${mb(end.uaBytes)} MB, RSS ${mb(from.rssBytes)} -> ${mb(end.rssBytes)} MB`,
  );
  expect(r.failures).toEqual([]);
  expect(r.runs).toBeGreaterThanOrEqual(2_000);
  expect(end.uaBytes).toBeLessThanOrEqual(from.uaBytes * (1 + GROWTH));
  expect(end.rssBytes).toBeLessThanOrEqual(from.rssBytes * (1 + GROWTH));
});
