// Test support, left out of the build: faults planted in the model store's IndexedDB.

import { openModelDB } from '../store/db.js';

/** Flips the bits of `mask` in byte `at` of the first stored chunk, as a disk or a hand could (S1). */
export async function tamperStoredChunk(at: number, mask = 0xff): Promise<void> {
  const db = await openModelDB();
  const [chunk] = await db.getAll('chunks');
  const tampered = new Uint8Array(chunk!.data.slice(0));
  tampered[at] = tampered[at]! ^ mask;
  await db.put('chunks', { ...chunk!, data: tampered.buffer });
  db.close();
}
