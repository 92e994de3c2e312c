import { join } from 'node:path';
import {
  abortRollout,
  loadRepoState,
  measureRollout,
  openPostgresStorage,
  openSqliteStorage,
  pauseRollout,
  rolloutStatuses,
  startRollout,
  type RolloutDecision,
  type RolloutFigures,
  type RolloutStatus,
  type StorageAdapter,
} from '@outpost/server';
import type { Command, Io } from '../cli.js';
import { UsageError } from '../cli.js';
import { signersFor } from '../repo/keys.js';
import { parse, parseExpires, required } from '../repo/options.js';

/** Rollout actions sign channel pointers: the online keys only. */
const ONLINE = ['channels', 'snapshot', 'timestamp'] as const;

const usage = `usage: outpost rollout start  --repo <dir> --keys <dir> --name <model> --channel <name> --version <v> [storage] [--json]
       outpost rollout status [--repo <dir>] [--name <model>] [--channel <name>] [storage] [--json]
       outpost rollout pause  --repo <dir> --name <model> --channel <name> [storage] [--json]
       outpost rollout abort  --repo <dir> --keys <dir> --name <model> --channel <name> [--reason <text>] [storage] [--json]

A canary rollout that promotes or aborts itself. The version's rollout plan is signed with its
release (outpost publish --rollout-plan); the rollout controller in outpost serve
(--rollout-keys) follows it: it widens the channel step by step while the canary's telemetry
holds the plan's thresholds, and points the channel back at the previous version for every
device when one is breached. Every decision is logged with its figures in the telemetry storage.

  start   point the channel at --version at the plan's first step, the channel's current
          version staying on for the other devices (and where an abort goes); on a paused
          rollout of that version, resume it
  status  each rollout: plan, state, current step, the canary's figures now, the last decisions
  pause   the controller leaves the rollout where it is until start resumes it
  abort   every device back on the previous version now

options:
  --keys <dir>       the online keys (channels, snapshot, timestamp); never root or targets
  --data <dir>       the SQLite telemetry database's folder, as outpost serve (default ./outpost-data)
  --database <url>   PostgreSQL instead (postgres://…); or OUTPOST_DATABASE_URL
  --expires <e>      metadata lifetimes (see outpost init)
  --json             print the result as JSON`;

const bp = (n: number | null) => (n === null ? 'n/a' : `${(n / 100).toFixed(2)}%`);

/** One line of a rollout's figures. */
export function describeFigures(f: RolloutFigures): string {
  const p95 =
    f.p95Ms === null
      ? 'p95 n/a'
      : `p95 ${f.p95Ms.toFixed(2)} ms` + (f.p95RatioPct === null ? '' : ` (${f.p95RatioPct}% of previous)`);
  const drift = f.driftPsiMilli === null ? '' : `, drift PSI ${(f.driftPsiMilli / 1000).toFixed(3)}`;
  const shadow =
    f.shadowAgreementBp == null ? '' : `, shadow agreement ${bp(f.shadowAgreementBp)} of ${f.shadowRuns ?? 0} runs`;
  return (
    `${f.devices} devices, ${f.runs} runs, ${f.errors} errors (${bp(f.errorBp)}), ` +
    `${f.rolledBack}/${f.activated + f.rolledBack} activations rolled back, ${p95}${drift}${shadow}`
  );
}

function describeDecision(d: RolloutDecision): string {
  const when = new Date(d.timeMs).toISOString();
  return `${when}  ${d.action.padEnd(8)} ${bp(d.fromBp)} → ${bp(d.toBp)}  ${d.reason}: ${d.message}`;
}

