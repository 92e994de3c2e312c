import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  importSigningKey,
  keyId,
  signBytes,
  utf8,
  verifyBytes,
  type PublicKey,
  type RepoState,
  type RoleName,
  type Signers,
  type SigningKey,
} from '@outpost/protocol';

/**
 * Keys on disk, as `outpost keygen` writes them: `<role>.key` (PKCS#8 PEM, mode 0600) and
 * `<role>.pub.json` (the TUF key object with its key id) beside it; further keys of a role are
 * `<role>-2.key`, `<role>-3.key`…
 */

/** The base file name of a role's n-th key (1-based). */
export const keyFileBase = (role: RoleName, n: number) => (n === 1 ? role : `${role}-${n}`);

/** The public key file's contents. */
export interface PublicKeyFile extends PublicKey {
  keyid: string;
}

async function readKey(dir: string, base: string): Promise<SigningKey> {
  const pubFile = join(dir, `${base}.pub.json`);
  const { keyid, ...pub } = JSON.parse(await readFile(pubFile, 'utf8')) as PublicKeyFile;
  if (keyid !== (await keyId(pub))) throw new Error(`${pubFile}: its keyid does not match the key`);
  const key = await importSigningKey(await readFile(join(dir, `${base}.key`), 'utf8'), pub);
  // A private key that is not the public key's other half would sign metadata nobody accepts.
  const probe = utf8('outpost key check');
  if (!(await verifyBytes(pub, await signBytes(key, probe), probe))) {
    throw new Error(`${join(dir, `${base}.key`)} is not the private half of ${pubFile}`);
  }
  return key;
}

/** Every key of the given roles found in `dir` (a role with none gets an empty list). */
export async function readKeys(dir: string, roles: readonly RoleName[]): Promise<Record<RoleName, SigningKey[]>> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    throw new Error(`cannot read the keys folder ${dir}`);
  }
  const out = {} as Record<RoleName, SigningKey[]>;
  for (const role of roles) {
    const bases = names
      .map((n) => new RegExp(`^(${role}(?:-[0-9]+)?)\\.key$`).exec(n)?.[1])
      .filter((b) => b !== undefined)
      .sort();
    out[role] = await Promise.all(bases.map((b) => readKey(dir, b)));
  }
  return out;
}

/** Which keys a repository trusts for a role, and how many must sign. */
function trustedFor(state: RepoState, role: RoleName): { keyids: string[]; threshold: number } {
  if (role !== 'channels') return state.root.signed.roles[role];
  const d = state.targets.signed.delegations?.roles.find((r) => r.name === 'channels');
  if (!d) throw new Error('this repository delegates no channels role');
  return d;
}

/**
 * The signers for a change to `state`, from the keys in `dir`: only the roles named, and of
 * their keys only those the repository lists, at least its threshold of them.
 */
export async function signersFor(dir: string, state: RepoState, roles: readonly RoleName[]): Promise<Signers> {
  const keys = await readKeys(dir, roles);
  const signers: Signers = {};
  for (const role of roles) {
    const { keyids, threshold } = trustedFor(state, role);
    const usable = keys[role].filter((k) => keyids.includes(k.keyid));
    if (usable.length < threshold) {
      const found = keys[role].length;
      throw new Error(
        `signing ${role} metadata needs ${threshold} of this repository's ${role} key(s); ${dir} has ${usable.length}` +
          (found > usable.length
            ? ` (${found - usable.length} other ${role} key(s) there are not this repository's)`
            : ''),
      );
    }
    signers[role] = usable;
  }
  return signers;
}
