import { outpost } from '@outpost/vite';
import { defineConfig } from 'vite';
import { STRICT_CSP } from './shared/csp.js';
import { demoRepo } from './shared/demo-repo.js';
import { examplesHost } from './shared/host.js';

// `npm start`: one server for everything. The landing page (index.html) links the three
// examples, each built and served under /<dir>/ by examplesHost(), and the fleet dashboard at
// /repo/, where demoRepo() serves the signed model repository and takes the pages' telemetry.
export default defineConfig({
  root: import.meta.dirname,
  // Its own dependency cache: by default it would share node_modules/.vite with the e2e harness
  // (vite.config.ts at the root), and each server re-optimizing would make the other's optimized
  // modules stale mid-test (a worker then fails to load: "script error").
  cacheDir: '../node_modules/.vite-examples',
  plugins: [outpost(), demoRepo(), examplesHost()],
  server: {
    port: Number(process.env.PORT ?? 5173),
    host: process.env.HOST ?? 'localhost',
    strictPort: true,
    // Every response under the README's strict policy (the e2e harness's too), so the examples
    // show that an app works under it, and their e2e specs fail on anything it refuses. The
    // examples' builds and the repository at /repo/ (the dashboard too) get the server's headers.
    headers: { 'Content-Security-Policy': STRICT_CSP },
    // An example's own `vite build` output is not served here: the host's builds of the examples
    // live in the demo folder, which demoRepo() keeps unwatched.
    watch: { ignored: ['**/dist/**'] },
    // The demo folder (examples/.demo/) sits under this server's root: its keys, its telemetry
    // database and its builds are never files this server hands out (the repository is served at
    // /repo/ and the builds under /<dir>/ by the plugins). Vite's own defaults are kept.
    fs: {
      deny: ['.env', '.env.*', '*.{crt,pem,key,p12,pfx,cer,der}', '.npmrc', '.yarnrc.yml', '**/.git/**', '**/.demo/**'],
    },
  },
  build: { outDir: 'dist', emptyOutDir: true },
});
