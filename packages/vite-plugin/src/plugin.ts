import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import { defaultClientConditions } from 'vite';
import type { Connect, Plugin, ResolvedConfig, ViteDevServer } from 'vite';
import { hostingAdvice, missingIsolationHeaders } from './headers.js';
import { outpostDefaults } from './options.js';
import type { OutpostViteOptions } from './options.js';
import { checkOrtDist, locateOrtDist, ORT_DIR, ortFiles } from './ort.js';
import { installedTfjsPackages, locateTfjsWasmDist, TFJS_WASM_FILES } from './tfjs.js';

/**
 * Makes onnxruntime-web resolve to its `ort.*.min.mjs` builds, which load the glue and `.wasm`
 * from `ort.env.wasm.wasmPaths`, instead of the default `*.bundle.min.mjs`, which embed the
 * glue and reach the `.wasm` through `new URL(..., import.meta.url)`: Vite would hash and move
 * that file, and in dev serve it from a path ORT's pthread workers cannot rebuild.
 */
const EXTERN_WASM_CONDITION = 'onnxruntime-web-use-extern-wasm';

/**
 * The pre-bundler would rewrite the runtime's `new URL('../worker/index.js', import.meta.url)`
 * relative to `.vite/deps` (a worker that 404s) and would inline ORT's dynamic imports.
 */
const NOT_PREBUNDLED = ['onnxruntime-web', '@outpost/runtime', '@outpost/backend-onnx', '@outpost/backend-tfjs'];

const CJS_VIA_RUNTIME = '@outpost/runtime > @outpost/protocol > @tufjs/canonical-json';

const DEFINE_NAME = '__OUTPOST_ORT_PATHS__';

/** A module of `@outpost/runtime/tfjs`'s page entry, installed or in this workspace. */
const TFJS_ENTRY = /\/runtime\/(?:dist|src)\/tfjs\//;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.wasm': 'application/wasm',
  '.mjs': 'text/javascript',
};

/**
 * The `base` Vite will resolve `rawBase` to, mirrored from its `resolveConfig` because `define`
 * has to be returned from the `config` hook, before Vite resolves it. `configResolved` checks
 * that the two agree.
 */
