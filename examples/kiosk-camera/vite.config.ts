import { outpost } from '@outpost/vite';
import { defineConfig } from 'vite';
import { demoRepo } from '../shared/demo-repo.js';

// `outpost()` is all the Outpost configuration the app needs; `demoRepo()` is the demo's own:
// it makes and serves a signed model repository at /repo/ (see ../shared/demo-repo.ts).
export default defineConfig({
  plugins: [outpost(), demoRepo()],
  server: { port: Number(process.env.PORT ?? 5173), host: process.env.HOST ?? 'localhost' },
});
