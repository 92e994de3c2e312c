import { expect, type Page } from '@playwright/test';

/** Opens the harness page and waits until `window.outpost` is there. */
export async function openHarness(page: Page, path = '/'): Promise<void> {
  await page.goto(path);
  await page.waitForFunction(() => window.harnessReady === true);
}

/** Model and fixture requests the harness server has seen since the last `clearRequests`. */
export async function serverRequests(page: Page): Promise<string[]> {
  const res = await page.request.get('/__requests');
  expect(res.ok()).toBe(true);
  return (await res.json()) as string[];
}

export async function clearRequests(page: Page): Promise<void> {
  await page.request.delete('/__requests');
}

/** Clears the origin's IndexedDB so a spec starts with an empty model store. */
export async function clearStore(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const dbs = await indexedDB.databases();
    await Promise.all(
      dbs.map(
        (d) =>
          new Promise<void>((resolve, reject) => {
            const req = indexedDB.deleteDatabase(d.name!);
            req.onsuccess = () => resolve();
            req.onerror = () => reject(req.error);
            req.onblocked = () => resolve();
          }),
      ),
    );
  });
}
