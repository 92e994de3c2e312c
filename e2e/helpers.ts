import { expect, type Page, type Worker } from '@playwright/test';

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

/**
 * The page's workers named `name` (the runtime names its workers 'outpost'), in the order they
 * started. onnxruntime's thread workers are left out by URL: blocked in Atomics.wait, they never
 * answer an evaluate. Every ask is bounded (`askMs`), as a worker may be hung on purpose.
 */
export async function workersNamed(page: Page, name: string, askMs = 2000): Promise<Worker[]> {
  const named = await Promise.all(
    page
      .workers()
      .filter((w) => !w.url().includes('ort-wasm'))
      .map(async (w) => ({
        w,
        name: await Promise.race([
          w.evaluate(() => self.name).catch(() => ''),
          new Promise<string>((r) => setTimeout(() => r(''), askMs)),
        ]),
      })),
  );
  return named.filter((x) => x.name === name).map((x) => x.w);
}

/**
 * Waits for the next worker the page starts (onnxruntime's threads left out) and makes it spin
 * as soon as it is there; says when it is closed. Call before what starts the worker.
 */
export async function hangNextWorker(page: Page): Promise<{ closed: Promise<void> }> {
  const worker = await page.waitForEvent('worker', (w) => !w.url().includes('ort-wasm'));
  const closed = new Promise<void>((resolve) => worker.once('close', () => resolve()));
  await spin(worker);
  return { closed };
}

/** Makes `worker` spin forever from its next task on: it never answers again (a hung worker). */
export async function spin(worker: Worker): Promise<void> {
  await worker.evaluate(() =>
    setTimeout(() => {
      for (;;);
    }, 0),
  );
}
