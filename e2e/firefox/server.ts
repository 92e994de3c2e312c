import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createServer, loadConfigFromFile, mergeConfig, type UserConfig } from 'vite';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The harness page's origin, e.g. `http://127.0.0.1:5198`. */
    harnessUrl: string;
  }
}

/**
 * Starts the harness (vite.config.ts, the server the Playwright specs use) for the Firefox
 * suite: on FIREFOX_HARNESS_PORT, else on a free port, so it never collides with a Playwright
 * run or another checkout's suite.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = resolve(import.meta.dirname, '../..');
  const loaded = await loadConfigFromFile(
    { command: 'serve', mode: 'development' },
    resolve(root, 'vite.config.ts'),
    root,
    'warn',
  );
  if (!loaded) throw new Error('vite.config.ts: no config');
  const config = mergeConfig(loaded.config, {
    // Its own dependency cache, so a Playwright harness optimizing at the same time never races it.
    cacheDir: resolve(root, 'node_modules/.vite-firefox'),
    server: {
      port: Number(process.env.FIREFOX_HARNESS_PORT ?? 0),
      strictPort: true,
      host: '127.0.0.1',
      // The worker's imports (onnxruntime-web, comlink, idb) are otherwise found only when a test
      // first starts a worker; Vite then re-optimizes and reloads the page under the next test.
      warmup: { clientFiles: ['./main.ts', resolve(root, 'packages/runtime/dist/worker/index.js')] },
    },
    logLevel: 'warn',
  } satisfies UserConfig) as UserConfig;
  // No file watching, so a page never reloads under a test because someone rebuilt dist/ in the
  // same tree: Vite sends a full reload for any served file that changes, and Firefox's BiDi
  // never answers an evaluate whose document went away (the test waits for its timeout).
  // Set after merging: mergeConfig skips null values, so `watch: null` passed to createServer
  // beside the config file is dropped and the watcher stays on. (The HMR socket stays: without
  // it Vite's client polls and reloads the page.)
  config.server = { ...config.server, watch: null };
  const server = await createServer({ ...config, configFile: false });
  await server.listen();
  const { port } = server.httpServer!.address() as AddressInfo;
  project.provide('harnessUrl', `http://127.0.0.1:${port}`);
  return () => server.close();
}
