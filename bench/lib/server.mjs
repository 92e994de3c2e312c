import { createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';

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
  });
  await server.listen();
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}