async function openStorage(v: { data: string; database?: string }, io: Io): Promise<StorageAdapter> {
  const database = v.database ?? ((io.env ?? process.env).OUTPOST_DATABASE_URL || undefined);
  if (database !== undefined) {
    if (!/^postgres(ql)?:\/\//.test(database)) throw new UsageError('--database must be a postgres:// URL');
    return openPostgresStorage(database);
  }
  return openSqliteStorage(join(v.data, 'outpost.db'));
}

/** `outpost rollout`. */
export const rolloutCommand: Command = {
  name: 'rollout',
  summary: 'canary rollouts that widen or abort themselves by their signed plan (start, status, pause, abort)',
  usage,
  async run(args, io) {
    const [action, ...rest] = args;
    if (!['start', 'status', 'pause', 'abort'].includes(action ?? '')) {
      throw new UsageError('rollout needs start, status, pause or abort');
    }
    const { values: v } = parse(rest, {
      repo: { type: 'string' },
      keys: { type: 'string' },
      name: { type: 'string' },
      channel: { type: 'string' },
      version: { type: 'string' },
      reason: { type: 'string' },
      data: { type: 'string', default: './outpost-data' },
      database: { type: 'string' },
      expires: { type: 'string' },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo');
    if (action !== 'status') required(v, 'name', 'channel');
    if (action === 'start') required(v, 'version', 'keys');
    if (action === 'abort') required(v, 'keys');
    const repo = v.repo!;
    const expiry = parseExpires(v.expires);
    const storage = await openStorage(v, io);
    try {
      if (action === 'status') {
        const statuses = (await rolloutStatuses(await loadRepoState(repo), storage)).filter(
          (s) => (v.name === undefined || s.model === v.name) && (v.channel === undefined || s.channel === v.channel),
        );
        const withFigures = await Promise.all(
          statuses.map(async (s) => ({
            ...s,
            figures:
              s.stepStartedMs !== null && s.previous !== null
                ? await measureRollout(storage, { ...s, previous: s.previous }, s.stepStartedMs)
                : null,
          })),
        );
        if (v.json) io.out(JSON.stringify({ rollouts: withFigures }, null, 2));
        else if (!withFigures.length) io.out('no channel points at a version with a rollout plan');
        else for (const s of withFigures) io.out(describeStatus(s));
        return 0;
      }
      const signers = action === 'pause' ? {} : await signersFor(v.keys!, await loadRepoState(repo), ONLINE);
      const o = { repo, storage, signers, channel: v.channel!, model: v.name!, expiry };
      const d =
        action === 'start'
          ? await startRollout({ ...o, version: v.version! })
          : action === 'pause'
            ? await pauseRollout(o)
            : await abortRollout({ ...o, ...(v.reason ? { reason: v.reason } : {}) });
      io.out(v.json ? JSON.stringify(d, null, 2) : `${d.channel}: ${d.model}@${d.version} ${describeDecision(d)}`);
      return 0;
    } finally {
      await storage.close();
    }
  },
};

function describeStatus(s: RolloutStatus & { figures: RolloutFigures | null }): string {
  const lines = [
    `${s.channel}: ${s.model} ${s.version} at ${bp(s.rolloutBp)} (others: ${s.previous ?? 'nothing'}), ${s.state}` +
      (s.step >= 0 ? `, step ${s.step + 1} of ${s.plan.steps.length}` : ''),
    `  plan: ${s.plan.steps.map(bp).join(' → ')}; at least ${s.plan.minDevices} devices and ${s.plan.minRuns} runs a step` +
      (s.plan.minStepSeconds ? `, ${s.plan.minStepSeconds} s` : ''),
    `  abort above: errors ${bp(s.plan.maxErrorBp ?? null)}, rollbacks ${bp(s.plan.maxRollbackBp ?? null)}, ` +
      `p95 ${s.plan.maxP95RatioPct === undefined ? 'n/a' : `${s.plan.maxP95RatioPct}%`} of previous, ` +
      `drift PSI ${s.plan.maxDriftPsiMilli === undefined ? 'n/a' : (s.plan.maxDriftPsiMilli / 1000).toFixed(3)}` +
      (s.plan.minShadowAgreementBp === undefined ? '' : `; below shadow agreement ${bp(s.plan.minShadowAgreementBp)}`),
  ];
  if (s.figures) lines.push(`  this step: ${describeFigures(s.figures)}`);
  if (s.decisions.length)
    lines.push('  decisions:', ...s.decisions.slice(0, 5).map((d) => `    ${describeDecision(d)}`));
  return lines.join('\n');
}
