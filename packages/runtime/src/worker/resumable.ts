import { AbortError, DownloadError, IntegrityError, type DownloadPolicy } from '@outpost/core';
import type { PartialDownloads } from '../store/index.js';
import { sha256Hex } from '../store/index.js';
import type { OnBytes } from './download.js';

/** A file whose length, hash and chunk hashes are signed: everything a resumable download needs. */
export interface SignedFile {
  url: string;
  sha256: string;
  length: number;
  chunkSize: number;
  chunks: string[];
}

/** Defaults of {@link DownloadPolicy}. */
export const DOWNLOAD_DEFAULTS: DownloadPolicy = {
  inactivityMs: 30_000,
  deadlineMs: 10 * 60_000,
  retries: 4,
  backoffMs: 1000,
};

/**
 * Bytes persisted at a time: a killed tab loses at most this much plus what was in flight (the
 * issue asks for at least every 64 KiB; half that keeps a kill's re-fetch well under 5 % of a
 * few-MB model).
 */
export const PERSIST_BYTES = 32 * 1024;

/** Failures worth another attempt from the saved offset; anything else fails the download. */
function retryable(err: unknown): boolean {
  if (!(err instanceof DownloadError)) return false;
  return err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new AbortError());
      },
      { once: true },
    );
  });

/**
 * Downloads a signed file so that no byte is fetched twice without need and none is trusted
 * before it is checked (U11-U13):
 * - the bytes so far are persisted every {@link PERSIST_BYTES}, and a later attempt (after a cut,
 *   a flap, or a reload) asks for the rest with `Range` and `If-Range`;
 * - a server that ignores Range (200), a changed ETag or length, or a 416 restarts from zero;
 * - each chunk is checked against its signed hash as soon as it is complete, and a body longer
 *   than the signed length is cut off at once (U2);
 * - an attempt is aborted after `inactivityMs` without a byte or `deadlineMs` in all, and
 *   retried with jittered exponential backoff up to `retries` times; then the error is thrown
 *   and the partial file is kept for the next check.
 */
export async function downloadResumable(
  file: SignedFile,
  partials: PartialDownloads,
  signal: AbortSignal,
  onBytes: OnBytes,
  policy: DownloadPolicy = DOWNLOAD_DEFAULTS,
): Promise<Uint8Array<ArrayBuffer>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptOnce(file, partials, signal, onBytes, policy);
    } catch (err) {
      if (signal.aborted) throw new AbortError();
      if (!retryable(err) || attempt >= policy.retries) throw err;
      await sleep(Math.random() * policy.backoffMs * 2 ** attempt, signal);
    }
  }
}

