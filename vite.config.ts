import { outpost } from '@outpost/vite';
import { defineConfig } from 'vite';
import { harnessFixtures } from './e2e/harness/fixtures.js';
import { repoProxy } from './e2e/harness/repo-proxy.js';

// The e2e harness: `npm run harness` serves e2e/harness on PORT (default 5173) with COOP/COEP.
export default defineConfig({
  root: 'e2e/harness',
  plugins: [outpost(), harnessFixtures(), repoProxy()],
  server: { port: Number(process.env.PORT ?? 5173), strictPort: true, host: '127.0.0.1' },
  preview: { port: Number(process.env.PORT ?? 4173), strictPort: true, host: '127.0.0.1' },
  build: { outDir: '../../dist/harness', emptyOutDir: true, target: 'es2022' },
});
