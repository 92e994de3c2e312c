import type { Tensor, TensorMap, TensorType, ValueInfo } from '@outpost/core';

/**
 * Inputs made from a model's declared inputs, for probe and timing runs when the app gave none:
 * unknown dims are 1, values 0.5 (or 1 for integers).
 */
export function syntheticFeeds(inputs: readonly ValueInfo[]): TensorMap {
  const feeds: TensorMap = {};
  for (const input of inputs) {
    const dims = input.dims.map((d) => (typeof d === 'number' ? d : 1));
    const n = dims.reduce((a, b) => a * b, 1);
    feeds[input.name] = filled(input.type, n, dims);
  }
  return feeds;
}

function filled(type: TensorType, n: number, dims: number[]): Tensor {
  switch (type) {
    case 'float32':
      return { type, data: new Float32Array(n).fill(0.5), dims };
    case 'float64':
      return { type, data: new Float64Array(n).fill(0.5), dims };
    case 'int64':
      return { type, data: new BigInt64Array(n).fill(1n), dims };
    case 'uint64':
      return { type, data: new BigUint64Array(n).fill(1n), dims };
    case 'int32':
      return { type, data: new Int32Array(n).fill(1), dims };
    case 'uint32':
      return { type, data: new Uint32Array(n).fill(1), dims };
    case 'int16':
      return { type, data: new Int16Array(n).fill(1), dims };
    case 'int8':
      return { type, data: new Int8Array(n).fill(1), dims };
    case 'uint16':
    case 'float16':
      return { type, data: new Uint16Array(n), dims };
    case 'uint8':
    case 'bool':
      return { type, data: new Uint8Array(n).fill(1), dims };
  }
}

/** Copies feeds, since a run may not keep its inputs intact for the next one. */
export function copyFeeds(feeds: TensorMap): TensorMap {
  const out: TensorMap = {};
  for (const [k, t] of Object.entries(feeds)) out[k] = { ...t, data: t.data.slice() };
  return out;
}

/** Whether every float output is finite (a WebGPU session can return NaN where WASM does not). */
export function allFinite(outputs: TensorMap): string | null {
  for (const [name, t] of Object.entries(outputs)) {
    if (t.type !== 'float32' && t.type !== 'float64') continue;
    const d = t.data as Float32Array | Float64Array;
    for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i]!)) return name;
  }
  return null;
}
