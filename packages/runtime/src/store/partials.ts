import type { PartialRecord } from './db.js';
import type { ModelStore } from './store.js';

const blobId = (sha256: string) => `partial:${sha256}`;
const ALL = (sha256: string) => IDBKeyRange.bound([blobId(sha256), 0], [blobId(sha256), Number.MAX_SAFE_INTEGER]);

/**
 * Bytes of downloads in progress, persisted piece by piece so a cut download or a closed tab
 * resumes from where it stopped. Each piece and the record's new offset are written in one
 * transaction: the offset never claims bytes that are not stored.
 */
export class PartialDownloads {
  constructor(private readonly store: ModelStore) {}

  async get(sha256: string): Promise<PartialRecord | undefined> {
    return (await this.store.open()).get('partials', sha256);
  }

  /** Starts (or restarts) a partial file with nothing received. */
  async begin(
    sha256: string,
    url: string,
    length: number,
    etag: string | null,
    now = Date.now(),
  ): Promise<PartialRecord> {
    await this.discard(sha256);
    const rec: PartialRecord = { sha256, url, length, etag, received: 0, pieces: 0, updatedAt: now };
    await (await this.store.open()).put('partials', rec);
    return rec;
  }

  /** Appends one piece; resolves to the updated record. */
  async append(rec: PartialRecord, piece: Uint8Array, now = Date.now()): Promise<PartialRecord> {
    const db = await this.store.open();
    const tx = db.transaction(['partials', 'chunks'], 'readwrite');
    const next: PartialRecord = {
      ...rec,
      received: rec.received + piece.length,
      pieces: rec.pieces + 1,
      updatedAt: now,
    };
    const copy = piece.slice();
    await Promise.all([
      tx.objectStore('chunks').put({ blobId: blobId(rec.sha256), index: rec.pieces, data: copy.buffer }),
      tx.objectStore('partials').put(next),
      tx.done,
    ]);
    return next;
  }

  /** Every byte received so far, in order. */
  async read(rec: PartialRecord): Promise<Uint8Array<ArrayBuffer>> {
    const pieces = await (await this.store.open()).getAll('chunks', ALL(rec.sha256));
    const out = new Uint8Array(pieces.reduce((n, p) => n + p.data.byteLength, 0));
    let at = 0;
    for (const p of pieces) {
      out.set(new Uint8Array(p.data), at);
      at += p.data.byteLength;
    }
    return out;
  }

  async discard(sha256: string): Promise<void> {
    const db = await this.store.open();
    const tx = db.transaction(['partials', 'chunks'], 'readwrite');
    await Promise.all([
      tx.objectStore('chunks').delete(ALL(sha256)),
      tx.objectStore('partials').delete(sha256),
      tx.done,
    ]);
  }

  /** Every download in progress (for cleaning up ones no release needs any more). */
  async list(): Promise<PartialRecord[]> {
    return (await this.store.open()).getAll('partials');
  }
}
