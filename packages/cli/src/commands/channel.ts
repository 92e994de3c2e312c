import { releaseOf, setChannel, type ChannelInfo } from '@outpost/protocol';
import { loadRepoState, withRepoLock, writeRepoChanges } from '@outpost/server';
import type { Command, Io } from '../cli.js';
import { UsageError } from '../cli.js';
import { currentPointer, describePointer, pointChannel, rollbackTarget } from '../repo/channel.js';
import { signersFor } from '../repo/keys.js';
import { parse, parseExpires, parseRolloutBp, required } from '../repo/options.js';

/** Signing a channel pointer needs the online keys only: channels, snapshot, timestamp. */
const ONLINE = ['channels', 'snapshot', 'timestamp'] as const;

const promoteUsage = `usage: outpost promote --repo <dir> --keys <dir> --name <model> --version <v> --channel <name> [--rollout-bp <n>] [--expires <role=dur,...>] [--json]

Points a channel at a published version, for all devices or a share of them (a staged
rollout; run again with a larger --rollout-bp to widen it). Needs only the channels, snapshot
and timestamp keys: it can choose among signed versions, never add one.

options:
  --rollout-bp <n>   share of the channel's devices in basis points (default 10000 = all); the
                     others stay on the version the channel was on
  --expires <e>      metadata lifetimes (see outpost init)
  --json             print the new pointer as JSON`;

const rollbackUsage = `usage: outpost rollback --repo <dir> --keys <dir> --name <model> --channel <name> [--to <version>] [--expires <role=dur,...>] [--json]

Points a channel back to an earlier version for every device: --to, else the version the
channel was on before (its "previous"), else the version published before the current one.
Needs only the channels, snapshot and timestamp keys.`;

async function repoArgs(args: string[], extra: 'promote' | 'rollback') {
  const { values: v } = parse(args, {
    repo: { type: 'string' },
    keys: { type: 'string' },
    name: { type: 'string' },
    channel: { type: 'string' },
    expires: { type: 'string' },
    json: { type: 'boolean', default: false },
    ...(extra === 'promote'
      ? { version: { type: 'string' }, 'rollout-bp': { type: 'string' } }
      : { to: { type: 'string' } }),
  } as const);
  required(v, 'repo', 'keys', 'name', 'channel');
  return v as typeof v & { version?: string; 'rollout-bp'?: string; to?: string };
}

async function writePointer(
  repo: string,
  keys: string,
  io: Io,
  json: boolean,
  make: (
    state: Awaited<ReturnType<typeof loadRepoState>>,
    signers: Awaited<ReturnType<typeof signersFor>>,
  ) => Promise<{
    pointer: Omit<ChannelInfo, 'kind'>;
    result: Parameters<typeof writeRepoChanges>[1];
  }>,
  verb: string,
): Promise<number> {
  const pointer = await withRepoLock(repo, async () => {
    const state = await loadRepoState(repo);
    const signers = await signersFor(keys, state, ONLINE);
    const { pointer, result } = await make(state, signers);
    await writeRepoChanges(repo, result);
    return pointer;
  });
  io.out(json ? JSON.stringify({ kind: 'channel', ...pointer }, null, 2) : `${verb} ${describePointer(pointer)}`);
  return 0;
}

/** `outpost promote`. */
export const promoteCommand: Command = {
  name: 'promote',
  summary: 'point a channel at a published version (staged rollout in basis points)',
  usage: promoteUsage,
  async run(args, io) {
    const v = await repoArgs(args, 'promote');
    required(v, 'version');
    const rolloutBp = parseRolloutBp(v['rollout-bp']);
    const expiry = parseExpires(v.expires);
    return writePointer(
      v.repo!,
      v.keys!,
      io,
      v.json,
      async (state, signers) => {
        if (!releaseOf(state.targets.signed, v.name!, v.version!)) {
          throw new Error(`${v.name}@${v.version} is not published in ${v.repo} (outpost publish first)`);
        }
        const to = { channel: v.channel!, model: v.name!, version: v.version!, rolloutBp };
        return pointChannel(state, to, signers, Date.now(), expiry);
      },
      'promoted',
    );
  },
};

/** `outpost rollback`. */
export const rollbackCommand: Command = {
  name: 'rollback',
  summary: 'point a channel back to an earlier version',
  usage: rollbackUsage,
  async run(args, io) {
    const v = await repoArgs(args, 'rollback');
    const expiry = parseExpires(v.expires);
    return writePointer(
      v.repo!,
      v.keys!,
      io,
      v.json,
      async (state, signers) => {
        const cur = currentPointer(state, v.channel!, v.name!);
        if (!cur) throw new Error(`channel ${v.channel} has no version of ${v.name} to roll back from`);
        const target = v.to ?? rollbackTarget(state, cur);
        if (!target) throw new UsageError(`${v.name} has no version before ${cur.version}; name one with --to`);
        if (target === cur.version && cur.rolloutBp >= 10000) {
          throw new Error(`channel ${v.channel} is already on ${v.name}@${target}`);
        }
        if (!releaseOf(state.targets.signed, v.name!, target)) {
          throw new Error(`${v.name}@${target} is not published in ${v.repo}`);
        }
        const pointer = { channel: v.channel!, model: v.name!, version: target, rolloutBp: 10000 };
        return { pointer, result: await setChannel(state, pointer, signers, Date.now(), expiry) };
      },
      'rolled back',
    );
  },
};
