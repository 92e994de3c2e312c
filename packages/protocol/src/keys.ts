import { canonicalBytes } from './canonical.js';
import { derToP1363, fromHex, fromPem, p1363ToDer, toHex, toPem } from './encoding.js';
import { sha256Hex } from './hash.js';
import type { PublicKey } from './metadata.js';

/**
 * Signing algorithms. `ecdsa` is ECDSA P-256 with SHA-256 (every current browser and Node);
 * `ed25519` needs Chromium 137+, Firefox 129+, Safari 17+ or Node 20.
 */
export type KeyAlgorithm = 'ecdsa' | 'ed25519';

/** A key pair held by a signer (the CLI, the server's online role). */
export interface SigningKey {
  /** TUF key id: hex SHA-256 of the canonical public key object. */
  keyid: string;
  /** The public half as it appears in root or delegating metadata. */
  public: PublicKey;
  privateKey: CryptoKey;
}

const ECDSA = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const ED25519 = { name: 'Ed25519' } as const;

/** TUF key id of a public key (SHA-256 over its canonical JSON, as the specification defines it). */
export async function keyId(key: PublicKey): Promise<string> {
  return sha256Hex(canonicalBytes(key));
}

async function publicOf(alg: KeyAlgorithm, key: CryptoKey): Promise<PublicKey> {
  if (alg === 'ecdsa') {
    const spki = new Uint8Array(await crypto.subtle.exportKey('spki', key));
    return { keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256', keyval: { public: toPem(spki, 'PUBLIC KEY') } };
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', key));
  return { keytype: 'ed25519', scheme: 'ed25519', keyval: { public: toHex(raw) } };
}

/** Generates a fresh key pair with an extractable private key (the CLI writes it to a file). */
export async function generateKey(alg: KeyAlgorithm = 'ecdsa'): Promise<SigningKey> {
  const pair = (await crypto.subtle.generateKey(alg === 'ecdsa' ? ECDSA : ED25519, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const pub = await publicOf(alg, pair.publicKey);
  return { keyid: await keyId(pub), public: pub, privateKey: pair.privateKey };
}

/** The private key as PKCS#8 PEM, the form `outpost keygen` writes (never printed). */
export async function exportPrivateKey(key: SigningKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey('pkcs8', key.privateKey));
  return toPem(der, 'PRIVATE KEY');
}

/**
 * Reads back a key written by {@link exportPrivateKey}. The public half is stored next to it (the
 * PKCS#8 form does not always carry it), so both are passed in.
 */
export async function importSigningKey(privatePem: string, pub: PublicKey): Promise<SigningKey> {
  const alg = algorithmOf(pub);
  if (!alg) throw new TypeError(`Unsupported key type ${pub.keytype}/${pub.scheme}`);
  const privateKey = await crypto.subtle.importKey(
    'pkcs8',
    fromPem(privatePem, 'PRIVATE KEY'),
    alg === 'ecdsa' ? ECDSA : ED25519,
    false,
    ['sign'],
  );
  return { keyid: await keyId(pub), public: pub, privateKey };
}

function algorithmOf(pub: PublicKey): KeyAlgorithm | null {
  if (pub.keytype === 'ecdsa' && pub.scheme === 'ecdsa-sha2-nistp256') return 'ecdsa';
  if (pub.keytype === 'ed25519' && pub.scheme === 'ed25519') return 'ed25519';
  return null;
}

/** Signs bytes; the signature is hex in the encoding TUF tools verify (DER for ECDSA). */
export async function signBytes(key: SigningKey, data: Uint8Array<ArrayBuffer>): Promise<string> {
  if (key.public.keytype === 'ecdsa') {
    const raw = new Uint8Array(await crypto.subtle.sign(ECDSA_SIGN, key.privateKey, data));
    return toHex(p1363ToDer(raw));
  }
  return toHex(new Uint8Array(await crypto.subtle.sign(ED25519, key.privateKey, data)));
}

const imported = new WeakMap<PublicKey, Promise<CryptoKey | null>>();

function importPublic(pub: PublicKey): Promise<CryptoKey | null> {
  let key = imported.get(pub);
  if (!key) {
    const alg = algorithmOf(pub);
    key = (async () => {
      try {
        if (alg === 'ecdsa') {
          return await crypto.subtle.importKey('spki', fromPem(pub.keyval.public, 'PUBLIC KEY'), ECDSA, false, [
            'verify',
          ]);
        }
        if (alg === 'ed25519') {
          return await crypto.subtle.importKey('raw', fromHex(pub.keyval.public), ED25519, false, ['verify']);
        }
      } catch {
        // A key this platform cannot import verifies nothing (Ed25519 on an older browser).
      }
      return null;
    })();
    imported.set(pub, key);
  }
  return key;
}

/**
 * True when `sigHex` is a valid signature of `data` by `pub`. Anything malformed (bad hex, bad
 * DER, an unsupported key type) is simply not a valid signature.
 */
export async function verifyBytes(pub: PublicKey, sigHex: string, data: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const key = await importPublic(pub);
  if (!key) return false;
  let sig: Uint8Array<ArrayBuffer> | null;
  try {
    sig = fromHex(sigHex);
  } catch {
    return false;
  }
  if (pub.keytype === 'ecdsa') {
    sig = derToP1363(sig, 32);
    if (!sig) return false;
    return crypto.subtle.verify(ECDSA_SIGN, key, sig, data);
  }
  return crypto.subtle.verify(ED25519, key, sig, data);
}

/** Whether this platform's WebCrypto can generate Ed25519 keys. */
export async function supportsEd25519(): Promise<boolean> {
  try {
    await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify']);
    return true;
  } catch {
    return false;
  }
}
