import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from '@playwright/test';

const port = Number(process.env.HARNESS_PORT ?? 5199);
/** The examples (`npm start`: examples/vite.config.ts, each example under /<dir>/) are e2e targets too. */
export const demoPort = Number(process.env.DEMO_PORT ?? port + 1);
/**
 * The examples' repository, keys and golden file (examples/shared/demo-repo.ts): made new at each
 * start of the examples' server, so a spec can publish versions into it run after run.
 */
export const demoDir = join(tmpdir(), `outpost-demo-e2e-${demoPort}`);

/**
 * E2E in Debian's Chromium (never a downloaded browser). WebGPU is enabled: headless Chromium
 * then gets a SwiftShader (CPU) adapter, correct but slow, so specs pick backends explicitly.
 */
export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  timeout: 120_000,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--enable-unsafe-webgpu',
      ],
    },
  },
  webServer: [
    {
      command: `npx vite --config vite.config.ts`,
      env: { PORT: String(port) },
      url: `http://127.0.0.1:${port}/`,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      // Builds every example before it listens: give it time on two cores.
      command: `npx vite --config examples/vite.config.ts`,
      env: { PORT: String(demoPort), HOST: '127.0.0.1', OUTPOST_DEMO_DIR: demoDir, OUTPOST_DEMO_RESET: '1' },
      url: `http://127.0.0.1:${demoPort}/`,
      reuseExistingServer: false,
      timeout: 240_000,
    },
  ],
});
