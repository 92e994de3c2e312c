import 'fake-indexeddb/auto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IDBFactory } from 'fake-indexeddb';
import { DownloadError, IntegrityError } from '@outpost/core';
import { chunkHashes } from '@outpost/protocol';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ModelStore, PartialDownloads, sha256Hex } from '../store/index.js';
import { downloadResumable, type SignedFile } from './resumable.js';

// U2, U11-U13 against a real HTTP server on loopback whose behaviour each test sets.

const SIZE = 300_000;
const CHUNK = 64 * 1024;
const DATA = Uint8Array.from({ length: SIZE }, (_, i) => (i * 2654435761) >>> 24);

interface Mode {
  /** Close the connection after sending this many body bytes (once per entry, in order). */
  cutAt: number[];
  ignoreRange: boolean;
  /** Answer 503 this many times first. */
  flaps: number;
  /** Send one byte every this many ms. */
  trickleMs: number;
  etag: string;
  body: Uint8Array;
}

let mode: Mode;
const seen: { range?: string; ifRange?: string }[] = [];
let sentBytes = 0;
let server: Server;
let url: string;

function send(res: ServerResponse, body: Uint8Array, start: number) {
  const cut = mode.cutAt.shift();
  if (mode.trickleMs > 0) {
    let i = 0;
    const t = setInterval(() => {
      if (res.destroyed || i >= body.length) {
        clearInterval(t);
        res.end();
        return;
      }
      res.write(body.subarray(i, i + 1));
      sentBytes++;
      i++;
    }, mode.trickleMs);
    res.on('close', () => clearInterval(t));
    return;
  }
  if (cut !== undefined && cut - start < body.length) {
    const part = body.subarray(0, Math.max(0, cut - start));
    sentBytes += part.length;
    res.write(part, () => res.destroy());
    return;
  }
  sentBytes += body.length;
  res.end(body);
}

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined });
    if (mode.flaps > 0) {
      mode.flaps--;
      res.statusCode = 503;
      res.end();
      return;
    }
    res.setHeader('etag', mode.etag);
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (m && !mode.ignoreRange && (!ifRange || ifRange === mode.etag)) {
      const start = Number(m[1]);
      if (start >= mode.body.length) {
        res.statusCode = 416;
        res.end();
        return;
      }
      res.statusCode = 206;
      res.setHeader('content-range', `bytes ${start}-${mode.body.length - 1}/${mode.body.length}`);
      res.setHeader('content-length', String(mode.body.length - start));
      send(res, mode.body.subarray(start), start);
      return;
    }
    res.setHeader('content-length', String(mode.body.length));
    send(res, mode.body, 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`;
});

afterAll(() => new Promise((r) => server.close(r)));

let file: SignedFile;
let partials: PartialDownloads;
const policy = { inactivityMs: 2000, deadlineMs: 10_000, retries: 0, backoffMs: 10 };

beforeEach(async () => {
  globalThis.indexedDB = new IDBFactory();
  partials = new PartialDownloads(new ModelStore());
  mode = { cutAt: [], ignoreRange: false, flaps: 0, trickleMs: 0, etag: '"v1"', body: DATA };
  seen.length = 0;
  sentBytes = 0;
  file = { url, sha256: await sha256Hex(DATA), length: SIZE, chunkSize: CHUNK, chunks: await chunkHashes(DATA, CHUNK) };
});

const get = (p = policy) => downloadResumable(file, partials, new AbortController().signal, () => undefined, p);

describe('resumable downloads', () => {
  it('U11 a cut download resumes with Range from the saved offset; the whole file is verified', async () => {
    mode.cutAt = [200_000];
    await expect(get()).rejects.toBeInstanceOf(DownloadError);
    const rec = await partials.get(file.sha256);
    // Persisted at least every 64 KiB: at most one piece of what arrived is lost.
    expect(rec!.received).toBeGreaterThanOrEqual(200_000 - 64 * 1024);
    const bytes = await get();
    expect(Buffer.compare(bytes, DATA)).toBe(0);
    expect(seen[1]).toEqual({ range: `bytes=${rec!.received}-`, ifRange: '"v1"' });
    // Bytes on the wire in all: the file plus what was lost at the cut.
    expect(sentBytes).toBeLessThanOrEqual(SIZE + 64 * 1024);
    expect(await partials.get(file.sha256)).toBeUndefined();
  });

  it('U11 a server that ignores Range restarts cleanly; a changed ETag discards the partial', async () => {
    for (const change of ['ignore-range', 'etag'] as const) {
      mode = { ...mode, cutAt: [150_000], ignoreRange: false, etag: '"v1"' };
      sentBytes = 0;
      await expect(get()).rejects.toBeInstanceOf(DownloadError);
      if (change === 'ignore-range') mode.ignoreRange = true;
      else mode.etag = '"v2"';
      const bytes = await get();
      expect(Buffer.compare(bytes, DATA)).toBe(0);
      expect(sentBytes).toBe(150_000 + SIZE);
    }
  });

  it('U12 flaps are retried within the budget, resuming each time; beyond it the partial is kept', async () => {
    mode.cutAt = [70_000, 140_000];
    mode.flaps = 0;
    const bytes = await get({ ...policy, retries: 3 });
    expect(Buffer.compare(bytes, DATA)).toBe(0);
    // A cut flushes what arrived, so each attempt resumes exactly where the last one stopped.
    expect(seen.map((s) => s.range)).toEqual([undefined, 'bytes=70000-', 'bytes=140000-']);

    mode.cutAt = [100_000];
    mode.flaps = 0;
    await expect(get()).rejects.toBeInstanceOf(DownloadError);
    mode.flaps = 10;
    await expect(get({ ...policy, retries: 2 })).rejects.toMatchObject({ status: 503 });
    expect((await partials.get(file.sha256))?.received).toBeGreaterThan(0);
  });

  it('U13 a trickle hits the deadline; silence hits the inactivity timeout', async () => {
    mode.trickleMs = 5;
    const t0 = Date.now();
    await expect(get({ ...policy, deadlineMs: 400, inactivityMs: 2000 })).rejects.toThrow(/not done within 400 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
    mode.trickleMs = 1000;
    await expect(get({ ...policy, deadlineMs: 10_000, inactivityMs: 300 })).rejects.toThrow(/no byte for 300 ms/);
  });

  it('U2 a body longer than signed is cut at once; a chunk that does not match its hash is refused early', async () => {
    mode.body = new Uint8Array(SIZE * 4);
    mode.body.set(DATA);
    await expect(get()).rejects.toBeInstanceOf(IntegrityError);
    expect(sentBytes).toBeGreaterThan(0);

    const bad = DATA.slice();
    bad[10] ^= 1;
    mode.body = bad;
    const err = await get().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(String((err as Error).message)).toMatch(/Chunk 0/);
    expect(await partials.get(file.sha256)).toBeUndefined();
  });
});
