import { join } from 'node:path';
import {
  abFigures,
  loadRepoState,
  openPostgresStorage,
  openSqliteStorage,
  startAb,
  startShadow,
  stopAb,
  stopShadow,
  type AbStatus,
  type ArmFigures,
  type Interval,
  type StorageAdapter,
} from '@outpost/server';
import type { ChannelInfo } from '@outpost/protocol';
import type { Command, Io } from '../cli.js';
import { UsageError } from '../cli.js';
import { describePointer } from '../repo/channel.js';
import { signersFor } from '../repo/keys.js';
import { parse, parseExpires, parseRolloutBp, required } from '../repo/options.js';

/** Shadow and A/B actions sign channel pointers: the online keys only. */
const ONLINE = ['channels', 'snapshot', 'timestamp'] as const;

const shadowUsage = `usage: outpost shadow start --repo <dir> --keys <dir> --name <model> --channel <name> --version <v> [--sample-bp <n>] [--json]
       outpost shadow stop  --repo <dir> --keys <dir> --name <model> --channel <name> [--json]

A shadow: devices on the channel also run --version on a sample of their real inputs, in a
worker of its own, after the live result is back (never changing or delaying it), and report
how well it agrees with the live model (by the comparison signed with its release: outpost
publish --compare) and its run time against the live one. Inputs never leave the device.
Devices start, move or stop the shadow at their next update check.

options:
  --sample-bp <n>    share of live runs the shadow also runs, basis points (default 1000 = 10%)
  --expires <e>      metadata lifetimes (see outpost init)
  --json             print the new pointer as JSON`;

const abUsage = `usage: outpost ab start  --repo <dir> --keys <dir> --name <model> --channel <name> --version <v> [--share-bp <n>] [--json]
       outpost ab status [--repo <dir>] [--name <model>] [--channel <name>] [--since <ms>] [storage] [--json]
       outpost ab stop   --repo <dir> --keys <dir> --name <model> --channel <name> [--keep a|b] [--json]

An A/B test: --version runs on arm B, a stable share of the channel's devices (by a bucket of
their install id keyed on the channel, independent of canary buckets); the others (arm A) run
the channel's version. status shows each arm's devices, runs, error rate and p50/p95 latency and
the difference B − A, each with a 95% interval clustered by device (devices resampled; see the
method line).

  start   put --version on arm B for --share-bp of the devices (default 5000); again to re-weight
  status  both arms' figures from the telemetry since --since (default: the last 7 days)
  stop    end the test: --keep a (default) leaves the channel as it was, --keep b points every
          device at arm B's version (arm A's stays as previous, for a rollback)

options:
  --data <dir>       the SQLite telemetry database's folder, as outpost serve (default ./outpost-data)
  --database <url>   PostgreSQL instead (postgres://…); or OUTPOST_DATABASE_URL
  --expires <e>      metadata lifetimes (see outpost init)
  --json             print the result as JSON`;

async function openStorage(v: { data: string; database?: string }, io: Io): Promise<StorageAdapter> {
  const database = v.database ?? ((io.env ?? process.env).OUTPOST_DATABASE_URL || undefined);
  if (database !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(database)) throw new UsageError('--database must be a postgres:// URL');
    return openPostgresStorage(database);
  }
  return openSqliteStorage(join(v.data, 'outpost.db'));
}

function printPointer(io: Io, json: boolean, verb: string, p: ChannelInfo): number {
  io.out(json ? JSON.stringify(p, null, 2) : `${verb} ${describePointer(p)}${describeExtras(p)}`);
  return 0;
}

const bp = (n: number) => `${(n / 100).toFixed(2)}%`;

function describeExtras(p: ChannelInfo): string {
  const out: string[] = [];
  if (p.shadow) out.push(`shadow ${p.shadow.version} on ${bp(p.shadow.sampleBp)} of runs`);
  if (p.ab) out.push(`A/B: ${p.ab.version} on ${bp(p.ab.shareBp)} of devices (arm B)`);
  return out.length ? `; ${out.join('; ')}` : '';
}

