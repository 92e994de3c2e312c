import canonicalJson from '@tufjs/canonical-json';
import { utf8 } from './encoding.js';

/**
 * OLPC canonical JSON, as TUF signs it: keys sorted, no insignificant whitespace, integers only
 * (a float or `undefined` anywhere throws, which is why rollout fractions are basis points).
 */
export function canonicalize(value: unknown): string {
  return canonicalJson.canonicalize(value);
}

/** The UTF-8 bytes that are signed and verified for a metadata `signed` object. */
export function canonicalBytes(value: unknown): Uint8Array<ArrayBuffer> {
  return utf8(canonicalize(value));
}
