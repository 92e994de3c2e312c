import type { TensorMap } from '@outpost/core';

/**
 * The buffers behind a set of tensors, each once, for postMessage's transfer list. Buffers that
 * cannot be transferred (SharedArrayBuffer) are left to be copied.
 */
export function tensorBuffers(tensors: TensorMap): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of Object.values(tensors)) {
    const buf = t.data.buffer;
    if (buf instanceof ArrayBuffer && buf.byteLength > 0) seen.add(buf);
  }
  return [...seen];
}
