/**
 * Byte encodings the metadata uses: hex (hashes, signatures, Ed25519 keys), PEM (ECDSA keys, as
 * securesystemslib and tuf-js write them) and the two ECDSA signature encodings.
 */

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array<ArrayBuffer> {
  return utf8Encoder.encode(text);
}

/** Decodes UTF-8, throwing a TypeError on invalid sequences (never replacement characters). */
export function fromUtf8(bytes: Uint8Array): string {
  return utf8Decoder.decode(bytes);
}

/** Lower-case hex of the bytes. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Bytes of an even-length hex string; throws on anything else. */
export function fromHex(hex: string): Uint8Array<ArrayBuffer> {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) throw new TypeError('Not a hex string');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Base64 of the bytes (in slices: `String.fromCharCode` takes a bounded argument list). */
export function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Bytes of base64 text. */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** PEM armour (`-----BEGIN <label>-----`, base64 in 64-column lines) around DER bytes. */
export function toPem(der: Uint8Array, label: string): string {
  const lines = toBase64(der).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** The DER bytes inside PEM armour with the given label. */
export function fromPem(pem: string, label: string): Uint8Array<ArrayBuffer> {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (!m?.[1]) throw new TypeError(`Not a PEM ${label}`);
  return fromBase64(m[1].replace(/\s+/g, ''));
}

/** DER INTEGER body of an unsigned big-endian number: minimal, with a 0 byte if the top bit is set. */
function derInteger(n: Uint8Array): Uint8Array {
  let i = 0;
  while (i < n.length - 1 && n[i] === 0) i++;
  const body = n.subarray(i);
  const pad = (body[0] ?? 0) & 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + body.length);
  out[0] = 0x02;
  out[1] = pad + body.length;
  out.set(body, 2 + pad);
  return out;
}

/**
 * WebCrypto signs ECDSA as IEEE P1363 (`r || s`, fixed width); TUF tools (securesystemslib,
 * tuf-js via Node's crypto) expect the ASN.1 DER `SEQUENCE { INTEGER r, INTEGER s }`.
 */
export function p1363ToDer(sig: Uint8Array): Uint8Array<ArrayBuffer> {
  const half = sig.length / 2;
  const r = derInteger(sig.subarray(0, half));
  const s = derInteger(sig.subarray(half));
  const out = new Uint8Array(2 + r.length + s.length);
  out[0] = 0x30;
  out[1] = r.length + s.length;
  out.set(r, 2);
  out.set(s, 2 + r.length);
  return out;
}

/**
 * The inverse of {@link p1363ToDer} for a curve whose coordinates are `width` bytes. Returns
 * null for anything that is not a well-formed DER ECDSA signature, so a malformed signature is
 * simply an invalid one.
 */
export function derToP1363(der: Uint8Array, width: number): Uint8Array<ArrayBuffer> | null {
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) return null;
  const out = new Uint8Array(2 * width);
  let at = 2;
  for (let k = 0; k < 2; k++) {
    if (der[at] !== 0x02) return null;
    const len = der[at + 1] ?? 0;
    let body = der.subarray(at + 2, at + 2 + len);
    if (body.length !== len || len === 0) return null;
    while (body.length > width && body[0] === 0) body = body.subarray(1);
    if (body.length > width) return null;
    out.set(body, k * width + width - body.length);
    at += 2 + len;
  }
  return at === der.length ? out : null;
}