/** `outpost shadow`. */
export const shadowCommand: Command = {
  name: 'shadow',
  summary: 'run a candidate version beside the live one on a sample of inputs and report agreement (start, stop)',
  usage: shadowUsage,
  async run(args, io) {
    const [action, ...rest] = args;
    if (action !== 'start' && action !== 'stop') throw new UsageError('shadow needs start or stop');
    const { values: v } = parse(rest, {
      repo: { type: 'string' },
      keys: { type: 'string' },
      name: { type: 'string' },
      channel: { type: 'string' },
      version: { type: 'string' },
      'sample-bp': { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo', 'keys', 'name', 'channel');
    const signers = await signersFor(v.keys!, await loadRepoState(v.repo!), ONLINE);
    const o = { repo: v.repo!, signers, channel: v.channel!, model: v.name!, expiry: parseExpires(v.expires) };
    if (action === 'stop') return printPointer(io, v.json, 'shadow stopped:', await stopShadow(o));
    required(v, 'version');
    const sampleBp = parseRolloutBp(v['sample-bp'] ?? '1000');
    const p = await startShadow({ ...o, shadow: { version: v.version!, sampleBp } });
    return printPointer(io, v.json, 'shadow started:', p);
  },
};

const fmt = (i: Interval, f: (x: number) => string) =>
  i.value === null
    ? 'n/a'
    : `${f(i.value)} [${i.low === null ? 'n/a' : f(i.low)}, ${i.high === null ? 'n/a' : f(i.high)}]`;
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const ms = (x: number) => `${x.toFixed(2)} ms`;

function describeArm(name: string, a: ArmFigures): string {
  return (
    `  arm ${name} ${a.version}: ${a.devices} devices (${a.reportingDevices} reporting), ${a.runs} runs, errors ${fmt(a.errorRate, pct)}, ` +
    `p50 ${fmt(a.p50, ms)}, p95 ${fmt(a.p95, ms)}` +
    (a.shadowAgreement === null ? '' : `, shadow agreement ${pct(a.shadowAgreement)}`)
  );
}

function describeAb(t: AbStatus): string {
  return [
    `${t.channel}: ${t.model}, arm B on ${bp(t.shareBp)} of devices`,
    describeArm('A', t.a),
    describeArm('B', t.b),
    `  B − A: errors ${fmt(t.diff.errorRate, pct)}, p50 ${fmt(t.diff.p50, ms)}, p95 ${fmt(t.diff.p95, ms)}`,
    ...t.notes.map((n) => `  note: ${n}`),
    `  ${t.method}`,
  ].join('\n');
}

/** `outpost ab`. */
export const abCommand: Command = {
  name: 'ab',
  summary: 'A/B tests: two versions by stable device bucket, compared with confidence intervals (start, status, stop)',
  usage: abUsage,
  async run(args, io) {
    const [action, ...rest] = args;
    if (!['start', 'status', 'stop'].includes(action ?? '')) throw new UsageError('ab needs start, status or stop');
    const { values: v } = parse(rest, {
      repo: { type: 'string' },
      keys: { type: 'string' },
      name: { type: 'string' },
      channel: { type: 'string' },
      version: { type: 'string' },
      'share-bp': { type: 'string' },
      keep: { type: 'string' },
      since: { type: 'string' },
      data: { type: 'string', default: './outpost-data' },
      database: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo');
    if (action === 'status') {
      const sinceMs = v.since === undefined ? Date.now() - 7 * 86_400_000 : Number(v.since);
      if (!Number.isFinite(sinceMs)) throw new UsageError('--since is milliseconds since the epoch');
      const storage = await openStorage(v, io);
      try {
        const tests = (await abFigures(await loadRepoState(v.repo!), storage, sinceMs)).filter(
          (t) => (v.name === undefined || t.model === v.name) && (v.channel === undefined || t.channel === v.channel),
        );
        if (v.json) io.out(JSON.stringify({ sinceMs, tests }, null, 2));
        else if (!tests.length) io.out('no channel runs an A/B test');
        else for (const t of tests) io.out(describeAb(t));
        return 0;
      } finally {
        await storage.close();
      }
    }
    required(v, 'keys', 'name', 'channel');
    const signers = await signersFor(v.keys!, await loadRepoState(v.repo!), ONLINE);
    const o = { repo: v.repo!, signers, channel: v.channel!, model: v.name!, expiry: parseExpires(v.expires) };
    if (action === 'stop') {
      const keep = v.keep ?? 'a';
      if (keep !== 'a' && keep !== 'b') throw new UsageError('--keep is a or b');
      return printPointer(io, v.json, 'A/B stopped:', await stopAb({ ...o, keep }));
    }
    required(v, 'version');
    const shareBp = parseRolloutBp(v['share-bp'] ?? '5000');
    return printPointer(io, v.json, 'A/B started:', await startAb({ ...o, ab: { version: v.version!, shareBp } }));
  },
};