function publicBase(rawBase: string | undefined, isBuild: boolean, isSsrBuild: boolean): string {
  let base: string;
  if (rawBase === undefined) base = '/';
  else if (rawBase === '' || rawBase === './') base = isBuild && !isSsrBuild ? './' : '/';
  else if (rawBase.startsWith('.')) base = '/';
  else if (isBuild && /^(?:[a-z]+:)?\/\//i.test(rawBase)) base = rawBase;
  else {
    base = new URL(rawBase, 'http://vite.dev').pathname;
    if (!base.startsWith('/')) base = `/${base}`;
  }
  return base.endsWith('/') ? base : `${base}/`;
}

/**
 * Serves `${base}outpost-ort/<file>` from onnxruntime-web's `dist` (and tfjs-backend-wasm's) as
 * is: Vite's own pipeline would transform the glue (it uses `import.meta.url` to start its
 * pthread workers) and does not send `.wasm` files with the type `WebAssembly.instantiateStreaming`
 * requires. `files` maps each served name to the file on disk.
 */
function ortFileMiddleware(server: ViteDevServer, files: ReadonlyMap<string, string>): Connect.NextHandleFunction {
  return (req, res, next) => {
    const prefix = `${server.config.base}${ORT_DIR}/`;
    const path = req.url?.split('?', 1)[0];
    if (path === undefined || !path.startsWith(prefix) || (req.method !== 'GET' && req.method !== 'HEAD')) {
      next();
      return;
    }
    // Our responses bypass Vite's, so they get `server.headers` (isolation included) here.
    for (const [name, value] of Object.entries(server.config.server.headers ?? {})) {
      if (value !== undefined) res.setHeader(name, value);
    }
    const name = path.slice(prefix.length);
    // Only the listed names: the prefix must not become a window onto node_modules, and a file
    // production will not have (asyncify with `webgpu: false`) must be missing in dev too.
    const file = files.get(name);
    if (file === undefined) {
      res.statusCode = 404;
      res.end();
      return;
    }
    stat(file).then(
      (stats) => {
        const etag = `W/"${stats.size}-${stats.mtimeMs}"`;
        res.setHeader('Content-Type', CONTENT_TYPES[extname(name)] ?? 'application/octet-stream');
        res.setHeader('Cache-Control', 'no-cache');
        res.setHeader('ETag', etag);
        if (req.headers['if-none-match'] === etag) {
          res.statusCode = 304;
          res.end();
          return;
        }
        res.setHeader('Content-Length', stats.size);
        if (req.method === 'HEAD') {
          res.end();
          return;
        }
        pipeline(createReadStream(file), res, (err) => {
          // The status line is gone by now; pipeline has already aborted the response.
          if (err) server.config.logger.error(`outpost: failed to serve ${file}: ${err.message}`);
        });
      },
      (err: unknown) => next(err),
    );
  };
}

/**
 * The Vite plugin that makes `@outpost/runtime` work in `vite` dev, `vite build` and
 * `vite preview`: ONNX Runtime resolves to its build that loads WebAssembly from a URL prefix,
 * the plugin serves (dev) and emits (build) those files at `${base}outpost-ort/` and compiles
 * that prefix into the page as `__OUTPOST_ORT_PATHS__`, workers are ES modules, and the dev and
 * preview servers send the headers that make the page cross-origin isolated.
 *
 * @example
 * ```ts
 * // vite.config.ts
 * import { defineConfig } from 'vite';
 * import { outpost } from '@outpost/vite';
 * export default defineConfig({ plugins: [outpost()] });
 * ```
 */
export function outpost(options: OutpostViteOptions = {}): Plugin {
  const webgpu = options.webgpu ?? outpostDefaults.webgpu;
  let ortPrefix = '';
  let config: ResolvedConfig | undefined;
  /** Served name → file on disk, for everything at `${base}outpost-ort/`. */
  const files = new Map<string, string>();
  let advised = false;

  return {
    name: 'outpost',

    config(user, env) {
      ortPrefix = `${publicBase(user.base, env.command === 'build', env.isSsrBuild === true)}${ORT_DIR}/`;
      const serverHeaders = user.server?.headers;
      const root = resolve(user.root ?? process.cwd());
      const tfjs = options.tfjs ?? outpostDefaults.tfjs;
      return {
        optimizeDeps: {
          exclude: NOT_PREBUNDLED,
          include: [
            // The runtime is not pre-bundled (its worker and wasm URLs must stay as they are),
            // so its one CommonJS dependency, reached through the repository format package,
            // must be: found late, it would make the dev server reload the page mid-session.
            CJS_VIA_RUNTIME,
            ...(tfjs !== false && locateTfjsWasmDist(root) ? installedTfjsPackages(root) : []),
          ],
        },
        // ORT's dynamic imports and the runtime's code splitting need module workers.
        worker: { format: 'es' },
        define: { [DEFINE_NAME]: JSON.stringify(ortPrefix) },
        server: { headers: missingIsolationHeaders(serverHeaders) },
        // Vite falls back to server.headers only while preview.headers is unset, so keep the
        // user's server headers in preview once we set it.
        preview: {
          headers: user.preview?.headers
            ? missingIsolationHeaders(user.preview.headers)
            : { ...serverHeaders, ...missingIsolationHeaders(serverHeaders) },
        },
      };
    },

    // Per environment so SSR keeps its own conditions; Vite bundles workers with the client
    // environment's resolve options, so the worker bundle gets the condition from here too.
    configEnvironment(name, environment) {
      if ((environment.consumer ?? (name === 'client' ? 'client' : 'server')) !== 'client') return;
      const current = environment.resolve?.conditions;
      if (current?.includes(EXTERN_WASM_CONDITION)) return;
      // Setting conditions replaces Vite's defaults (Vite 6+), so restate them unless the
      // user already chose a list, which the returned one is appended to.
      return {
        resolve: {
          conditions: current ? [EXTERN_WASM_CONDITION] : [...defaultClientConditions, EXTERN_WASM_CONDITION],
        },
      };
    },

    configResolved(resolved) {
      config = resolved;
      const actual = `${resolved.base}${ORT_DIR}/`;
      if (actual !== ortPrefix) {
        resolved.logger.warn(
          `outpost: ${DEFINE_NAME} is ${JSON.stringify(ortPrefix)} but base resolved to ` +
            `${JSON.stringify(resolved.base)}; a plugin after outpost() changed base. Put outpost() last.`,
        );
      }
      const ortDist = locateOrtDist(resolved.root);
      checkOrtDist(ortDist, webgpu);
      for (const name of ortFiles(webgpu)) files.set(name, join(ortDist, name));
      const tfjs = options.tfjs ?? outpostDefaults.tfjs;
      const tfjsDist = tfjs === false ? undefined : locateTfjsWasmDist(resolved.root);
      if (tfjs === true && !tfjsDist) {
        throw new Error(
          `@outpost/vite: tfjs: true, but @outpost/backend-tfjs is not installed (from ${resolved.root})`,
        );
      }
      if (tfjsDist) for (const name of TFJS_WASM_FILES) files.set(name, join(tfjsDist, name));
    },

    configureServer(server) {
      // Registered directly, not returned, so it runs before Vite's transform middleware.
      server.middlewares.use(ortFileMiddleware(server, files));
    },

    async generateBundle() {
      if (this.environment.config.consumer !== 'client') return;
      // Left to the default, TF.js's files ship only when the page imports the tfjs entry of
      // @outpost/runtime: an ONNX-only app in a workspace that happens to have TF.js installed
      // must not carry them.
      const tfjsUsed =
        options.tfjs === true || [...this.getModuleIds()].some((id) => TFJS_ENTRY.test(id.replaceAll('\\', '/')));
      for (const [name, file] of files) {
        if (!tfjsUsed && (TFJS_WASM_FILES as readonly string[]).includes(name)) continue;
        this.emitFile({
          type: 'asset',
          fileName: `${ORT_DIR}/${name}`,
          source: await readFile(file),
        });
      }
    },

    // closeBundle, not writeBundle, so the advice follows Vite's file size table. Vite also
    // closes bundles when the dev server stops, hence the command check.
    closeBundle(error) {
      if (error || config?.command !== 'build' || this.environment.config.consumer !== 'client' || advised) {
        return;
      }
      advised = true;
      config.logger.info(`\n${hostingAdvice(`${ORT_DIR}/`)}`);
    },
  };
}
