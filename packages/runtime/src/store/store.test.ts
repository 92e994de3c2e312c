import 'fake-indexeddb/auto';
import { IDBFactory } from 'fake-indexeddb';
import { IntegrityError, QuotaError } from '@outpost/core';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { openModelDB } from './db.js';
import { sha256Hex } from './hash.js';
import { CHUNK_BYTES, ModelStore } from './store.js';
import { tamperStoredChunk } from '../testing/store.js';

function bytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function file(path: string, data: Uint8Array) {
  return { path, data, sha256: await sha256Hex(data) };
}

beforeEach(() => {
  // A fresh, empty IndexedDB for every test.
  globalThis.indexedDB = new IDBFactory();
});

describe('ModelStore', () => {
  it('writes a version and reads it back verified, keyed by name + version', async () => {
    const store = new ModelStore();
    const a = bytes(1000, 1);
    const b = bytes(1000, 2);
    await store.write('digits', '1.0.0', [await file('digits.onnx', a)], { now: 1000 });
    await store.write('digits', '1.1.0', [await file('digits.onnx', b)], { now: 2000 });
    const r1 = await store.read('digits', '1.0.0');
    const r2 = await store.read('digits', '1.1.0');
    expect(r1?.files[0]?.data).toEqual(a);
    expect(r2?.files[0]?.data).toEqual(b);
    expect(await store.read('digits', '2.0.0')).toBeUndefined();
    const list = await store.list();
    expect(list).toHaveLength(2);
    expect(list.find((m) => m.version === '1.0.0')).toMatchObject({
      name: 'digits',
      bytes: 1000,
      sha256: await sha256Hex(a),
      storedAt: 1000,
      lastUsedAt: 1000,
    });
  });

  it('S3: splits a large file into chunks and reassembles it exactly', async () => {
    const store = new ModelStore();
    const big = bytes(CHUNK_BYTES * 2 + 12345, 7);
    await store.write('big', '1', [await file('big.onnx', big)]);
    const db = await openModelDB();
    const record = await db.get('models', ['big', '1', '']);
    expect(record?.files[0]?.chunks).toBe(3);
    const chunks = await db.getAll('chunks');
    expect(chunks).toHaveLength(3);
    expect(Math.max(...chunks.map((c) => c.data.byteLength))).toBeLessThanOrEqual(CHUNK_BYTES);
    db.close();
    const read = await store.read('big', '1');
    expect(read?.files[0]?.data.length).toBe(big.length);
    expect(await sha256Hex(read!.files[0]!.data)).toBe(await sha256Hex(big));
  });

  it('keeps a model as a set of files (ONNX external data)', async () => {
    const store = new ModelStore();
    const graph = bytes(500, 3);
    const weights = bytes(5000, 4);
    await store.write('ext', '1', [await file('model.onnx', graph), await file('model.onnx.data', weights)]);
    const read = await store.read('ext', '1');
    expect(read?.files.map((f) => f.path)).toEqual(['model.onnx', 'model.onnx.data']);
    expect(read?.files[1]?.data).toEqual(weights);
    expect((await store.list())[0]?.bytes).toBe(5500);
  });

  it('S1: detects bytes tampered in IndexedDB before they are used', async () => {
    const store = new ModelStore();
    await store.write('digits', '1', [await file('digits.onnx', bytes(2000))]);
    await tamperStoredChunk(10);
    await expect(store.read('digits', '1')).rejects.toBeInstanceOf(IntegrityError);
  });

  it('S1: detects a missing chunk as a length mismatch', async () => {
    const store = new ModelStore();
    await store.write('big', '1', [await file('big.onnx', bytes(CHUNK_BYTES + 10))]);
    const db = await openModelDB();
    const record = await db.get('models', ['big', '1', '']);
    await db.delete('chunks', [record!.files[0]!.blobId, 1]);
    db.close();
    await expect(store.read('big', '1')).rejects.toMatchObject({ code: 'INTEGRITY' });
  });

  it('replaces an earlier copy of the same version without leaving its chunks behind', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', bytes(100, 1))]);
    await store.write('m', '1', [await file('m.onnx', bytes(200, 2))]);
    expect((await store.read('m', '1'))?.files[0]?.data).toEqual(bytes(200, 2));
    const db = await openModelDB();
    expect(await db.count('chunks')).toBe(1);
    db.close();
  });

  it('delete removes the record and its chunks', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', bytes(100))]);
    expect(await store.delete('m', '1')).toBe(true);
    expect(await store.delete('m', '1')).toBe(false);
    const db = await openModelDB();
    expect(await db.count('chunks')).toBe(0);
    expect(await db.count('models')).toBe(0);
    db.close();
  });

  it('touch updates lastUsedAt only', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', bytes(100))], { now: 1000 });
    await store.touch('m', '1', '', 5000);
    expect((await store.list())[0]).toMatchObject({ storedAt: 1000, lastUsedAt: 5000 });
  });

  it('usage sums stored bytes', async () => {
    const store = new ModelStore();
    await store.write('a', '1', [await file('a.onnx', bytes(100))]);
    await store.write('b', '1', [await file('b.onnx', bytes(250))]);
    expect((await store.usage()).bytes).toBe(350);
  });

  it('S2: a model bigger than the quota is refused with the estimate, and nothing is kept', async () => {
    const store = new ModelStore();
    await store.write('keep', '1', [await file('keep.onnx', bytes(100))]);
    vi.stubGlobal('navigator', { storage: { estimate: async () => ({ usage: 1000, quota: 5000 }) } });
    try {
      const err = await store.write('huge', '1', [await file('huge.onnx', bytes(10_000))]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuotaError);
      expect(err).toMatchObject({ code: 'QUOTA_EXCEEDED', usage: 1000, quota: 5000, needed: 10_000 });
    } finally {
      vi.unstubAllGlobals();
    }
    expect((await store.list()).map((m) => m.name)).toEqual(['keep']);
  });

  it('S2: QuotaExceededError mid-write aborts the whole write; staged chunks are gone, the stored model intact', async () => {
    const store = new ModelStore();
    const keep = bytes(100, 9);
    await store.write('keep', '1', [await file('keep.onnx', keep)]);
    const db = await openModelDB();
    const proto = Object.getPrototypeOf(db.transaction('chunks', 'readwrite').store) as {
      put: (...a: unknown[]) => Promise<unknown>;
    };
    db.close();
    const realPut = proto.put;
    let puts = 0;
    // Fail the second chunk write the way a browser does when the origin is over quota.
    proto.put = function (this: unknown, ...args: unknown[]) {
      if (++puts === 2) return Promise.reject(new DOMException('over quota', 'QuotaExceededError'));
      return realPut.apply(this, args);
    };
    try {
      const err = await store
        .write('big', '1', [await file('big.onnx', bytes(CHUNK_BYTES * 3))])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuotaError);
    } finally {
      proto.put = realPut;
    }
    const check = await openModelDB();
    expect(await check.count('models')).toBe(1);
    expect(await check.count('chunks')).toBe(1);
    check.close();
    expect((await store.read('keep', '1'))?.files[0]?.data).toEqual(keep);
  });

  it('keeps variants of one version apart; delete of the version removes every variant and its choice', async () => {
    const store = new ModelStore();
    await store.write('m', '1', [await file('m.onnx', bytes(100, 1))], { variant: 'fp32' });
    await store.write('m', '1', [await file('m.onnx', bytes(40, 2))], { variant: 'int8' });
    await store.write('m', '2', [await file('m.onnx', bytes(10, 3))]);
    expect((await store.read('m', '1', 'int8'))?.files[0]?.data).toEqual(bytes(40, 2));
    expect(await store.read('m', '1')).toBeUndefined();
    expect((await store.list()).map((m) => `${m.version}/${m.variant ?? '-'}`).sort()).toEqual([
      '1/fp32',
      '1/int8',
      '2/-',
    ]);
    const choice = {
      variant: 'int8',
      backend: 'wasm' as const,
      trials: [],
      deviceKey: 'k',
      decidedAt: 1,
      cached: false,
    };
    await store.saveChoice('m', '1', choice);
    expect(await store.choice('m', '1')).toEqual(choice);
    expect(await store.delete('m', '1')).toBe(true);
    expect((await store.list()).map((m) => m.version)).toEqual(['2']);
    expect(await store.choice('m', '1')).toBeUndefined();
    const db = await openModelDB();
    expect(await db.count('chunks')).toBe(1);
    db.close();
  });

  it('upgrades a version-1 database, keeping its models', async () => {
    // A database as version 1 of the store wrote it.
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.open('outpost-models', 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        const models = db.createObjectStore('models', { keyPath: ['name', 'version'] });
        db.createObjectStore('chunks', { keyPath: ['blobId', 'index'] });
        models.put({ name: 'old', version: '1', files: [], bytes: 0, storedAt: 1, lastUsedAt: 1 });
      };
      req.onsuccess = () => {
        req.result.close();
        resolve();
      };
      req.onerror = () => reject(req.error);
    });
    const store = new ModelStore();
    expect(await store.list()).toMatchObject([{ name: 'old', version: '1' }]);
    expect(await store.record('old', '1')).toMatchObject({ variant: '' });
  });

  it('builds its stores in a database of its name that other code created empty', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = indexedDB.open('outpost-models');
      req.onsuccess = () => {
        expect(req.result.objectStoreNames.length).toBe(0);
        req.result.close();
        resolve();
      };
      req.onerror = () => reject(req.error);
    });
    const store = new ModelStore();
    expect(await store.list()).toEqual([]);
    const db = await openModelDB();
    expect(db.objectStoreNames.contains('models')).toBe(true);
    expect(db.objectStoreNames.contains('meta')).toBe(true);
    db.close();
  });
});
