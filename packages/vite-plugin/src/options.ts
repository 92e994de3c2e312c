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
}

/** The value every {@link OutpostViteOptions} field takes when it is left out. */
export const outpostDefaults: Readonly<Required<OutpostViteOptions>> = Object.freeze({
  webgpu: true,
});
