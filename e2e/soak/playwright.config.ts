import { resolve } from 'node:path';
import { defineConfig } from '@playwright/test';
import base from '../../playwright.config.js';
import { EAGER_MEASURE_MEMORY } from '../support/soak.js';

const port = Number(process.env.HARNESS_PORT ?? 5199);

/**
 * `npm run soak` (RELIABILITY R7): the long soak, on the harness page alone. Its spec is named
 * `*.soak.ts` so that `npm run test:e2e` (every `*.spec.ts` under e2e/) never picks it up.
 */
export default defineConfig({
  testDir: '.',
  testMatch: '*.soak.ts',
  timeout: 30 * 60_000,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: {
      ...base.use?.launchOptions,
      args: [...(base.use?.launchOptions?.args ?? []), EAGER_MEASURE_MEMORY],
    },
  },
  webServer: {
    command: `npx vite --config vite.config.ts`,
    cwd: resolve(import.meta.dirname, '../..'),
    env: { PORT: String(port) },
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 60_000,
  },
});
