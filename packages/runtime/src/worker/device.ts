import type { BackendId } from '@outpost/core';

/** What the worker reads of a WebGPU adapter. */
export interface GpuAdapterLike {
  features: Iterable<string>;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string };
}

/** Whether the device has a backend at all, whatever engine would use it. */
export interface Device {
  /** `null` when the device has `backend`, else why not. */
  missing(backend: BackendId): Promise<string | null>;
  /** The WebGPU adapter, or null. */
  adapter(): Promise<GpuAdapterLike | null>;
}

/** The worker's own device: WebAssembly, and WebGPU when `navigator.gpu` gives an adapter. */
export function browserDevice(): Device {
  let adapter: Promise<{ adapter: GpuAdapterLike | null; reason: string | null }> | undefined;
  const requestAdapter = () => {
    adapter ??= (async () => {
      const gpu = (globalThis.navigator as { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } } | undefined)
        ?.gpu;
      if (!gpu) return { adapter: null, reason: 'WebGPU is not available in this browser (navigator.gpu is missing)' };
      try {
        const a = await gpu.requestAdapter();
        return { adapter: a, reason: a ? null : 'no WebGPU adapter (requestAdapter() returned null)' };
      } catch (err) {
        return {
          adapter: null,
          reason: `requestAdapter() failed: ${err instanceof Error ? err.message : String(err)}`,
        };
      }
    })();
    return adapter;
  };
  return {
    async missing(backend) {
      if (backend === 'wasm') return typeof WebAssembly === 'object' ? null : 'WebAssembly is not available';
      return (await requestAdapter()).reason;
    },
    async adapter() {
      return (await requestAdapter()).adapter;
    },
  };
}
