import { AbortError, DownloadError, IntegrityError, ModelFormatError } from '@outpost/core';

/** Progress of one download: bytes so far and the total when the server says it. */
export type OnBytes = (loaded: number, total: number | null) => void;

/**
 * Downloads a file into memory, reporting progress, honouring `signal`. A non-2xx status is a
 * {@link DownloadError} with the status; a network failure is one with status 0; an HTML page
 * where a model was expected (a SPA fallback route answering 200) is a {@link ModelFormatError}.
 * With `maxBytes` (a signed length), a body that goes past it is cut off at once (U2).
 */
export async function download(
  url: string,
  signal: AbortSignal,
  onBytes: OnBytes,
  maxBytes?: number,
  cache: RequestCache = 'default',
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal, credentials: 'same-origin', cache });
  } catch (err) {
    if (signal.aborted) throw new AbortError();
    throw new DownloadError(`Cannot download ${url}: ${err instanceof Error ? err.message : String(err)}`, url, 0);
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new DownloadError(`Downloading ${url} failed with HTTP ${res.status}`, url, res.status);
  }
  const type = res.headers.get('content-type') ?? '';
  if (/^text\/html\b/i.test(type)) {
    await res.body?.cancel().catch(() => undefined);
    throw new ModelFormatError(`${url} answered with an HTML page (${type}), not a model`);
  }
  // Content-Length is the encoded size when the body is compressed; only trust it when not.
  const encoded = res.headers.get('content-encoding');
  const length = Number(res.headers.get('content-length'));
  const total = !encoded && Number.isFinite(length) && length > 0 ? length : null;
  const reader = res.body?.getReader();
  if (!reader) return new Uint8Array(await res.arrayBuffer());
  const parts: Uint8Array[] = [];
  let loaded = 0;
  onBytes(0, total);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      loaded += value.length;
      if (maxBytes !== undefined && loaded > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw new IntegrityError(
          `${url} sent more than its declared ${maxBytes} bytes`,
          `${maxBytes} bytes`,
          `> ${maxBytes} bytes`,
        );
      }
      onBytes(loaded, total);
    }
  } catch (err) {
    if (err instanceof IntegrityError) throw err;
    if (signal.aborted) throw new AbortError();
    throw new DownloadError(`Download of ${url} was cut off after ${loaded} bytes`, url, 0);
  }
  if (total !== null && loaded < total) {
    throw new DownloadError(`Download of ${url} ended after ${loaded} of ${total} bytes`, url, res.status);
  }
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(loaded);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
