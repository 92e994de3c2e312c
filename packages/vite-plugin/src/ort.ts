import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

/**
 * The folder, under the app's base, where the plugin serves (dev) and emits (build) the ONNX
 * Runtime files. It is fixed and unhashed so that the URL prefix can be compiled into the page
 * as `__OUTPOST_ORT_PATHS__` before the bundle exists.
 */
export const ORT_DIR = 'outpost-ort';

/**
 * Which files each extern (`onnxruntime-web-use-extern-wasm`) ORT entry loads from
 * `ort.env.wasm.wasmPaths`. Read off onnxruntime-web 1.30's dist: `ort.wasm.min.mjs` names only
 * the plain threaded glue, `ort.webgpu.min.mjs` only the asyncify one; each glue then loads the
 * `.wasm` of the same name. {@link checkOrtDist} re-checks this against the installed copy so a
 * renamed file fails the build instead of 404ing in the user's browser.
 */
const ORT_BUILDS = {
  wasm: {
    entry: 'ort.wasm.min.mjs',
    glue: 'ort-wasm-simd-threaded.mjs',
    wasm: 'ort-wasm-simd-threaded.wasm',
  },
  webgpu: {
    entry: 'ort.webgpu.min.mjs',
    glue: 'ort-wasm-simd-threaded.asyncify.mjs',
    wasm: 'ort-wasm-simd-threaded.asyncify.wasm',
  },
} as const;

type OrtBuild = (typeof ORT_BUILDS)[keyof typeof ORT_BUILDS];

function builds(webgpu: boolean): OrtBuild[] {
  return webgpu ? [ORT_BUILDS.wasm, ORT_BUILDS.webgpu] : [ORT_BUILDS.wasm];
}

/** File names (inside onnxruntime-web's `dist`) the app needs at `${base}outpost-ort/`. */
export function ortFiles(webgpu: boolean): string[] {
  return builds(webgpu).flatMap((b) => [b.glue, b.wasm]);
}

/**
 * Where Node would find package `name` when required from `fromDir`, following symlinks the
 * way Vite does (workspaces, pnpm). It walks Node's own lookup list rather than resolving an
 * entry point, so it works whatever the package's `exports` allows.
 */
export function findPackageDir(name: string, fromDir: string): string | undefined {
  const lookup = createRequire(join(fromDir, 'noop.js')).resolve.paths(name) ?? [];
  for (const dir of lookup) {
    const candidate = join(dir, name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
  }
  return undefined;
}

/**
 * The `dist` folder of the onnxruntime-web that the app's worker bundle will import. That import
 * sits in @outpost/backend-onnx, so its view wins over the app root's: with pnpm or a nested
 * install the two can differ, and glue from another version than the bundled JS breaks at load.
 */
export function locateOrtDist(root: string): string {
  const runtime = findPackageDir('@outpost/runtime', root);
  const backend =
    (runtime && findPackageDir('@outpost/backend-onnx', runtime)) ?? findPackageDir('@outpost/backend-onnx', root);
  const ort = (backend && findPackageDir('onnxruntime-web', backend)) ?? findPackageDir('onnxruntime-web', root);
  if (!ort) {
    throw new Error(
      `@outpost/vite: cannot find onnxruntime-web from ${root}. ` +
        'Install @outpost/runtime (which brings it) or onnxruntime-web in the app.',
    );
  }
  return join(ort, 'dist');
}

/** Fails early if the installed onnxruntime-web does not load the files this plugin ships. */
export function checkOrtDist(dist: string, webgpu: boolean): void {
  for (const build of builds(webgpu)) {
    const entry = join(dist, build.entry);
    const missing = [build.entry, build.glue, build.wasm].filter((f) => !existsSync(join(dist, f)));
    if (missing.length > 0) {
      throw new Error(`@outpost/vite: ${dist} lacks ${missing.join(', ')}; is onnxruntime-web >= 1.30?`);
    }
    if (!readFileSync(entry, 'utf8').includes(build.glue)) {
      throw new Error(
        `@outpost/vite: ${entry} no longer loads ${build.glue}; ` +
          'this onnxruntime-web version is not supported by this @outpost/vite.',
      );
    }
  }
}
