import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import sirv from 'sirv';
import { build, type Connect, type Plugin, type PreviewServer, type ViteDevServer } from 'vite';
import { demoRepoPaths } from './demo-repo.js';

/**
 * The examples `npm start` serves side by side, each a Vite app of its own in `examples/<dir>/`
 * (with its own `vite.config.ts`, so `npm run dev -w @outpost/example-<dir>` works alone too).
 */
export const EXAMPLES = [
  { dir: 'web-app', title: 'Web app', blurb: 'digits and PP-OCR text detection in an ordinary Vite app' },
  { dir: 'kiosk-camera', title: 'Kiosk camera', blurb: 'a full-screen camera dashboard that runs for weeks' },
  { dir: 'offline-pwa', title: 'Offline PWA', blurb: 'an installable app that works with the network off' },
] as const;

const here = import.meta.dirname;

/**
 * Where the host builds an example: beside the demo repository (`OUTPOST_DEMO_DIR`), not in the
 * example's own `dist/`, because a build holds that repository's trusted root. Two hosts at once
 * (`npm start` and an e2e run, or two e2e runs) each serve their own builds rather than
 * overwriting each other's with a root their repository does not match.
 */
export function exampleBuildDir(dir: string, demoDir = demoRepoPaths().dir): string {
  return join(demoDir, 'builds', dir);
}

/**
 * Vite plugin of the examples' host (examples/vite.config.ts): when its server starts, builds
 * every example with its own config under `/<dir>/` (production builds: the PWA's service
 * worker and precache manifest exist only in a build) and serves each build there, with the
 * host's headers (cross-origin isolation from `outpost()`). The demo repository, its telemetry
 * and the fleet dashboard are served once, at `/repo/`, by the host's `demoRepo()`.
 */
export function examplesHost(): Plugin {
  // Examples not written yet are left out (each one is a folder with its vite.config.ts);
  // OUTPOST_EXAMPLES=web-app,offline-pwa builds only those (quicker while working on one).
  const only = process.env.OUTPOST_EXAMPLES?.split(',').map((d) => d.trim());
  const wanted = EXAMPLES.filter(
    (e) => existsSync(join(here, '..', e.dir, 'vite.config.ts')) && (!only || only.includes(e.dir)),
  );

  async function mount(server: ViteDevServer | PreviewServer, headers: Record<string, string | string[] | number>) {
    // The host's demoRepo() made (or reset) the repository already: the builds only read its
    // trusted root, and must not start it over.
    delete process.env.OUTPOST_DEMO_RESET;
    // Production builds, as an app ships them: the dev server set NODE_ENV=development for this
    // process, which a build would otherwise keep (import.meta.env.DEV true, no minification of
    // what keys on it). Restored once the builds are done.
    const nodeEnv = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      await buildAll(server, headers);
    } finally {
      process.env.NODE_ENV = nodeEnv;
    }
  }

  async function buildAll(server: ViteDevServer | PreviewServer, headers: Record<string, string | string[] | number>) {
    for (const e of wanted) {
      const root = join(here, '..', e.dir);
      await build({
        root,
        configFile: join(root, 'vite.config.ts'),
        base: `/${e.dir}/`,
        logLevel: 'warn',
        build: { outDir: exampleBuildDir(e.dir), emptyOutDir: true },
      });
      const files = sirv(exampleBuildDir(e.dir), {
        dev: true, // no in-memory cache: a rebuild is seen at once
        setHeaders: (res) => {
          for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
        },
      });
      const handle: Connect.NextHandleFunction = (req: IncomingMessage, res: ServerResponse, next) =>
        files(req, res, next);
      server.middlewares.use(`/${e.dir}`, handle);
      server.config.logger.info(`  example ${e.dir} built and served at /${e.dir}/`);
    }
  }

  return {
    name: 'outpost-examples-host',
    async configureServer(server) {
      await mount(server, (server.config.server.headers ?? {}) as Record<string, string>);
    },
    async configurePreviewServer(server) {
      await mount(server, (server.config.preview.headers ?? {}) as Record<string, string>);
    },
  };
}
