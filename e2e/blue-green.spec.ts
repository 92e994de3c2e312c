import { expect, test } from '@playwright/test';
import { check, eachTestRepo, fp32, GOLDEN, loadDigits, proxy, rebuilt, repoLog, s0, start } from './support/ota.js';
import type { TestRepo } from './support/test-repo.js';

// Blue-green on one device with the tightest retention (keep: 1): the version the channel names
// besides the active one (its `previous`, the other colour) stays verified in the store, so
// flipping the pointer back and forth never downloads. The fleet side (every device flips at its
// next check) is in packages/cli/src/fleet.test.ts (F).

let repo: TestRepo;

eachTestRepo((r) => (repo = r));

test('keep: 1 still keeps the colour the channel names as previous; flips both ways with no download', async ({
  page,
}) => {
  await repo.publish('digits', '1.0.0', fp32(rebuilt('1.0.0')), GOLDEN);
  await repo.publish('digits', '1.1.0', fp32(rebuilt('1.1.0')), GOLDEN);
  await repo.publish('digits', '1.2.0', fp32(rebuilt('1.2.0')), GOLDEN);
  await repo.point('digits', '1.0.0');
  await start(page, repo, { updates: { keep: 1 } });
  expect(await loadDigits(page)).toMatchObject({ version: '1.0.0', digit: s0.label });
  const stored = () =>
    page.evaluate(async () =>
      ((await (window as any).rt.cache.list()) as { name: string; version: string }[])
        .filter((m) => m.name === 'digits')
        .map((m) => m.version)
        .sort(),
    );

  // Green: 1.1.0, blue (1.0.0) stays named as previous.
  await repo.point('digits', '1.1.0', 10000, '1.0.0');
  expect((await check(page)).version).toBe('1.1.0');
  expect(await stored()).toEqual(['1.0.0', '1.1.0']);

  // Flip back and forth from the store: no target fetched.
  await proxy(page, repo);
  await repo.point('digits', '1.0.0', 10000, '1.1.0');
  const back = await check(page);
  expect(back.version).toBe('1.0.0');
  expect(back.events.find((e) => e.type === 'activated')).toMatchObject({ version: '1.0.0', previous: '1.1.0' });
  await repo.point('digits', '1.1.0', 10000, '1.0.0');
  expect((await check(page)).version).toBe('1.1.0');
  expect((await repoLog(page)).filter((p) => p.startsWith('targets/'))).toEqual([]);
  expect(await stored()).toEqual(['1.0.0', '1.1.0']);

  // A version the channel no longer names is evicted as keep: 1 says.
  await repo.point('digits', '1.2.0', 10000, '1.1.0');
  expect((await check(page)).version).toBe('1.2.0');
  expect(await stored()).toEqual(['1.1.0', '1.2.0']);
});
