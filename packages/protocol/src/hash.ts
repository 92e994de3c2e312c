import { toHex } from './encoding.js';

/** Hex SHA-256 of the bytes (WebCrypto: page, worker and Node alike). */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)));
}

/**
 * Chunk size of the per-chunk hashes a model file's entry carries. WebCrypto cannot hash
 * incrementally, so a download is verified chunk by chunk as it arrives; 1 MiB keeps the entry
 * short (5 hashes for PP-OCR det) while a cut download loses at most one chunk of work.
 */
export const CHUNK_SIZE = 1 << 20;

/** Hex SHA-256 of each `chunkSize` slice of the bytes, in order. */
export async function chunkHashes(bytes: Uint8Array<ArrayBuffer>, chunkSize = CHUNK_SIZE): Promise<string[]> {
  const out: string[] = [];
  for (let at = 0; at < bytes.length || (at === 0 && out.length === 0); at += chunkSize) {
    out.push(await sha256Hex(bytes.subarray(at, Math.min(bytes.length, at + chunkSize))));
    if (bytes.length === 0) break;
  }
  return out;
}
