import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { findPackageDir } from './ort.js';

/**
 * The `.wasm` files tfjs-backend-wasm picks from at start-up (plain, SIMD, threaded SIMD), named
 * as its `setWasmPaths` prefix expects. About 1.2 MB in all. They are served beside ONNX
 * Runtime's, at the same prefix, since the worker hands every engine one `wasmPaths`.
 */
export const TFJS_WASM_FILES = [
  'tfjs-backend-wasm.wasm',
  'tfjs-backend-wasm-simd.wasm',
  'tfjs-backend-wasm-threaded-simd.wasm',
] as const;

/**
 * The TF.js packages the `@outpost/runtime/tfjs` worker imports, which Vite must pre-bundle in
 * dev: tfjs-core pulls in CommonJS (`long`, `seedrandom`), and a dependency found only once the
 * worker imports it would make Vite re-optimize and reload the page.
 */
export const TFJS_PACKAGES = [
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-converter',
  '@tensorflow/tfjs-layers',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-webgpu',
] as const;

/**
 * The `dist` folder of the tfjs-backend-wasm that `@outpost/backend-tfjs` imports, or
 * `undefined` when the app does not have `@outpost/backend-tfjs` (an ONNX-only app), in which
 * case nothing TF.js is served, emitted or pre-bundled.
 */
export function locateTfjsWasmDist(root: string): string | undefined {
  const runtime = findPackageDir('@outpost/runtime', root);
  const backend =
    (runtime && findPackageDir('@outpost/backend-tfjs', runtime)) ?? findPackageDir('@outpost/backend-tfjs', root);
  if (!backend) return undefined;
  const wasm =
    findPackageDir('@tensorflow/tfjs-backend-wasm', backend) ?? findPackageDir('@tensorflow/tfjs-backend-wasm', root);
  if (!wasm) {
    throw new Error(
      `@outpost/vite: @outpost/backend-tfjs is installed but @tensorflow/tfjs-backend-wasm is not (from ${root}). ` +
        'Install the TF.js packages @outpost/backend-tfjs lists as peer dependencies.',
    );
  }
  const dist = join(wasm, 'dist');
  const missing = TFJS_WASM_FILES.filter((f) => !existsSync(join(dist, f)));
  if (missing.length > 0) {
    throw new Error(`@outpost/vite: ${dist} lacks ${missing.join(', ')}; is @tensorflow/tfjs-backend-wasm >= 4?`);
  }
  return dist;
}

/** The TF.js packages Vite can resolve from `root`, to pre-bundle. */
export function installedTfjsPackages(root: string): string[] {
  return TFJS_PACKAGES.filter((name) => findPackageDir(name, root) !== undefined);
}
