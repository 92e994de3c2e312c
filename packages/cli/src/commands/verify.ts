import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  TrustedSet,
  chunkHashes,
  refreshMetadata,
  releaseOf,
  sha256Hex,
  targetUrlPath,
  type RepoState,
  type TargetFile,
} from '@outpost/protocol';
import { fsMetadataFetcher, loadRepoState } from '@outpost/server';
import type { Command } from '../cli.js';
import { progressBar } from '../progress.js';
import { parse, required } from '../repo/options.js';

const usage = `usage: outpost verify --repo <dir> [--root <file>] [--json]

Checks a repository as a client would, and more: every root version from the trusted root,
timestamp, snapshot, targets and channels (signatures, thresholds, pinned versions, lengths,
hashes, expiry), then every target file (length, SHA-256, chunk hashes) and that channel
pointers name published versions. Exits 1 with the list of problems if anything is wrong.

options:
  --root <file>   the trusted root apps ship (default: <repo>/metadata/1.root.json)
  --json          print { ok, problems, … } as JSON`;

const ROLES = ['root', 'timestamp', 'snapshot', 'targets', 'channels'] as const;

async function checkTarget(repo: string, path: string, t: TargetFile, onBytes: (n: number) => void): Promise<string[]> {
  const rel = targetUrlPath(path, t.hashes.sha256);
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = new Uint8Array(await readFile(join(repo, rel)));
  } catch {
    onBytes(t.length);
    return [`${rel}: missing (target ${path})`];
  }
  onBytes(t.length);
  if (bytes.length !== t.length) return [`${rel}: ${bytes.length} bytes, ${t.length} signed`];
  if ((await sha256Hex(bytes)) !== t.hashes.sha256) return [`${rel}: SHA-256 does not match the signed hash`];
  const info = t.custom?.outpost;
  if (info?.kind === 'model-file') {
    const chunks = await chunkHashes(bytes, info.chunkSize);
    const bad = chunks.findIndex((c, i) => c !== info.chunks[i]);
    if (bad >= 0 || chunks.length !== info.chunks.length) {
      return [`${rel}: chunk ${bad >= 0 ? bad : chunks.length} does not match its signed chunk hash`];
    }
  }
  return [];
}

/** `outpost verify`. */
export const verifyCommand: Command = {
  name: 'verify',
  summary: 'check every signature, hash and length in a repository',
  usage,
  async run(args, io) {
    const { values: v } = parse(args, {
      repo: { type: 'string' },
      root: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo');
    const repo = v.repo!;
    const rootFile = v.root ?? join(repo, 'metadata', '1.root.json');
    const problems: string[] = [];
    const now = Date.now();
    let state: RepoState | undefined;
    let trustedRoot: Uint8Array | undefined;
    try {
      trustedRoot = new Uint8Array(await readFile(rootFile));
    } catch {
      problems.push(`${rootFile}: cannot read the trusted root`);
    }
    if (trustedRoot) {
      // Signatures, thresholds, pins, lengths and hashes of the whole chain, naming the file at fault.
      try {
        state = await loadRepoState(repo, { trustedRoot });
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (state) {
      for (const role of ROLES) {
        const expires = state[role].signed.expires;
        if (Date.parse(expires) <= now)
          problems.push(`${role} metadata v${state[role].signed.version} expired at ${expires}`);
      }
      // And exactly what a client does (TUF's update cycle with this moment's time).
      if (!problems.length) {
        let last = '';
        try {
          await refreshMetadata(
            await TrustedSet.fromRoot(trustedRoot!),
            fsMetadataFetcher(repo, (f) => (last = f)),
            now,
          );
        } catch (e) {
          problems.push(`metadata/${last}: ${(e as Error).message}`);
        }
      }
    }
    let targetCount = 0;
    let targetBytes = 0;
    if (state) {
      const all = [...Object.entries(state.targets.signed.targets), ...Object.entries(state.channels.signed.targets)];
      targetCount = all.length;
      const total = all.reduce((n, [, t]) => n + t.length, 0);
      const bar = progressBar(io, 'hashing', v.json);
      try {
        for (const [path, t] of all) {
          problems.push(...(await checkTarget(repo, path, t, (n) => bar.update((targetBytes += n), total))));
        }
      } finally {
        bar.stop();
      }
      for (const [path, t] of Object.entries(state.channels.signed.targets)) {
        const c = t.custom?.outpost;
        if (c?.kind !== 'channel') continue;
        for (const version of [c.version, c.previous]) {
          if (version !== undefined && !releaseOf(state.targets.signed, c.model, version)) {
            problems.push(`${path}: points at ${c.model}@${version}, which targets does not sign`);
          }
        }
      }
    }
    const versions = state ? Object.fromEntries(ROLES.map((r) => [r, state[r].signed.version])) : undefined;
    if (v.json) {
      io.out(
        JSON.stringify({ ok: !problems.length, problems, versions, targets: targetCount, bytes: targetBytes }, null, 2),
      );
    } else if (problems.length) {
      io.err(`${repo}: ${problems.length} problem(s)`);
      for (const p of problems) io.err(`  ${p}`);
    } else {
      const vs = ROLES.map((r) => `${r} v${versions![r]}`).join(', ');
      io.out(`${repo} is valid: ${vs}; ${targetCount} target file(s), ${targetBytes} bytes, hashes match`);
    }
    return problems.length ? 1 : 0;
  },
};
