import { chromium } from '@playwright/test';
import { fileURLToPath } from 'node:url';

/** Debian's Chromium, headless, without the background traffic that would add noise. */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Vite serves files outside the harness root under /@fs/ (the repo is its allowed workspace).
const suitesUrl = `/@fs${fileURLToPath(new URL('../page/index.js', import.meta.url))}`;

/** Opens the harness in `context` and waits until `window.outpost` is there. */
export async function openHarness(context, baseUrl) {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`  [page error] ${err.message}`));
  await page.goto(baseUrl);
  await page.waitForFunction(() => window.harnessReady === true);
  return page;
}

/** Runs one suite exported by bench/page/index.js in `page`; returns its JSON result. */
export function runSuite(page, suite, args) {
  return page.evaluate(
    async ([url, name, a]) => {
      const suites = await import(url);
      return suites[name](a);
    },
    [suitesUrl, suite, args],
  );
}

/** Empties the origin's IndexedDB, so the next load downloads. */
export function clearStore(page) {
  return page.evaluate(async () => {
    const dbs = await indexedDB.databases();
    await Promise.all(
      dbs.map(
        (d) =>
          new Promise((resolve, reject) => {
            const req = indexedDB.deleteDatabase(d.name);
            req.onsuccess = () => resolve();
            req.onerror = () => reject(req.error);
            req.onblocked = () => reject(new Error(`IndexedDB ${d.name} is still open`));
          }),
      ),
    );
  });
}
