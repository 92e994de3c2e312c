import { IntegrityError, QuotaError, StorageError, type CachedModel, type CacheUsage } from '@outpost/core';
import type { VariantChoice } from '@outpost/core';
import { openModelDB, type ModelDB, type ModelRecord, type StoredFile } from './db.js';
import { sha256Hex } from './hash.js';

/**
 * Bytes per chunk. Large models are split so no single IndexedDB value approaches the per-value
 * limits some engines have (S3), and a read never needs one huge contiguous clone.
 */
export const CHUNK_BYTES = 4 * 1024 * 1024;

/** A file to store, already verified against its expected hash by the caller. */
export interface FileToStore {
  path: string;
  data: Uint8Array;
  sha256: string;
}

/** A file read back from the store, verified against the hash recorded when it was written. */
export interface StoredBytes {
  path: string;
  data: Uint8Array;
}

/** Milliseconds spent reading and verifying, for the load breakdown. */
export interface ReadTimings {
  read: number;
  verify: number;
}

function randomId(): string {
  return crypto.randomUUID();
}

function isQuotaError(err: unknown): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'name' in err &&
    ((err as { name: string }).name === 'QuotaExceededError' ||
      // Older Firefox reported quota as NS_ERROR_DOM_QUOTA_REACHED.
      (err as { name: string }).name === 'NS_ERROR_DOM_QUOTA_REACHED')
  );
}

/**
 * Whether an IndexedDB failure means the connection was closed under the operation (S4):
 * InvalidStateError from a closed or closing connection, AbortError from a transaction the close
 * aborted, UnknownError from a backend that went away (Chromium, site data cleared).
 */
function isConnectionLost(err: unknown): boolean {
  const names = ['InvalidStateError', 'AbortError', 'UnknownError'];
  const name = (e: unknown) => (typeof e === 'object' && e !== null && 'name' in e ? String(e.name) : '');
  return names.includes(name(err)) || names.includes(name((err as { cause?: unknown } | null)?.cause));
}

/** Options of a {@link ModelStore}. */
export interface ModelStoreOptions {
  /**
   * Milliseconds an open of the database may take before it fails with a StorageError and the
   * next call opens afresh (S4): an open blocked by another tab holding an older version, or a
   * stalled IndexedDB backend, never settles by itself.
   * @defaultValue 10_000
   */
  openTimeoutMs?: number;
}

/** Defaults of {@link ModelStoreOptions}. */
export const MODEL_STORE_DEFAULTS: Required<ModelStoreOptions> = { openTimeoutMs: 10_000 };

async function estimate(): Promise<{ usage: number | null; quota: number | null }> {
  try {
    const e = await navigator.storage?.estimate?.();
    return { usage: e?.usage ?? null, quota: e?.quota ?? null };
  } catch {
    return { usage: null, quota: null };
  }
}

/**
 * Model versions kept in IndexedDB, keyed by name + version. A version appears only once all
 * its chunks and its record are written in one transaction, so an interrupted or failed write
 * leaves nothing behind, and every read is checked against the recorded SHA-256 before the
 * bytes are used.
 */
export class ModelStore {
  private db: Promise<ModelDB> | undefined;
  private readonly openTimeoutMs: number;

  constructor(options: ModelStoreOptions = {}) {
    this.openTimeoutMs = options.openTimeoutMs ?? MODEL_STORE_DEFAULTS.openTimeoutMs;
  }

