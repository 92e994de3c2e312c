import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from '../helpers.js';
import { mb, prepareSoak, soak } from '../support/soak.js';
import { TestRepo } from '../support/test-repo.js';

// R7, the full soak (`npm run soak`, not in `npm test`): at least 10,000 runs (digits, and one
// PP-OCRv4 det run at 320x320 in 20) and 50 over-the-air updates of digits in one page.

const PLAN = { runsPerCycle: 200, cycles: 50, ocrEvery: 20 };
/**
 * WASM memories never shrink, so memory is compared between cycle 10 (every heap grown to its
 * working size, ~2,200 runs in) and cycle 50, and may grow by at most a quarter of cycle 10's.
 * What this catches: one worker (an ORT WASM instance) left behind per update is tens of MB each,
 * 40 of them several times the bound; one PP-OCR input or output kept per run is 1.2 MB, 400 of
 * them the same. What it does not: a leak of a few KB per digits run (about 25 MB over the
 * window) stays under it on RSS.
 */
const FROM = 10;
const GROWTH = 0.25;

let repo: TestRepo;
test.beforeEach(async () => {
  repo = await TestRepo.create();
});
test.afterEach(async () => {
  await repo.dispose();
});

test('R7 soak: 10,000 runs and 50 update cycles in one page, no run failed, memory bounded', async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
  await prepareSoak(page, repo);
  const r = await soak(page, repo, PLAN, (line) => console.log(line));
  const at = (c: number) => r.points.find((p) => p.cycle === c)!;
  const [p0, pFrom, pEnd] = [at(0), at(FROM), at(PLAN.cycles)];
  console.log(
    [
      `R7 soak: ${r.runs} runs (${r.digitsRuns} digits, ${r.ocrRuns} PP-OCR det 320x320), ${PLAN.cycles} update cycles, ${r.seconds.toFixed(1)} s wall`,
      `  ${(r.runs / r.seconds).toFixed(1)} runs/s overall, ${r.updateSeconds.toFixed(1)} s in rt.updates.check() (mean ${((r.updateSeconds / PLAN.cycles) * 1000).toFixed(0)} ms), longest gap between two runs ${r.maxGapMs.toFixed(0)} ms`,
      `  measureUserAgentSpecificMemory MB: cycle 0 ${mb(p0.uaBytes)}, cycle ${FROM} ${mb(pFrom.uaBytes)}, cycle ${PLAN.cycles} ${mb(pEnd.uaBytes)} (max ${mb(Math.max(...r.points.map((p) => p.uaBytes)))})`,
      `  browser RSS MB: cycle 0 ${mb(p0.rssBytes)}, cycle ${FROM} ${mb(pFrom.rssBytes)}, cycle ${PLAN.cycles} ${mb(pEnd.rssBytes)} (max ${mb(Math.max(...r.points.map((p) => p.rssBytes)))})`,
      `  browser PSS MB: cycle 0 ${mb(p0.pssBytes)}, cycle ${FROM} ${mb(pFrom.pssBytes)}, cycle ${PLAN.cycles} ${mb(pEnd.pssBytes)}`,
      `  failures: ${r.failures.length}; memory measurements over 5 s: ${r.slowMeasures}`,
    ].join('\n'),
  );
  expect(r.failures).toEqual([]);
  expect(r.runs).toBeGreaterThanOrEqual(10_000);
  expect(pEnd.uaBytes).toBeLessThanOrEqual(pFrom.uaBytes * (1 + GROWTH));
  expect(pEnd.rssBytes).toBeLessThanOrEqual(pFrom.rssBytes * (1 + GROWTH));
});
