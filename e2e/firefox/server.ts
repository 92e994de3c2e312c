import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createServer } from 'vite';
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
  const server = await createServer({
    configFile: resolve(root, 'vite.config.ts'),
    // Its own dependency cache, so a Playwright harness optimizing at the same time never races it.
    cacheDir: resolve(root, 'node_modules/.vite-firefox'),
    server: {
      port: Number(process.env.FIREFOX_HARNESS_PORT ?? 0),
      strictPort: true,
      host: '127.0.0.1',
      // The worker's imports (onnxruntime-web, comlink, idb) are otherwise found only when a test
      // first starts a worker; Vite then re-optimizes and reloads the page under the next test.
      // No file watching: a page never reloads under a test because someone rebuilt dist/ in the
      // same tree. (The HMR socket stays: without it Vite's client polls and reloads the page.)
      watch: null,
      warmup: { clientFiles: ['./main.ts', resolve(root, 'packages/runtime/dist/worker/index.js')] },
    },
    logLevel: 'warn',
  });
  await server.listen();
  const { port } = server.httpServer!.address() as AddressInfo;
  project.provide('harnessUrl', `http://127.0.0.1:${port}`);
  return () => server.close();
}
