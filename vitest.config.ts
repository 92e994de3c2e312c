import { defineConfig } from 'vitest/config';

// Unit tests live beside the code; e2e (Playwright) lives in e2e/ and is not run by vitest.
export default defineConfig({
  test: {
    include: [
      'packages/**/*.test.ts',
      'models/**/*.test.ts',
      'examples/*/src/**/*.test.ts',
      'examples/shared/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
