import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { beforeEach, describe, expect, it } from 'vitest';
import { TELEMETRY_DB_NAME, TelemetryQueue, openTelemetryDB } from './telemetry-queue.js';

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
});

const batch = (id: string) => ({
  id,
  signal: 'metrics' as const,
  body: '{}',
  bytes: 2,
  items: 1,
  createdAt: 0,
  attempts: 0,
  notBefore: 0,
});

/** Opens the database as other code would (no version): created empty at version 1 if absent. */
function openBare(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(TELEMETRY_DB_NAME);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

describe('telemetry queue database', () => {
  it('T5: a database of its name created empty by other code is upgraded to hold the queue, not left failing every write', async () => {
    const bare = await openBare();
    expect(bare.objectStoreNames.length).toBe(0);
    bare.close();
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    await queue.add(batch('a'));
    expect((await queue.list()).map((b) => b.id)).toEqual(['a']);
    const db = await openTelemetryDB();
    expect([...db.objectStoreNames].sort()).toEqual(['aside', 'counters', 'queue']);
    expect(db.version).toBe(2);
    db.close();
  });

  it('T5: a connection another context upgrades past is let go and reopened, and the queue keeps working', async () => {
    const queue = new TelemetryQueue({ maxBytes: 1e6, maxCount: 100 });
    await queue.add(batch('a'));
    // Another context opens a higher version: the queue's connection must not block it.
    const other = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(TELEMETRY_DB_NAME, 5);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    other.close();
    await queue.add(batch('b'));
    expect((await queue.list()).map((b) => b.id)).toEqual(['a', 'b']);
  });
});
