import { ModelFormatError } from '@outpost/core';
import { fromUtf8, utf8 } from './encoding.js';

/**
 * An offline bundle: one model version with the signed metadata that vouches for it, for
 * devices that never reach the repository (a kiosk updated from a USB stick). The bundle itself
 * is not trusted: the importing device runs the metadata through its own trust rules and checks
 * every file against the signed hashes, exactly as if it had downloaded them.
 *
 * Layout: the magic line, a 4-byte little-endian header length, the JSON header, then the
 * bytes of each metadata file and each model file in header order.
 */
export interface Bundle {
  model: string;
  version: string;
  variant: string;
  /** Metadata files by name (`timestamp.json`, `3.targets.json`…). */
  metadata: Record<string, Uint8Array>;
  /** Model files by target path. */
  files: Record<string, Uint8Array>;
}

const MAGIC = utf8('OUTPOST-BUNDLE-1\n');

interface Header {
  model: string;
  version: string;
  variant: string;
  metadata: [string, number][];
  files: [string, number][];
}

export function encodeBundle(b: Bundle): Uint8Array<ArrayBuffer> {
  const header: Header = {
    model: b.model,
    version: b.version,
    variant: b.variant,
    metadata: Object.entries(b.metadata).map(([n, d]) => [n, d.length]),
    files: Object.entries(b.files).map(([n, d]) => [n, d.length]),
  };
  const head = utf8(JSON.stringify(header));
  const parts = [...Object.values(b.metadata), ...Object.values(b.files)];
  const out = new Uint8Array(MAGIC.length + 4 + head.length + parts.reduce((n, p) => n + p.length, 0));
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint32(MAGIC.length, head.length, true);
  out.set(head, MAGIC.length + 4);
  let at = MAGIC.length + 4 + head.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Reads a bundle's structure; a malformed one is a `ModelFormatError`. Nothing in it is trusted yet. */
export function decodeBundle(bytes: Uint8Array): Bundle {
  const bad = (why: string): never => {
    throw new ModelFormatError(`Not an Outpost bundle: ${why}`);
  };
  if (bytes.length < MAGIC.length + 4 || !MAGIC.every((b, i) => bytes[i] === b)) bad('wrong magic');
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length, true);
  const start = MAGIC.length + 4;
  if (start + len > bytes.length) bad('header past the end');
  let header: Header;
  try {
    header = JSON.parse(fromUtf8(bytes.subarray(start, start + len))) as Header;
  } catch {
    return bad('header is not JSON');
  }
  const okList = (l: unknown) =>
    Array.isArray(l) &&
    l.every((e) => Array.isArray(e) && typeof e[0] === 'string' && Number.isSafeInteger(e[1]) && (e[1] as number) >= 0);
  if (typeof header.model !== 'string' || typeof header.version !== 'string' || typeof header.variant !== 'string') {
    bad('header lacks model, version or variant');
  }
  if (!okList(header.metadata) || !okList(header.files)) bad('header lists are malformed');
  let at = start + len;
  const take = (n: number) => {
    if (at + n > bytes.length) bad('truncated');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  // Null-prototype maps: a header naming a file `__proto__` or `constructor` gets an entry like
  // any other name, never a prototype swap or an inherited Object member on lookup.
  const metadata: Record<string, Uint8Array> = Object.create(null) as Record<string, Uint8Array>;
  for (const [name, n] of header.metadata) metadata[name] = take(n);
  const files: Record<string, Uint8Array> = Object.create(null) as Record<string, Uint8Array>;
  for (const [path, n] of header.files) files[path] = take(n);
  if (at !== bytes.length) bad('trailing bytes');
  return { model: header.model, version: header.version, variant: header.variant, metadata, files };
}
