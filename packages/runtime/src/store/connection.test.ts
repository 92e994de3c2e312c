import 'fake-indexeddb/auto';
import { IDBFactory, IDBOpenDBRequest, forceCloseDatabase } from 'fake-indexeddb';
import { IntegrityError, StorageError } from '@outpost/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { DB_NAME, DB_VERSION, openModelDB } from './db.js';
import { sha256Hex } from './hash.js';
import { ModelStore } from './store.js';
import { tamperStoredChunk } from '../testing/store.js';

const data = new Uint8Array(3000).map((_, i) => (i * 31) & 0xff);

async function file(path: string, bytes: Uint8Array) {
  return { path, data: bytes, sha256: await sha256Hex(bytes) };
}

/**
 * A fresh IndexedDB whose `open` can be made to stall (a request that never fires, as a hung
 * backend does), and that records every open request it makes.
 */
function factory() {
  const real = new IDBFactory();
  const realOpen = real.open.bind(real);
  const state = { stall: false, requests: [] as IDBOpenDBRequest[] };
  real.open = (name: string, version?: number) => {
    const req = state.stall ? (new IDBOpenDBRequest() as unknown as IDBOpenDBRequest) : realOpen(name, version);
    state.requests.push(req);
    return req;
  };
  globalThis.indexedDB = real;
  return state;
}

/** Opens the database as an older tab would, and never lets go of it. */
function openAsOldTab(version: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, version);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('models', { keyPath: ['name', 'version'] });
      req.result.createObjectStore('chunks', { keyPath: ['blobId', 'index'] });
    };
    req.onsuccess = () => {
      // An old tab that ignores versionchange: the store's upgrade is blocked until it closes.
      req.result.onversionchange = null;
      resolve(req.result);
    };
    req.onerror = () => reject(req.error);
  });
}

function isClosed(db: IDBDatabase): boolean {
  try {
    db.transaction('models').abort();
    return false;
  } catch (err) {
    return (err as DOMException).name === 'InvalidStateError';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeEach(() => {
  globalThis.indexedDB = new IDBFactory();
});

describe('model store connection (S4)', () => {
  it('S4 an open that never completes fails with a StorageError after the timeout, and the next call opens afresh once IndexedDB answers', async () => {
    const idb = factory();
    await new ModelStore().write('m', '1', [await file('m.onnx', data)]);
    idb.stall = true;
    idb.requests.length = 0;
    const store = new ModelStore({ openTimeoutMs: 50 });
    const t0 = performance.now();
    const err = await store.read('m', '1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: 'STORAGE', message: expect.stringMatching(/did not open within 50 ms/) });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
    // Still stalled: every call tries a fresh open rather than waiting on the dead one.
    await expect(store.list()).rejects.toBeInstanceOf(StorageError);
    expect(idb.requests).toHaveLength(2);
    idb.stall = false;
    expect((await store.read('m', '1'))?.files[0]?.data).toEqual(data);
    expect(idb.requests).toHaveLength(3);
  });

  it('S4 an open blocked by an older tab times out; the late connection is closed at once, and the next call works', async () => {
    const idb = factory();
    const old = await openAsOldTab(1);
    const store = new ModelStore({ openTimeoutMs: 100 });
    const err = await store.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: 'STORAGE' });
    const abandoned = idb.requests.at(-1)!;
    expect(abandoned.readyState).toBe('pending');
    // The old tab goes away: the abandoned open completes now, and must not be kept open.
    const late = new Promise<void>((resolve) => abandoned.addEventListener('success', () => resolve()));
    old.close();
    await late;
    await sleep(10);
    expect(isClosed(abandoned.result as IDBDatabase)).toBe(true);
    await store.write('m', '1', [await file('m.onnx', data)]);
    expect((await store.read('m', '1'))?.files[0]?.data).toEqual(data);
    const db = await openModelDB();
    expect(db.version).toBe(DB_VERSION);
    db.close();
  });

  it('S4 a connection the browser closes (close event) is dropped, and the next read reopens and returns verified bytes', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', data)]);
    const db = await store.open();
    const closed = new Promise<void>((resolve) => db.addEventListener('close', () => resolve()));
    forceCloseDatabase(db);
    await closed;
    expect(isClosed(db)).toBe(true);
    const read = await store.read('m', '1');
    expect(read?.files[0]?.data).toEqual(data);
    expect(await store.open()).not.toBe(db);
  });

  it('S4 a read whose connection closed under it is retried once on a fresh connection, and the retry still verifies the bytes', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', data)]);
    // Closed without a close event reaching the store yet: its next transaction throws InvalidStateError.
    (await store.open()).close();
    expect((await store.read('m', '1'))?.files[0]?.data).toEqual(data);
    expect(await store.list()).toHaveLength(1);

    // Bytes changed in the store are refused on the retry path too.
    await tamperStoredChunk(5);
    (await store.open()).close();
    await expect(store.read('m', '1')).rejects.toBeInstanceOf(IntegrityError);
  });

  it('S4 a read whose transaction aborts mid-way as the connection closes (AbortError) is retried once and verified', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', data)]);
    const first = await store.open();
    const proto = Object.getPrototypeOf(first.transaction('chunks').store) as {
      getAll: (...a: unknown[]) => Promise<unknown>;
    };
    const realGetAll = proto.getAll;
    let calls = 0;
    // The first chunk read fails the way Chromium fails one when site data is cleared under it.
    proto.getAll = function (this: unknown, ...args: unknown[]) {
      if (++calls === 1) {
        forceCloseDatabase(first);
        return Promise.reject(new DOMException('The connection was closed.', 'AbortError'));
      }
      return realGetAll.apply(this, args);
    };
    try {
      expect((await store.read('m', '1'))?.files[0]?.data).toEqual(data);
    } finally {
      proto.getAll = realGetAll;
    }
    expect(calls).toBe(2);
    expect(await store.open()).not.toBe(first);
  });

  it('S4 a write whose connection closed under it fails typed and keeps nothing; the next write reopens', async () => {
    const store = new ModelStore();
    (await store.open()).close();
    await expect(store.write('m', '1', [await file('m.onnx', data)])).rejects.toBeInstanceOf(StorageError);
    expect(await store.list()).toEqual([]);
    await store.write('m', '1', [await file('m.onnx', data)]);
    expect((await store.read('m', '1'))?.files[0]?.data).toEqual(data);
  });

  it('S4 a newer version opened in another tab is not blocked by the store: its connection lets go', async () => {
    const store = new ModelStore();
    await store.list();
    const newer = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION + 1);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('blocked by the store'));
    });
    expect(newer.version).toBe(DB_VERSION + 1);
    newer.close();
  });
});
