// What the harness page puts on `window`, for the page script and for specs that evaluate in it.
interface Window {
  outpost: typeof import('@outpost/runtime');
  /** onnxruntime-web on the page thread, the peer Outpost is compared with. */
  loadOrt: (build?: 'wasm' | 'webgpu') => Promise<typeof import('onnxruntime-web')>;
  harnessReady: boolean;
}
