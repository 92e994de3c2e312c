// What the harness page puts on `window`, for the page script and for specs that evaluate in it.
interface Window {
  outpost: typeof import('@outpost/runtime');
  /** onnxruntime-web on the page thread, the peer Outpost is compared with. */
  loadOrt: (build?: 'wasm' | 'webgpu') => Promise<typeof import('onnxruntime-web')>;
  /** TF.js (core and converter) called directly on the page, on `backend`, for TF.js parity. */
  loadTfjs: (backend?: 'wasm' | 'webgpu') => Promise<{
    tf: typeof import('@tensorflow/tfjs-core');
    loadGraphModel: typeof import('@tensorflow/tfjs-converter').loadGraphModel;
    loadLayersModel: typeof import('@tensorflow/tfjs-layers').loadLayersModel;
  }>;
  /** `@outpost/runtime/tfjs`, imported on demand. */
  loadOutpostTfjs: () => Promise<typeof import('@outpost/runtime/tfjs')>;
  harnessReady: boolean;
}
