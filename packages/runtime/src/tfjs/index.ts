import { createRuntime as createDefaultRuntime, type Runtime, type RuntimeOptions } from '../main/index.js';

export type { Runtime, RuntimeOptions };

function tfjsWorker(): Worker {
  // A literal `new Worker(new URL(...))` so that bundlers find and bundle this worker entry.
  return new Worker(new URL('../worker/index-tfjs.js', import.meta.url), { type: 'module', name: 'outpost' });
}

/**
 * Starts the runtime with a worker that runs TF.js graph and layers models (`model.json` plus
 * weight shards) as well as ONNX ones. It is `@outpost/runtime`'s `createRuntime` with another
 * worker: the same options, the same `Runtime`. Apps that only use ONNX import
 * `@outpost/runtime` instead and never bundle TF.js.
 *
 * Needs `@outpost/backend-tfjs` and its TF.js packages (`@tensorflow/tfjs-core`,
 * `-converter`, `-layers`, `-backend-cpu`, `-backend-wasm`, and `-backend-webgpu` for WebGPU).
 *
 * @example
 * ```ts
 * import { createRuntime } from '@outpost/runtime/tfjs';
 * const rt = await createRuntime();
 * const model = await rt.load({ name: 'movenet', version: '4', url: '/models/movenet/model.json', format: 'tfjs' });
 * ```
 */
export function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  return createDefaultRuntime({ ...options, createWorker: options.createWorker ?? tfjsWorker });
}
