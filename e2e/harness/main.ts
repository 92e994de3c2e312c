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
// ?sw=1 registers a service worker that keeps what the page loads, so a fresh page can start
// with the network gone (the offline spec).
if (new URLSearchParams(location.search).has('sw')) {
  await navigator.serviceWorker.register('/sw.js');
  await navigator.serviceWorker.ready;
}

window.harnessReady = true;
document.getElementById('status')!.textContent = `ready (crossOriginIsolated: ${String(crossOriginIsolated)})`;
