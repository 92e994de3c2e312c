import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { initRepository, type RoleName, type SigningKey } from '@outpost/protocol';
import { withRepoLock, writeRepoChanges } from '@outpost/server';
import type { Command } from '../cli.js';
import { readKeys } from '../repo/keys.js';
import { ROLES, parse, parseExpires, parseThresholds, required } from '../repo/options.js';

const usage = `usage: outpost init --repo <dir> --keys <dir> [--threshold <role=n,...>] [--expires <role=dur,...>] [--json]

Creates an empty model repository signed by every key in --keys (see outpost keygen), and
prints the trusted root to ship with apps: <repo>/metadata/1.root.json.

options:
  --repo <dir>         the repository folder (must be empty or missing)
  --keys <dir>         the keys folder: one or more keys for each of root, targets, snapshot,
                       timestamp and channels
  --threshold <t>      signatures each role needs, e.g. root=2,targets=1 (default 1 each)
  --expires <e>        metadata lifetimes, e.g. root=365d,targets=90d,channels=30d,snapshot=7d,
                       timestamp=1d (the defaults); units s, m, h, d
  --json               print the result as JSON`;

/** `outpost init`. */
export const initCommand: Command = {
  name: 'init',
  summary: 'create an empty signed model repository',
  usage,
  async run(args, io) {
    const { values: v } = parse(args, {
      repo: { type: 'string' },
      keys: { type: 'string' },
      threshold: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo', 'keys');
    const thresholds = parseThresholds(v.threshold);
    const expiry = parseExpires(v.expires);
    const repo = v.repo!;
    const existing = await readdir(repo).catch(() => []);
    if (existing.length) throw new Error(`${repo} is not empty; init makes a new repository in an empty folder`);
    const keys = await readKeys(v.keys!, ROLES);
    const roles = {} as Record<RoleName, { keys: SigningKey[]; threshold: number }>;
    for (const role of ROLES) {
      if (keys[role].length < thresholds[role]) {
        throw new Error(
          `${role} needs ${thresholds[role]} key(s), ${v.keys} has ${keys[role].length} (outpost keygen)`,
        );
      }
      roles[role] = { keys: keys[role], threshold: thresholds[role] };
    }
    const result = await initRepository({ roles, now: Date.now(), expiry });
    await mkdir(join(repo, 'metadata'), { recursive: true });
    await mkdir(join(repo, 'targets'), { recursive: true });
    const written = await withRepoLock(repo, () => writeRepoChanges(repo, result));
    const root = join(repo, 'metadata', '1.root.json');
    if (v.json) {
      io.out(JSON.stringify({ repo, trustedRoot: root, written, expires: result.state.root.signed.expires }, null, 2));
      return 0;
    }
    io.out(`created ${repo} (${written.length} metadata files)`);
    io.out(`\ntrusted root: ${root}`);
    io.out(
      [
        'Ship this file with your app: clients trust the repository only through it, and follow',
        'root key rotations from it. Next: outpost publish … --repo ' +
          repo +
          ', then outpost serve --repo ' +
          repo +
          '.',
      ].join('\n'),
    );
    return 0;
  },
};
