import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import { CACHE_DIR, CACHE_ROUTE } from './int8-models.mjs';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A port nobody listens on right now (the OS picks it; we release it for Vite at once). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/**
 * Serves bench/.cache/ (the INT8 section's generated models, ONNX and TF.js) at CACHE_ROUTE,
 * with the headers the harness gives its own models, so the e2e fixtures need no route for
 * bench-only files.
 */
function benchCache() {
  return {
    name: 'outpost-bench-cache',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '').split('?')[0];
        if (!path.startsWith(CACHE_ROUTE)) return next();
        const name = path.slice(CACHE_ROUTE.length);
        const file = `${CACHE_DIR}${name}`;
        // ONNX models, and TF.js models (model.json and its shards, by relative path).
        if (!/^[\w-][\w.-]*\.(onnx|json|bin)$/.test(name) || !existsSync(file)) {
          res.statusCode = 404;
          res.end('not found');
          return;
        }
        res.setHeader('cross-origin-resource-policy', 'same-origin');
        res.setHeader('content-type', name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.setHeader('content-length', String(statSync(file).size));
        createReadStream(file).pipe(res);
      });
    },
  };
}

/**
 * Starts the e2e harness (vite.config.ts: COOP/COEP, the model fixtures, ORT's files) on a free
 * port, the same server `npm run harness` runs, so the figures describe what the specs test.
 * @returns {Promise<{ url: string, close(): Promise<void> }>}
 */
export async function startHarness() {
  const port = await freePort();
  const server = await createServer({
    configFile: `${repoRoot}vite.config.ts`,
    root: `${repoRoot}e2e/harness`,
    // No HMR and no watcher: files other engineers save mid-run must not reload the page.
    server: { port, strictPort: true, host: '127.0.0.1', hmr: false, watch: null },
    logLevel: 'warn',
    clearScreen: false,
    // Merged with vite.config.ts's plugins.
    plugins: [benchCache()],
  });
  await server.listen();
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}
