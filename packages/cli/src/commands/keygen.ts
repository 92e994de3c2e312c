import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exportPrivateKey, generateKey, supportsEd25519, type KeyAlgorithm } from '@outpost/protocol';
import type { Command } from '../cli.js';
import { UsageError } from '../cli.js';
import { keyFileBase, type PublicKeyFile } from '../repo/keys.js';
import { parse, parseRoles, required } from '../repo/options.js';

const usage = `usage: outpost keygen --out <dir> [--algorithm ecdsa|ed25519] [--roles <roles>] [--force] [--json]

Generates one key pair per role of a model repository. Each private key is written as
<role>.key (PKCS#8 PEM, mode 0600) and never printed; its public key (the TUF key object and
its keyid) as <role>.pub.json beside it.

options:
  --out <dir>          the keys folder (created if missing)
  --algorithm <a>      ecdsa (ECDSA P-256, every browser; default) or ed25519
  --roles <roles>      roles to make keys for, comma-separated, each optionally with a count:
                       root:3 makes root.key, root-2.key, root-3.key (for thresholds above 1)
                       (default: root,targets,snapshot,timestamp,channels)
  --force              replace keys that already exist (the old ones stop signing anything)
  --json               print the result as JSON

Keep root and targets offline; snapshot, timestamp and channels can live where publishing runs.`;

/** `outpost keygen`. */
export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'generate the signing keys of a model repository',
  usage,
  async run(args, io) {
    const { values: v } = parse(args, {
      out: { type: 'string' },
      algorithm: { type: 'string', default: 'ecdsa' },
      roles: { type: 'string' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    required(v, 'out');
    const alg = v.algorithm as KeyAlgorithm;
    if (alg !== 'ecdsa' && alg !== 'ed25519') throw new UsageError('--algorithm must be ecdsa or ed25519');
    if (alg === 'ed25519' && !(await supportsEd25519())) throw new Error('this Node has no Ed25519 in WebCrypto');
    const dir = v.out!;
    const plan = parseRoles(v.roles).flatMap(([role, n]) =>
      Array.from({ length: n }, (_, i) => ({ role, base: join(dir, keyFileBase(role, i + 1)) })),
    );
    if (!v.force) {
      for (const { base } of plan) {
        for (const file of [`${base}.key`, `${base}.pub.json`]) {
          const exists = await access(file).then(
            () => true,
            () => false,
          );
          if (exists) throw new Error(`${file} exists; pass --force to replace this folder's keys`);
        }
      }
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const made = [];
    for (const { role, base } of plan) {
      const key = await generateKey(alg);
      const priv = `${base}.key`;
      await writeFile(priv, await exportPrivateKey(key), { mode: 0o600, flag: v.force ? 'w' : 'wx' });
      await chmod(priv, 0o600); // an existing file keeps its mode on overwrite
      const pub: PublicKeyFile = { keyid: key.keyid, ...key.public };
      await writeFile(`${base}.pub.json`, `${JSON.stringify(pub, null, 2)}\n`, { flag: v.force ? 'w' : 'wx' });
      made.push({ role, keyid: key.keyid, privateKey: priv, publicKey: `${base}.pub.json` });
    }
    if (v.json) {
      io.out(JSON.stringify({ algorithm: alg, keys: made }, null, 2));
    } else {
      for (const k of made)
        io.out(`${k.role.padEnd(9)} ${k.keyid.slice(0, 16)}  ${k.privateKey} (0600)  ${k.publicKey}`);
      io.out(`\n${made.length} ${alg} key pair(s) in ${dir}. Keep root and targets keys offline.`);
    }
    return 0;
  },
};
