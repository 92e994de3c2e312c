import { resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// The Firefox ESR suite (`npm run test:firefox`): the store, runtime and update scenarios of the
// Playwright specs, on the same harness page, driven by puppeteer-core over WebDriver BiDi
// (Playwright cannot drive Debian's Firefox). One browser per file, one file at a time.
export default defineConfig({
  root: resolve(import.meta.dirname, '../..'),
  test: {
    include: ['e2e/firefox/**/*.test.ts'],
    globalSetup: ['e2e/firefox/server.ts'],
    environment: 'node',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
