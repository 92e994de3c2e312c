import { DownloadError, MetadataError } from '@outpost/core';
import type { MetadataFetcher } from './trust.js';

/**
 * Reads a response body up to `maxLength` bytes and fails as soon as it goes past: an endless
 * or oversized body costs at most `maxLength + 1` bytes (U2, U10), whatever Content-Length says.
 */
export async function readCapped(res: Response, maxLength: number, what: string): Promise<Uint8Array<ArrayBuffer>> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxLength) {
    await res.body?.cancel().catch(() => undefined);
    throw new MetadataError(
      'METADATA_FORMAT',
      `${what} declares ${declared} bytes, over the ${maxLength}-byte cap`,
      what,
    );
  }
  const out = new Uint8Array(maxLength + 1);
  let size = 0;
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.length > maxLength) {
      await reader.cancel().catch(() => undefined);
      throw new MetadataError('METADATA_FORMAT', `${what} is over its ${maxLength}-byte cap`, what);
    }
    out.set(value, size);
    size += value.length;
  }
  return out.slice(0, size);
}

/**
 * A {@link MetadataFetcher} over HTTP: `<baseUrl>/metadata/<file>`, 404 as "absent", any other
 * non-2xx as a `DownloadError`, no caching (metadata must be fresh).
 */
export function httpMetadataFetcher(
  baseUrl: string,
  options: { fetch?: typeof fetch; signal?: AbortSignal } = {},
): MetadataFetcher {
  const doFetch = options.fetch ?? fetch;
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return async (file, maxLength) => {
    const url = new URL(`metadata/${file}`, base).href;
    let res: Response;
    try {
      res = await doFetch(url, { cache: 'no-store', signal: options.signal ?? null });
    } catch (err) {
      throw new DownloadError(`Could not fetch ${url}: ${String(err)}`, url, 0);
    }
    if (res.status === 404) {
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new DownloadError(`${url} answered ${res.status}`, url, res.status);
    }
    return readCapped(res, maxLength, file);
  };
}
