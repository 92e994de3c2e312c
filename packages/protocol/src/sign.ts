import { canonicalBytes } from './canonical.js';
import { signBytes, verifyBytes, type SigningKey } from './keys.js';
import type { Envelope, PublicKey, RoleKeys } from './metadata.js';

/** Signs a metadata object with each key (canonical JSON of `signed`, as TUF specifies). */
export async function signMetadata<T>(signed: T, keys: SigningKey[]): Promise<Envelope<T>> {
  const data = canonicalBytes(signed);
  const signatures = await Promise.all(keys.map(async (k) => ({ keyid: k.keyid, sig: await signBytes(k, data) })));
  return { signed, signatures };
}

/**
 * How many distinct keys of `role` validly signed `signed`. A key id listed twice, a signature
 * repeated under the same key, a key the role does not list, or two key ids that name the same
 * public key each count once at most (U3: a repeated signature cannot reach a threshold).
 */
export async function countValidSignatures(
  signed: unknown,
  signatures: { keyid: string; sig: string }[],
  keys: Record<string, PublicKey>,
  role: RoleKeys,
): Promise<number> {
  const data = canonicalBytes(signed);
  const allowed = new Set(role.keyids);
  const counted = new Set<string>();
  const seenKeys = new Set<string>();
  for (const { keyid, sig } of signatures) {
    const key = keys[keyid];
    if (!allowed.has(keyid) || counted.has(keyid) || !key) continue;
    const material = `${key.keytype}:${key.keyval.public.replace(/\s+/g, '')}`;
    if (seenKeys.has(material)) continue;
    if (await verifyBytes(key, sig, data)) {
      counted.add(keyid);
      seenKeys.add(material);
    }
  }
  return counted.size;
}

/** True when at least `role.threshold` distinct keys of the role signed. */
export async function meetsThreshold(
  signed: unknown,
  signatures: { keyid: string; sig: string }[],
  keys: Record<string, PublicKey>,
  role: RoleKeys,
): Promise<boolean> {
  return (await countValidSignatures(signed, signatures, keys, role)) >= role.threshold;
}