async function attemptOnce(
  file: SignedFile,
  partials: PartialDownloads,
  outer: AbortSignal,
  onBytes: OnBytes,
  policy: DownloadPolicy,
): Promise<Uint8Array<ArrayBuffer>> {
  let rec = await partials.get(file.sha256);
  if (rec && (rec.length !== file.length || rec.received > file.length)) {
    await partials.discard(file.sha256);
    rec = undefined;
  }
  const ac = new AbortController();
  let why: 'inactive' | 'deadline' | undefined;
  const abortOuter = () => ac.abort();
  outer.addEventListener('abort', abortOuter, { once: true });
  let idle: ReturnType<typeof setTimeout> | undefined;
  const poke = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      why = 'inactive';
      ac.abort();
    }, policy.inactivityMs);
  };
  const deadline = setTimeout(() => {
    why = 'deadline';
    ac.abort();
  }, policy.deadlineMs);
  const failed = (what: string) =>
    outer.aborted
      ? new AbortError()
      : new DownloadError(
          why === 'inactive'
            ? `${file.url}: no byte for ${policy.inactivityMs} ms`
            : why === 'deadline'
              ? `${file.url}: not done within ${policy.deadlineMs} ms`
              : `${file.url}: ${what}`,
          file.url,
          0,
        );
  try {
    const headers: Record<string, string> = {};
    if (rec && rec.received > 0) {
      headers.range = `bytes=${rec.received}-`;
      if (rec.etag) headers['if-range'] = rec.etag;
    }
    poke();
    let res: Response;
    try {
      // Not the HTTP cache: the bytes go to IndexedDB anyway, and a cached tampered copy of an
      // immutable URL would otherwise come back on every attempt.
      res = await fetch(file.url, { headers, signal: ac.signal, cache: 'no-store', credentials: 'same-origin' });
    } catch (err) {
      throw failed(err instanceof Error ? err.message : String(err));
    }
    const etag = res.headers.get('etag');
    let offset = 0;
    if (res.status === 206 && rec) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      const ok = m && Number(m[1]) === rec.received && (m[3] === '*' || Number(m[3]) === file.length);
      const sameEtag = !rec.etag || !etag || rec.etag === etag;
      if (!ok || !sameEtag) {
        await res.body?.cancel().catch(() => undefined);
        await partials.discard(file.sha256);
        throw new DownloadError(`${file.url}: the server resumed at the wrong place; starting again`, file.url, 0);
      }
      offset = rec.received;
    } else if (res.status === 416) {
      await partials.discard(file.sha256);
      throw new DownloadError(`${file.url}: range not satisfiable; starting again`, file.url, 0);
    } else if (res.ok) {
      // A full body: the server ignored Range, or the file changed (If-Range): start over.
      rec = await partials.begin(file.sha256, file.url, file.length, etag);
    } else {
      await res.body?.cancel().catch(() => undefined);
      throw new DownloadError(`Downloading ${file.url} failed with HTTP ${res.status}`, file.url, res.status);
    }
    if (!rec) throw new DownloadError(`${file.url}: unexpected ${res.status}`, file.url, res.status);
    const reader = res.body?.getReader();
    if (!reader) throw failed('no body');

    // The chunk being filled, from its first byte (read back from the store after a resume).
    let chunkIndex = Math.floor(offset / file.chunkSize);
    let chunkBuf = new Uint8Array(Math.min(file.chunkSize, file.length - chunkIndex * file.chunkSize));
    let chunkFill = offset - chunkIndex * file.chunkSize;
    if (chunkFill > 0) chunkBuf.set((await partials.read(rec)).subarray(chunkIndex * file.chunkSize, offset));
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const piece = new Uint8Array(pendingBytes);
      let at = 0;
      for (const p of pending) {
        piece.set(p, at);
        at += p.length;
      }
      pending.length = 0;
      pendingBytes = 0;
      rec = await partials.append(rec!, piece);
    };
    onBytes(offset, file.length);
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (err) {
        await flush().catch(() => undefined);
        throw failed(`cut off after ${offset} bytes (${err instanceof Error ? err.message : String(err)})`);
      }
      if (chunk.done) break;
      poke();
      let value = chunk.value;
      if (offset + value.length > file.length) {
        await reader.cancel().catch(() => undefined);
        await partials.discard(file.sha256);
        throw new IntegrityError(
          `${file.url} sent more than its signed ${file.length} bytes`,
          `${file.length} bytes`,
          `> ${file.length} bytes`,
        );
      }
      while (value.length > 0) {
        const take = Math.min(value.length, chunkBuf.length - chunkFill);
        chunkBuf.set(value.subarray(0, take), chunkFill);
        chunkFill += take;
        pending.push(value.subarray(0, take));
        pendingBytes += take;
        offset += take;
        value = value.subarray(take);
        if (chunkFill === chunkBuf.length) {
          const actual = await sha256Hex(chunkBuf);
          if (actual !== file.chunks[chunkIndex]) {
            await reader.cancel().catch(() => undefined);
            await partials.discard(file.sha256);
            throw new IntegrityError(
              `Chunk ${chunkIndex} of ${file.url} does not match its signed hash`,
              file.chunks[chunkIndex] ?? '',
              actual,
            );
          }
          chunkIndex++;
          chunkBuf = new Uint8Array(Math.min(file.chunkSize, Math.max(0, file.length - chunkIndex * file.chunkSize)));
          chunkFill = 0;
        }
      }
      if (pendingBytes >= PERSIST_BYTES) await flush();
      onBytes(offset, file.length);
    }
    await flush();
    if (offset < file.length) throw failed(`ended after ${offset} of ${file.length} bytes`);
    const bytes = await partials.read(rec);
    const actual = await sha256Hex(bytes);
    if (bytes.length !== file.length || actual !== file.sha256) {
      await partials.discard(file.sha256);
      throw new IntegrityError(`${file.url} does not match its signed SHA-256`, file.sha256, actual);
    }
    await partials.discard(file.sha256);
    return bytes;
  } finally {
    clearTimeout(idle);
    clearTimeout(deadline);
    outer.removeEventListener('abort', abortOuter);
  }
}
