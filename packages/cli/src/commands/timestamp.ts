import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { metadataFile, refreshTimestamp } from '@outpost/protocol';
import { loadRepoState, withRepoLock, writeRepoChanges } from '@outpost/server';
import type { Command } from '../cli.js';
import { signersFor } from '../repo/keys.js';
import { parse, parseExpires, required } from '../repo/options.js';

const usage = `usage: outpost timestamp --repo <dir> --keys <dir> [--expires timestamp=<dur>] [--json]

Re-signs timestamp.json so clients keep accepting the repository when nothing was published
(it expires after a day by default: run this from cron, e.g. every few hours). Needs only the
timestamp key.`;

/** `outpost timestamp`. */
export const timestampCommand: Command = {
  name: 'timestamp',
  summary: 're-sign the timestamp so the repository does not expire (run it from cron)',
  usage,
  async run(args, io) {
    const { values: v } = parse(args, {
      repo: { type: 'string' },
      keys: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo', 'keys');
    const expiry = parseExpires(v.expires);
    const repo = v.repo!;
    const ts = await withRepoLock(repo, async () => {
      const state = await loadRepoState(repo);
      const signers = await signersFor(v.keys!, state, ['timestamp']);
      const snapFile = join(repo, 'metadata', metadataFile('snapshot', state.snapshot.signed.version));
      const result = await refreshTimestamp(
        state,
        new Uint8Array(await readFile(snapFile)),
        signers,
        Date.now(),
        expiry,
      );
      await writeRepoChanges(repo, result);
      return result.state.timestamp.signed;
    });
    io.out(
      v.json
        ? JSON.stringify({ version: ts.version, expires: ts.expires }, null, 2)
        : `timestamp v${ts.version}, expires ${ts.expires}`,
    );
    return 0;
  },
};
