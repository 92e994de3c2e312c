// The harness page: exposes the runtime exactly as an app imports it, so Playwright specs,
// benchmarks and anyone's own browser scripts can drive it.
import * as outpost from '@outpost/runtime';

declare const __OUTPOST_ORT_PATHS__: string;

window.outpost = outpost;
window.loadOrt = async (build = 'wasm') => {
  const ort = build === 'webgpu' ? await import('onnxruntime-web/webgpu') : await import('onnxruntime-web/wasm');
  ort.env.wasm.wasmPaths = new URL(__OUTPOST_ORT_PATHS__, location.href).href;
  return ort;
};
// TF.js called directly on the page, the peer of `@outpost/runtime/tfjs`, imported only when a
// spec asks so that the harness's own bundle stays ONNX-only. It runs on one WASM thread, like
// the Outpost engine: its threads start from blob: URLs, which the harness's strict CSP forbids.
window.loadTfjs = async (backend = 'wasm') => {
  const [tf, converter, layers] = await Promise.all([
    import('@tensorflow/tfjs-core'),
    import('@tensorflow/tfjs-converter'),
    import('@tensorflow/tfjs-layers'),
  ]);
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    wasm.setWasmPaths(new URL(__OUTPOST_ORT_PATHS__, location.href).href);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  } else {
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js ${backend} backend did not start`);
  return { tf, loadGraphModel: converter.loadGraphModel, loadLayersModel: layers.loadLayersModel };
};
window.loadOutpostTfjs = () => import('@outpost/runtime/tfjs');
// ?sw=1 registers a service worker that keeps what the page loads, so a fresh page can start
// with the network gone (the offline spec).
if (new URLSearchParams(location.search).has('sw')) {
  await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
}

window.harnessReady = true;
document.getElementById('status')!.textContent = `ready (crossOriginIsolated: ${String(crossOriginIsolated)})`;
