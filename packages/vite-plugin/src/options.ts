/** Options of the {@link outpost} Vite plugin. */
export interface OutpostViteOptions {
  /**
   * Also serve (dev) and emit (build) the ONNX Runtime files its WebGPU build loads
   * (`ort-wasm-simd-threaded.asyncify.mjs` and `.wasm`, about 27 MB). Set it to `false` only
   * for an app that never tries the WebGPU backend (`createRuntime({ backends: ['wasm'] })`), to
   * keep them out of `dist`. Dev leaves them out too, so a WebGPU attempt fails the same way
   * (a 404) in dev as in production rather than only after deploying.
   *
   * @defaultValue `true`
   */
  webgpu?: boolean;
  /**
   * Serve (dev) and emit (build) tfjs-backend-wasm's three `.wasm` files (about 1.2 MB) beside
   * ONNX Runtime's, and pre-bundle the TF.js packages in dev, for apps that use
   * `@outpost/runtime/tfjs`. Left unset, dev serves them whenever `@outpost/backend-tfjs` is
   * installed and a build emits them only when the page imports `@outpost/runtime/tfjs`; `true`
   * always emits them and makes a missing `@outpost/backend-tfjs` an error; `false` leaves TF.js
   * out even when installed.
   *
   * @defaultValue `undefined` (decided as above)
   */
  tfjs?: boolean;
}

/** The value every {@link OutpostViteOptions} field takes when it is left out. */
export const outpostDefaults: Readonly<OutpostViteOptions & { webgpu: boolean }> = Object.freeze({
  webgpu: true,
  tfjs: undefined,
});