  /**
   * The open database: opened on first use, and afresh after a failed or timed-out open or a
   * lost connection (S4).
   */
  open(): Promise<ModelDB> {
    if (this.db) return this.db;
    const ms = this.openTimeoutMs;
    const conn: Promise<ModelDB> = new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        reject(
          new StorageError(
            `The model store did not open within ${ms} ms (another tab may hold an older version open, or IndexedDB is stalled)`,
          ),
        );
      }, ms);
      // Through a promise, so that an `indexedDB` that throws at once fails typed too.
      new Promise<ModelDB>((opened) => opened(openModelDB(() => this.forget(conn)))).then(
        (db) => {
          clearTimeout(timer);
          // The open was given up on: a connection that arrives late is let go at once.
          if (timedOut) db.close();
          else resolve(db);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(new StorageError(`Cannot open the model store: ${String(err)}`, { cause: err }));
        },
      );
    });
    this.db = conn;
    void conn.catch(() => this.forget(conn));
    return conn;
  }

  /** Drops a connection (closing it if it is still open), so the next call opens afresh. */
  private forget(conn: Promise<ModelDB>): void {
    if (this.db === conn) this.db = undefined;
    void conn.then(
      (db) => db.close(),
      () => undefined,
    );
  }

  /**
   * Runs `op` on the open database. When the connection was closed under it, the connection is
   * dropped; a read (`retry`) is run once more on a fresh one, and callers verify what it
   * returns the same way on either path.
   */
  private async use<T>(op: (db: ModelDB) => Promise<T>, retry: boolean): Promise<T> {
    const conn = this.open();
    const db = await conn;
    try {
      return await op(db);
    } catch (err) {
      if (!isConnectionLost(err)) throw err;
      this.forget(conn);
      if (!retry) throw err;
      return op(await this.open());
    }
  }

  /** The record of a stored version (or one variant of it), without reading its bytes. */
  async record(name: string, version: string, variant = ''): Promise<ModelRecord | undefined> {
    return this.use((db) => db.get('models', [name, version, variant]), true);
  }

  /**
   * Reads all files of a version and checks each against its recorded hash. Returns undefined
   * when the version is not stored; throws {@link IntegrityError} when stored bytes changed.
   */
  async read(
    name: string,
    version: string,
    variant = '',
  ): Promise<{ record: ModelRecord; files: StoredBytes[]; timings: ReadTimings } | undefined> {
    let t0 = 0;
    // Only the raw read is tried again on a fresh connection (S4); the checks below run on
    // whatever it returns, first try or second.
    const got = await this.use(async (db) => {
      t0 = performance.now();
      const tx = db.transaction(['models', 'chunks'], 'readonly');
      // Observed here so that a transaction aborted by a lost connection is never unhandled.
      void tx.done.catch(() => undefined);
      const record = await tx.objectStore('models').get([name, version, variant]);
      if (!record) return undefined;
      const chunkStore = tx.objectStore('chunks');
      const raw = await Promise.all(
        record.files.map((f) =>
          chunkStore.getAll(IDBKeyRange.bound([f.blobId, 0], [f.blobId, Number.MAX_SAFE_INTEGER])),
        ),
      );
      await tx.done;
      return { record, raw };
    }, true);
    if (!got) return undefined;
    const { record, raw } = got;
    const files = record.files.map((f, i) => ({
      file: f,
      data: concat(
        raw[i]!.map((c) => c.data),
        f.bytes,
      ),
    }));
    const t1 = performance.now();
    for (const { file, data } of files) {
      if (data.length !== file.bytes) {
        throw new IntegrityError(
          `Stored file ${file.path} of ${name}@${version} has ${data.length} bytes, expected ${file.bytes}`,
          file.sha256,
          `${data.length} bytes`,
          file.path,
        );
      }
    }
    const hashes = await Promise.all(files.map(({ data }) => sha256Hex(data)));
    hashes.forEach((actual, i) => {
      const file = files[i]!.file;
      if (actual !== file.sha256) {
        throw new IntegrityError(
          `Stored file ${file.path} of ${name}@${version} does not match its recorded SHA-256`,
          file.sha256,
          actual,
          file.path,
        );
      }
    });
    const t2 = performance.now();
    return {
      record,
      files: files.map(({ file, data }) => ({ path: file.path, data })),
      timings: { read: t1 - t0, verify: t2 - t1 },
    };
  }

  /** Throws a {@link QuotaError} when `bytes` more would not fit in the origin's quota. */
  async assertRoom(bytes: number, what: string): Promise<void> {
    const { usage, quota } = await estimate();
    if (quota !== null && usage !== null && bytes > quota - usage) {
      throw new QuotaError(
        `${what} needs ${bytes} bytes but the origin has ${quota - usage} of ${quota} left`,
        usage,
        quota,
        bytes,
      );
    }
  }

  /**
   * Stores a version atomically: every chunk and the record in one transaction, replacing any
   * earlier copy of the same name + version. On QuotaExceededError nothing is kept and a
   * {@link QuotaError} reports the origin's usage and quota.
   */
  async write(
    name: string,
    version: string,
    files: FileToStore[],
    options: { variant?: string; now?: number } = {},
  ): Promise<ModelRecord> {
    const { variant = '', now = Date.now() } = options;
    const bytes = files.reduce((n, f) => n + f.data.length, 0);
    await this.assertRoom(bytes, `${name}@${version}`);
    const stored: StoredFile[] = files.map((f) => ({
      path: f.path,
      bytes: f.data.length,
      sha256: f.sha256,
      blobId: randomId(),
      chunks: Math.max(1, Math.ceil(f.data.length / CHUNK_BYTES)),
    }));
    const record: ModelRecord = { name, version, variant, files: stored, bytes, storedAt: now, lastUsedAt: now };
    await this.use((db) => this.writeRecord(db, record, files), false);
    return record;
  }

  private async writeRecord(db: ModelDB, record: ModelRecord, files: FileToStore[]): Promise<void> {
    const { name, version, variant, files: stored, bytes } = record;
    let tx;
    try {
      tx = db.transaction(['models', 'chunks'], 'readwrite');
      const models = tx.objectStore('models');
      const chunks = tx.objectStore('chunks');
      const old = await models.get([name, version, variant]);
      const writes: Promise<unknown>[] = [];
      for (const f of old?.files ?? []) {
        writes.push(chunks.delete(IDBKeyRange.bound([f.blobId, 0], [f.blobId, Number.MAX_SAFE_INTEGER])));
      }
      files.forEach((f, i) => {
        const s = stored[i]!;
        for (let c = 0; c < s.chunks; c++) {
          const slice = f.data.slice(c * CHUNK_BYTES, (c + 1) * CHUNK_BYTES);
          writes.push(chunks.put({ blobId: s.blobId, index: c, data: slice.buffer }));
        }
      });
      writes.push(models.put(record));
      await Promise.all([...writes, tx.done]);
    } catch (err) {
      // Any failed request must take the whole write with it: abort explicitly rather than rely
      // on the browser aborting the transaction for us (it does not for every failure).
      try {
        tx?.abort();
      } catch {
        // Already aborted or finished.
      }
      await tx?.done.catch(() => undefined);
      if (isQuotaError(err) || isQuotaError((err as { cause?: unknown })?.cause)) {
        const e = await estimate();
        throw new QuotaError(
          `Storage quota exceeded while storing ${name}@${version} (${bytes} bytes)`,
          e.usage,
          e.quota,
          bytes,
        );
      }
      throw new StorageError(`Cannot store ${name}@${version}: ${String(err)}`, { cause: err });
    }
  }

  /** Records that a version was just used (for least-recently-used eviction). */
  async touch(name: string, version: string, variant = '', now = Date.now()): Promise<void> {
    await this.use(async (db) => {
      const tx = db.transaction('models', 'readwrite');
      const record = await tx.store.get([name, version, variant]);
      if (record) await tx.store.put({ ...record, lastUsedAt: now });
      await tx.done;
    }, false);
  }

  /**
   * Deletes a version (every variant of it, or only `variant`), its chunks and its variant
   * choice; returns whether anything was stored.
   */
  async delete(name: string, version: string, variant?: string): Promise<boolean> {
    return this.use(async (db) => {
      const tx = db.transaction(['models', 'chunks', 'choices'], 'readwrite');
      const models = tx.objectStore('models');
      const range =
        variant === undefined
          ? IDBKeyRange.bound([name, version, ''], [name, version, '\uffff'])
          : IDBKeyRange.only([name, version, variant]);
      const records = await models.getAll(range);
      for (const record of records) {
        await models.delete([record.name, record.version, record.variant]);
        for (const f of record.files) {
          await tx.objectStore('chunks').delete(IDBKeyRange.bound([f.blobId, 0], [f.blobId, Number.MAX_SAFE_INTEGER]));
        }
      }
      if (variant === undefined) await tx.objectStore('choices').delete([name, version]);
      await tx.done;
      return records.length > 0;
    }, false);
  }

  /** The variant chosen earlier for a version on this device, if any. */
  async choice(name: string, version: string): Promise<VariantChoice | undefined> {
    return (await this.use((db) => db.get('choices', [name, version]), true))?.choice;
  }

  /** Records the variant chosen for a version on this device. */
  async saveChoice(name: string, version: string, choice: VariantChoice): Promise<void> {
    await this.use((db) => db.put('choices', { name, version, choice }), false);
  }

  /** Ids of the stored variants of one version ('' for a version stored without variants). */
  async variants(name: string, version: string): Promise<string[]> {
    const keys = await this.use(
      (db) => db.getAllKeys('models', IDBKeyRange.bound([name, version, ''], [name, version, '\uffff'])),
      true,
    );
    return keys.map((k) => k[2]);
  }

  /** Every stored version. */
  async list(): Promise<CachedModel[]> {
    const records = await this.use((db) => db.getAll('models'), true);
    return records.map((r) => ({
      name: r.name,
      version: r.version,
      ...(r.variant ? { variant: r.variant } : {}),
      bytes: r.bytes,
      sha256: r.files[0]?.sha256 ?? '',
      storedAt: r.storedAt,
      lastUsedAt: r.lastUsedAt,
    }));
  }

  /** Bytes of all stored versions and the origin's quota. */
  async usage(): Promise<CacheUsage> {
    const list = await this.list();
    const { quota } = await estimate();
    return { bytes: list.reduce((n, m) => n + m.bytes, 0), quota };
  }

  /** Closes the connection; the next call reopens it. */
  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db) (await db.catch(() => undefined))?.close();
  }
}

function concat(parts: ArrayBuffer[], total: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.byteLength === total) return new Uint8Array(parts[0]!);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), off);
    off += p.byteLength;
  }
  return out;
}
