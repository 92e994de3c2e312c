import puppeteer, { type Browser, type Frame, type Page, type Target } from 'puppeteer-core';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import type { TestRepo } from '../support/test-repo.js';

// Puppeteer-core counterparts of e2e/helpers.ts and e2e/support/ota.ts for the Firefox suite:
// the same page-side calls, made over WebDriver BiDi.

/** Debian's Firefox ESR (`apt-get install firefox-esr`); FIREFOX_PATH to use another. */
export const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';

export const harnessUrl = () => inject('harnessUrl');

/** Starts headless Firefox with a fresh profile (puppeteer-core makes one per launch). */
export async function launchFirefox(): Promise<Browser> {
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: FIREFOX,
    headless: true,
  });
  // FIREFOX_DEBUG=1 prints what the pages log and their navigations, timed, to see where a test stopped.
  if (process.env.FIREFOX_DEBUG) {
    browser.on('targetcreated', (t: Target) => {
      if (t.type() !== 'page') return;
      void t.page().then((p) => {
        const at = () => new Date().toISOString().slice(11, 23);
        p?.on('console', (m) => console.error(`${at()} [firefox] ${m.type()}: ${m.text()}`));
        p?.on('pageerror', (e) => console.error(`${at()} [firefox] pageerror: ${String(e)}`));
        p?.on('framenavigated', (f) => f === p.mainFrame() && console.error(`${at()} [firefox] navigated: ${f.url()}`));
      });
    });
  }
  return browser;
}

/**
 * One Firefox for a test file: launched with a tab before its tests (both told to `set`), closed
 * after them. After a failed test it is replaced by a fresh one: a test that timed out may leave
 * its tab wedged (an evaluate Firefox never answers), which would fail every test after it.
 */
export function firefoxForFile(set: (browser: Browser, page: Page) => void): void {
  let browser: Browser | undefined;
  const launch = async () => {
    browser = await launchFirefox();
    set(browser, await newPage(browser));
  };
  beforeAll(launch);
  afterEach(async ({ task }) => {
    if (task.result?.state !== 'fail') return;
    await closeFirefox(browser);
    await launch();
  });
  afterAll(async () => {
    await closeFirefox(browser);
  });
}

/** Closes Firefox, or kills it when it does not close within 10 s (a wedged content process). */
async function closeFirefox(browser: Browser | undefined): Promise<void> {
  if (!browser) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const closed = await Promise.race([
    browser.close().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 10_000))),
  ]);
  clearTimeout(timer);
  if (!closed) browser.process()?.kill('SIGKILL');
}

/**
 * A new tab whose `evaluate` fails at once when the page navigates under it. Firefox's BiDi
 * never answers a `script.callFunction` whose promise was pending when its document went away
 * (CDP rejects at once): a reload during a test (a Vite full reload) otherwise shows as an
 * evaluate that hangs until the test's timeout, with nothing in the page's log.
 */
export async function newPage(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  const evaluate = page.evaluate.bind(page) as (...args: unknown[]) => Promise<unknown>;
  const guarded = async (...args: unknown[]) => {
    let onNavigated: (frame: Frame) => void = () => undefined;
    const navigated = new Promise<never>((_, reject) => {
      onNavigated = (frame) => {
        if (frame !== page.mainFrame()) return;
        reject(
          new Error(`The page navigated (${frame.url()}) while an evaluate waited on it: a reload under the test`),
        );
      };
    });
    page.on('framenavigated', onNavigated);
    try {
      return await Promise.race([evaluate(...args), navigated]);
    } finally {
      page.off('framenavigated', onNavigated);
    }
  };
  page.evaluate = guarded as Page['evaluate'];
  return page;
}

/** Opens the harness page and waits until `window.outpost` is there. */
export async function openHarness(page: Page, path = '/'): Promise<void> {
  await page.goto(new URL(path, harnessUrl()).href);
  await page.waitForFunction(() => window.harnessReady === true, { timeout: 60_000 });
}

export async function reload(page: Page): Promise<void> {
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true, { timeout: 60_000 });
}

/** Model and fixture requests the harness server has seen since the last `clearRequests`. */
export async function serverRequests(): Promise<string[]> {
  return (await (await fetch(new URL('/__requests', harnessUrl()))).json()) as string[];
}

export async function clearRequests(): Promise<void> {
  await (await fetch(new URL('/__requests', harnessUrl()), { method: 'DELETE' })).text();
}

/** Clears the origin's IndexedDB so a test starts with an empty model store. */
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

/** Points the harness proxy (`/repo`) at the repository, with faults (e2e/harness/repo-proxy.ts). */
export async function proxy(repo: TestRepo, faults: Record<string, unknown> = {}): Promise<void> {
  const res = await fetch(new URL('/__repo', harnessUrl()), {
    method: 'POST',
    body: JSON.stringify({ target: repo.url, faults }),
  });
  if (!res.ok) throw new Error(`POST /__repo: ${res.status}`);
  await res.text();
}

/** Repository paths the page requested since the last {@link proxy}. */
export async function repoLog(): Promise<string[]> {
  return (await (await fetch(new URL('/__repo', harnessUrl()))).json()) as string[];
}

/** Starts a runtime on the page with the repository's root, recording update events. */
export async function start(page: Page, repo: TestRepo): Promise<void> {
  await page.evaluate(async (trustedRoot) => {
    const w = window as any;
    w.events = [];
    w.rt = await window.outpost.createRuntime({
      repository: { url: '/repo', trustedRoot },
      backends: ['wasm'],
      // A stalled load (onnxruntime's 2-thread session creation hangs now and then in Firefox)
      // is retried in a new worker after 20 s rather than the default 2 minutes, past the test timeout.
      supervision: { loadTimeout: '20s' },
      updates: { checkEvery: 0, activate: 'now' },
      now: () => w.fakeNow ?? Date.now(),
    });
    for (const e of ['available', 'downloaded', 'activated', 'rolled-back', 'stale-metadata', 'error']) {
      w.rt.updates.on(e, (d: any) =>
        w.events.push({
          type: e,
          version: d?.version,
          error: d?.error ? { name: d.error.name, code: d.error.code } : undefined,
        }),
      );
    }
  }, repo.trustedRoot);
}

/** Loads digits by name and runs one sample: version, source, predicted digit. */
export async function loadDigits(page: Page, input: number[]) {
  return page.evaluate(async (input) => {
    const w = window as any;
    w.model = await w.rt.load('digits');
    const out = await w.model.run({ x: { type: 'float32', data: Float32Array.from(input), dims: [1, 1, 28, 28] } });
    const logits = [...(out.logits.data as Float32Array)];
    return {
      version: w.model.version as string,
      source: w.model.source as string,
      digit: logits.indexOf(Math.max(...logits)),
    };
  }, input);
}

/** Runs one update check on the page: its result, the events it raised, the running version. */
export async function check(page: Page) {
  return page.evaluate(async () => {
    const w = window as any;
    w.events = [];
    const result = await w.rt.updates.check();
    return {
      plans: (result.plans as any[]).map((p) => ({ name: p.name, from: p.from, to: p.to })),
      refused: result.refused?.code as string | undefined,
      events: w.events as { type: string; version?: string; error?: { name: string; code: string } }[],
      version: w.model?.version as string | undefined,
    };
  });
}
