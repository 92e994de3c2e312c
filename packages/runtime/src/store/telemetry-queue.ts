import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

/**
 * The telemetry queue's own IndexedDB database, apart from the model store: its caps bound it
 * (T1), and clearing or upgrading one never touches the other.
 */
export const TELEMETRY_DB_NAME = 'outpost-telemetry';

/** Which OTLP signal a batch is, so which path it goes to. */
export type TelemetrySignal = 'metrics' | 'logs';

/** One OTLP/HTTP JSON request waiting for a 2xx (T5). */
export interface QueuedBatch {
  /** Insertion order (auto-incremented): batches go out oldest first. */
  seq?: number;
  /** The batch's UUID: its `Idempotency-Key` and its `outpost.batch.id` (T2). */
  id: string;
  signal: TelemetrySignal;
  /** The request body, exactly as it is sent every time. */
  body: string;
  /** UTF-8 bytes of `body`. */
  bytes: number;
  /** Data points and log records in the batch: what a drop counts. */
  items: number;
  createdAt: number;
  attempts: number;
  /** Not sent before this time (ms since the epoch): backoff and Retry-After (T3). */
  notBefore: number;
}

/** A batch the server refused for good (400): kept for inspection, never resent (T3). */
export interface AsideBatch {
  id: string;
  signal: TelemetrySignal;
  body: string;
  status: number;
  at: number;
}

export interface TelemetrySchema extends DBSchema {
  queue: { key: number; value: QueuedBatch };
  aside: { key: string; value: AsideBatch };
  /** Counters, such as items dropped by the caps and not yet reported. */
  counters: { key: string; value: { key: string; value: number } };
}

export type TelemetryDB = IDBPDatabase<TelemetrySchema>;

const STORES = {
  queue: { keyPath: 'seq', autoIncrement: true },
  aside: { keyPath: 'id' },
  counters: { keyPath: 'key' },
} as const satisfies Record<string, IDBObjectStoreParameters>;

/** Creates the stores the database lacks: all of them when new, or those someone else's empty database left out. */
function createMissingStores(db: TelemetryDB): void {
  for (const [name, params] of Object.entries(STORES) as [keyof typeof STORES, IDBObjectStoreParameters][]) {
    if (!db.objectStoreNames.contains(name)) db.createObjectStore(name, params);
  }
}

function open(version: number | undefined, onClose: () => void): Promise<TelemetryDB> {
  const db = openDB<TelemetrySchema>(TELEMETRY_DB_NAME, version, {
    upgrade: createMissingStores,
    // Another context upgrades the database: let it, and open afresh at the next call.
    blocking() {
      void db.then((d) => d.close());
      onClose();
    },
    terminated: onClose,
  });
  return db;
}

/**
 * Opens (and creates) the telemetry database at whatever version it has: its stores never
 * change shape, so a version only says the database was repaired. A database of the name that
 * lacks a store (opened first by other code, which creates it empty) is upgraded one version to
 * add it, rather than failing every write from then on.
 */
export async function openTelemetryDB(onClose: () => void = () => undefined): Promise<TelemetryDB> {
  const db = await open(undefined, onClose);
  if ((Object.keys(STORES) as (keyof typeof STORES)[]).every((name) => db.objectStoreNames.contains(name))) return db;
  const version = db.version + 1;
  db.close();
  return open(version, onClose);
}

/** Batches kept aside at most; the oldest go first. */
const MAX_ASIDE = 20;

/** UTF-8 length without allocating the bytes. */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * The persisted queue of telemetry batches (T1, T5): capped by bytes and count (the oldest are
 * dropped and counted), and a batch leaves it only when the sender saw a 2xx for it, or the
 * server refused it for good.
 */
export class TelemetryQueue {
  private dbp: Promise<TelemetryDB> | undefined;

  constructor(private readonly caps: { maxBytes: number; maxCount: number }) {}

  private db(): Promise<TelemetryDB> {
    // A failed open (the store unavailable for a moment) is tried again at the next call.
    const forget = () => {
      this.dbp = undefined;
    };
    this.dbp ??= openTelemetryDB(forget).catch((err: unknown) => {
      this.dbp = undefined;
      throw err;
    });
    return this.dbp;
  }

  /**
   * Adds a batch, then drops the oldest batches until the queue fits its caps again, counting
   * their items as dropped; `reported` items of the drop counter (those the new batch reports)
   * are taken off it in the same transaction, so a drop is reported once.
   */
  async add(batch: Omit<QueuedBatch, 'seq'>, reported = 0): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['queue', 'counters'], 'readwrite');
    const queue = tx.objectStore('queue');
    const counters = tx.objectStore('counters');
    await queue.add(batch);
    const all = await queue.getAll();
    let bytes = all.reduce((n, b) => n + b.bytes, 0);
    let count = all.length;
    let dropped = 0;
    for (const b of all) {
      if (bytes <= this.caps.maxBytes && count <= this.caps.maxCount) break;
      await queue.delete(b.seq!);
      bytes -= b.bytes;
      count -= 1;
      dropped += b.items;
    }
    const before = (await counters.get('dropped'))?.value ?? 0;
    await counters.put({ key: 'dropped', value: Math.max(0, before - reported) + dropped });
    await tx.done;
  }

  /** Items dropped by the caps and not yet reported. */
  async dropped(): Promise<number> {
    return (await (await this.db()).get('counters', 'dropped'))?.value ?? 0;
  }

  /** Every queued batch, oldest first. */
  async list(): Promise<QueuedBatch[]> {
    return (await this.db()).getAll('queue');
  }

  /** Batches due at `now`, oldest first. */
  async due(now: number): Promise<QueuedBatch[]> {
    return (await this.list()).filter((b) => b.notBefore <= now);
  }

  /** Removes a batch the server accepted (a 2xx). */
  async remove(seq: number): Promise<void> {
    await (await this.db()).delete('queue', seq);
  }

  /** Replaces a batch by the parts it was split into (413), in one transaction. */
  async replace(seq: number, parts: Omit<QueuedBatch, 'seq'>[]): Promise<void> {
    const db = await this.db();
    const tx = db.transaction('queue', 'readwrite');
    await tx.store.delete(seq);
    for (const p of parts) await tx.store.add(p);
    await tx.done;
  }

  /** Moves a batch the server refused for good out of the queue, so it blocks nothing. */
  async setAside(batch: QueuedBatch, status: number, now = Date.now()): Promise<void> {
    const db = await this.db();
    const tx = db.transaction(['queue', 'aside'], 'readwrite');
    await tx.objectStore('queue').delete(batch.seq!);
    const aside = tx.objectStore('aside');
    await aside.put({ id: batch.id, signal: batch.signal, body: batch.body, status, at: now });
    const kept = await aside.getAll();
    kept.sort((a, b) => a.at - b.at);
    for (const old of kept.slice(0, Math.max(0, kept.length - MAX_ASIDE))) await aside.delete(old.id);
    await tx.done;
  }

  /** Batches set aside, oldest first. */
  async aside(): Promise<AsideBatch[]> {
    return (await (await this.db()).getAll('aside')).sort((a, b) => a.at - b.at);
  }

  /** Puts a batch off until `notBefore`, counting the attempt. */
  async retryLater(batch: QueuedBatch, notBefore: number): Promise<void> {
    const db = await this.db();
    const tx = db.transaction('queue', 'readwrite');
    const current = await tx.store.get(batch.seq!);
    if (current) await tx.store.put({ ...current, attempts: current.attempts + 1, notBefore });
    await tx.done;
  }
}
