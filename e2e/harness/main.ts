// The harness page: exposes the runtime exactly as an app imports it, so Playwright specs,
// benchmarks and anyone's own browser scripts can drive it.
import * as outpost from '@outpost/runtime';

declare global {
  interface Window {
    outpost: typeof outpost;
    /** onnxruntime-web on the page thread, the peer Outpost is compared with. */
    loadOrt: (build?: 'wasm' | 'webgpu') => Promise<typeof import('onnxruntime-web')>;
    harnessReady: boolean;
  }
}

declare const __OUTPOST_ORT_PATHS__: string;

window.outpost = outpost;
window.loadOrt = async (build = 'wasm') => {
  const ort = build === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm');
  ort.env.wasm.wasmPaths = new URL(__OUTPOST_ORT_PATHS__, location.href).href;
  return ort;
};
window.harnessReady = true;
document.getElementById('status')!.textContent = `ready (crossOriginIsolated: ${String(crossOriginIsolated)})`;
