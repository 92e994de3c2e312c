import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_EXPIRY,
  channelPath,
  metadataFile,
  refreshTimestamp,
  rolloutPlanOf,
  setChannel,
  type ChannelInfo,
  type Expiry,
  type RepoState,
  type RolloutPlan,
  type ShadowInfo,
  type Signers,
} from '@outpost/protocol';
import { loadRepoState, withRepoLock, writeRepoChanges } from './repo-fs.js';
import type { RolloutAction, RolloutDecision, RolloutFigures, StorageAdapter } from './storage.js';

/**
 * The rollout controller: it follows the rollout plan each canary version carries in its signed
 * release, measures the canary from the fleet's telemetry, and widens the channel step by step,
 * completes it, or aborts it (the channel back on the previous version for every device). It
 * holds the online keys only (channels, snapshot, timestamp): it can move a channel's share or
 * pointer among versions the offline targets key signed, never add or change a model or a plan.
 *
 * It also keeps the timestamp fresh. Its state is the signed channel pointers plus its own decisions log: a rollout is running
 * when the last decision about the channel's current version is `start`, `resume` or a step
 * taken (`widen`, `wait`), and a step's window starts at the decision that began it.
 */

/** Options of {@link RolloutController}. */
export interface RolloutControllerOptions {
  /** The repository folder (holding `metadata/` and `targets/`). */
  repo: string;
  /** The telemetry storage it measures canaries in and logs its decisions to. */
  storage: StorageAdapter;
  /** The online keys: channels, snapshot and timestamp. Targets or root keys are refused. */
  signers: Signers;
  /**
   * How often every running rollout is evaluated, ms.
   * @defaultValue 60000
   */
  intervalMs?: number;
  /** Metadata lifetimes of what it signs (see `outpost init`). */
  expiry?: Expiry;
  /** Failures of a timed evaluation (a repository lock held by a publish is retried next time). */
  onError?: (err: Error) => void;
  /** @defaultValue Date.now */
  now?: () => number;
}

/** Defaults of {@link RolloutControllerOptions}. */
export const ROLLOUT_DEFAULTS = { intervalMs: 60_000 } as const;

/** What a plan says to do with a canary, given its figures. */
export interface RolloutVerdict {
  action: Extract<RolloutAction, 'wait' | 'widen' | 'complete' | 'abort'>;
  /** The canary's share after the action (0 for an abort: every device on the previous version). */
  toBp: number;
  reason: string;
  message: string;
}

const pct = (bp: number | null) => (bp === null ? 'n/a' : `${(bp / 100).toFixed(2)}%`);

/**
 * Judges one step of a canary against its plan. Aborts need enough evidence for the figure at
 * fault (rollback share once `minDevices` attempts; error rate, p95 ratio and drift once
 * `minRuns` runs); widening needs every minimum met, every threshold held and the bake time past.
 */
export function judgeRollout(
  plan: RolloutPlan,
  rolloutBp: number,
  f: RolloutFigures,
  stepElapsedMs: number,
  /** Whether the channel runs the canary as a shadow too: then its agreement is judged before widening. */
  shadowed = false,
): RolloutVerdict {
  const abort = (reason: string, message: string): RolloutVerdict => ({ action: 'abort', toBp: 0, reason, message });
  const wait = (reason: string, message: string): RolloutVerdict => ({
    action: 'wait',
    toBp: rolloutBp,
    reason,
    message,
  });
  const attempts = f.activated + f.rolledBack;
  if (plan.maxRollbackBp !== undefined && attempts >= plan.minDevices && (f.rollbackBp ?? 0) > plan.maxRollbackBp) {
    return abort(
      'rollback-rate',
      `${f.rolledBack} of ${attempts} activations rolled back (${pct(f.rollbackBp)} > ${pct(plan.maxRollbackBp)})`,
    );
  }
  const attempted = f.runs + f.errors;
  if (attempted >= plan.minRuns) {
    if (plan.maxErrorBp !== undefined && (f.errorBp ?? 0) > plan.maxErrorBp) {
      return abort(
        'error-rate',
        `${f.errors} errors in ${attempted} runs (${pct(f.errorBp)} > ${pct(plan.maxErrorBp)})`,
      );
    }
    if (plan.maxP95RatioPct !== undefined && f.p95RatioPct !== null && f.p95RatioPct > plan.maxP95RatioPct) {
      return abort(
        'p95-ratio',
        `p95 ${f.p95Ms?.toFixed(2)} ms is ${f.p95RatioPct}% of the previous version's ${f.previousP95Ms?.toFixed(2)} ms (> ${plan.maxP95RatioPct}%)`,
      );
    }
    if (plan.maxDriftPsiMilli !== undefined && f.driftPsiMilli !== null && f.driftPsiMilli > plan.maxDriftPsiMilli) {
      return abort(
        'drift-psi',
        `mean drift PSI ${(f.driftPsiMilli / 1000).toFixed(3)} over ${f.driftWindows} windows (> ${(plan.maxDriftPsiMilli / 1000).toFixed(3)})`,
      );
    }
  }
  // Shadow runs are a sample of the runs of the devices not on the canary: their own evidence bar.
  const shadowRuns = f.shadowRuns ?? 0;
  const agreeBp = f.shadowAgreementBp ?? null;
  if (plan.minShadowAgreementBp !== undefined && shadowRuns >= plan.minRuns && agreeBp !== null) {
    if (agreeBp < plan.minShadowAgreementBp) {
      return abort(
        'shadow-agreement',
        `as a shadow it agreed with the live model on ${pct(agreeBp)} of ${shadowRuns} inputs (< ${pct(plan.minShadowAgreementBp)})`,
      );
    }
  }
  if (f.devices < plan.minDevices) {
    return wait('too-few-devices', `${f.devices} of ${plan.minDevices} devices on the canary`);
  }
  if (attempted < plan.minRuns) return wait('too-few-runs', `${attempted} of ${plan.minRuns} runs on the canary`);
  if (plan.minShadowAgreementBp !== undefined && shadowed && shadowRuns < plan.minRuns) {
    return wait('too-few-shadow-runs', `${shadowRuns} of ${plan.minRuns} shadow runs of the canary compared`);
  }
  const bakeMs = (plan.minStepSeconds ?? 0) * 1000;
  if (stepElapsedMs < bakeMs) {
    return wait('baking', `healthy; step lasts ${plan.minStepSeconds} s, ${Math.floor(stepElapsedMs / 1000)} s so far`);
  }
  const next = plan.steps.find((s) => s > rolloutBp) ?? 10000;
  const health =
    `${f.devices} devices, ${attempted} runs, errors ${pct(f.errorBp)}, rollbacks ${pct(f.rollbackBp)}, ` +
    `p95 ratio ${f.p95RatioPct === null ? 'n/a' : `${f.p95RatioPct}%`}` +
    (agreeBp === null ? '' : `, shadow agreement ${pct(agreeBp)}`);
  return next >= 10000
    ? { action: 'complete', toBp: 10000, reason: 'healthy', message: `${health}: every device` }
    : { action: 'widen', toBp: next, reason: 'healthy', message: `${health}: widened to ${pct(next)}` };
}

const ratioBp = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10000) : null);

/**
 * The canary's figures since `sinceMs`: devices on the channel last seen on it, its runs and
 * errors, activations and rollbacks, p95 against the previous version's in the same window,
 * and its drift windows.
 */
export async function measureRollout(
  storage: StorageAdapter,
  pointer: Pick<ChannelInfo, 'channel' | 'model' | 'version' | 'previous'>,
  sinceMs: number,
): Promise<RolloutFigures> {
  const q = { sinceMs, model: pointer.model };
  const [versions, figures, updates] = await Promise.all([
    storage.versions(q),
    storage.versionFigures(q),
    storage.updates(q),
  ]);
  const devices = versions
    .filter((v) => v.channel === pointer.channel && v.version === pointer.version)
    .reduce((n, v) => n + Number(v.devices), 0);
  const canary = figures.find((f) => f.version === pointer.version);
  const previous = pointer.previous === undefined ? undefined : figures.find((f) => f.version === pointer.previous);
  const u = updates.find((r) => r.version === pointer.version);
  const activated = u?.events['activated'] ?? 0;
  const rolledBack = u?.events['rolled-back'] ?? 0;
  const runs = canary?.runs ?? 0;
  const errors = canary?.errors ?? 0;
  const p95Ms = canary?.p95 ?? null;
  const previousP95Ms = previous?.p95 ?? null;
  return {
    sinceMs,
    devices,
    runs,
    errors,
    errorBp: ratioBp(errors, runs + errors),
    activated,
    rolledBack,
    rollbackBp: ratioBp(rolledBack, activated + rolledBack),
    p95Ms,
    previousP95Ms,
    p95RatioPct: p95Ms !== null && previousP95Ms ? Math.round((p95Ms / previousP95Ms) * 100) : null,
    driftWindows: canary?.driftWindows ?? 0,
    driftPsiMilli: canary?.driftPsiMean == null ? null : Math.round(canary.driftPsiMean * 1000),
    shadowRuns: canary?.shadowRuns ?? 0,
    shadowAgreementBp: canary?.shadowAgreementMean == null ? null : Math.round(canary.shadowAgreementMean * 10000),
  };
}

/** Where a channel's rollout stands. */
export interface RolloutStatus {
  channel: string;
  model: string;
  version: string;
  previous: string | null;
  rolloutBp: number;
  plan: RolloutPlan;
  /** Index in `plan.steps` of the current share; -1 when the share is not one of the steps. */
  step: number;
  /**
   * `running` (the controller acts on it), `paused`, `complete`, `aborted`, or `not-started`
   * (the channel points at a version with a plan that `rollout start` did not begin).
   */
  state: 'running' | 'paused' | 'complete' | 'aborted' | 'not-started';
  /** When the current step began (its figures are measured from then); null unless running or paused. */
  stepStartedMs: number | null;
  /** The newest decisions about this channel and model, newest first. */
  decisions: RolloutDecision[];
  /** The channel's shadow, when it names one. */
  shadow: ShadowInfo | null;
}

/** Decisions that begin a step (its measurement window starts there). */
const STEP_STARTS: ReadonlySet<RolloutAction> = new Set(['start', 'widen', 'resume']);

/** The channel pointers of a repository whose current version has a signed rollout plan, with their state. */
export async function rolloutStatuses(state: RepoState, storage: StorageAdapter): Promise<RolloutStatus[]> {
  const out: RolloutStatus[] = [];
  for (const t of Object.values(state.channels.signed.targets)) {
    const p = t.custom?.outpost;
    if (p?.kind !== 'channel') continue;
    const plan = rolloutPlanOf(state.targets.signed, p.model, p.version);
    if (!plan) continue;
    const decisions = await storage.decisions({ channel: p.channel, model: p.model, limit: 20 });
    const own = decisions.filter((d) => d.version === p.version);
    const last = own.find((d) => d.action !== 'wait');
    const stepStart = own.find((d) => STEP_STARTS.has(d.action));
    let status: RolloutStatus['state'];
    if (!last) status = p.rolloutBp >= 10000 ? 'complete' : 'not-started';
    else if (last.action === 'abort') status = p.rolloutBp >= 10000 ? 'aborted' : 'not-started';
    else if (last.action === 'complete' || p.rolloutBp >= 10000) status = 'complete';
    else if (last.action === 'pause') status = 'paused';
    else status = 'running';
    out.push({
      channel: p.channel,
      model: p.model,
      version: p.version,
      previous: p.previous ?? null,
      rolloutBp: p.rolloutBp,
      plan,
      step: plan.steps.indexOf(p.rolloutBp),
      state: status,
      stepStartedMs: status === 'running' || status === 'paused' ? (stepStart?.timeMs ?? null) : null,
      decisions,
      shadow: p.shadow ?? null,
    });
  }
  return out;
}

/** Is `a` still the pointer `b` (nobody moved the channel between measuring and acting)? */
const samePointer = (a: ChannelInfo | undefined, b: Pick<ChannelInfo, 'version' | 'rolloutBp' | 'previous'>) =>
  a !== undefined && a.version === b.version && a.rolloutBp === b.rolloutBp && a.previous === b.previous;

/** Options of the operator's rollout actions ({@link startRollout}, {@link pauseRollout}, {@link abortRollout}). */
export interface RolloutActionOptions {
  repo: string;
  storage: StorageAdapter;
  /** The online keys (channels, snapshot, timestamp). */
  signers: Signers;
  channel: string;
  model: string;
  expiry?: Expiry;
  now?: number;
}

/**
 * The shadow and A/B arm of a pointer, to carry over when its share or version moves; a shadow
 * of `dropShadowOf` is left out.
 */
export function extrasOf(p: ChannelInfo, dropShadowOf?: string): Pick<ChannelInfo, 'shadow' | 'ab'> {
  const out: Pick<ChannelInfo, 'shadow' | 'ab'> = {};
  if (p.shadow && p.shadow.version !== dropShadowOf) out.shadow = p.shadow;
  if (p.ab) out.ab = p.ab;
  return out;
}

function currentPointer(state: RepoState, channel: string, model: string): ChannelInfo | undefined {
  const o = state.channels.signed.targets[channelPath(channel, model)]?.custom?.outpost;
  return o?.kind === 'channel' ? o : undefined;
}

/**
 * Points the channel at `version`, a version whose signed release carries a rollout plan, at the
 * plan's first step, `previous` being the version the channel runs now, and logs `start`. On a
 * paused rollout of the same version it resumes instead (`resume`, a fresh measurement window).
 */
export async function startRollout(o: RolloutActionOptions & { version: string }): Promise<RolloutDecision> {
  return withRepoLock(o.repo, async () => {
    const now = o.now ?? Date.now();
    const state = await loadRepoState(o.repo);
    const plan = rolloutPlanOf(state.targets.signed, o.model, o.version);
    if (!plan) throw new Error(`${o.model}@${o.version} has no signed rollout plan (outpost publish --rollout-plan)`);
    const cur = currentPointer(state, o.channel, o.model);
    if (cur?.version === o.version && cur.rolloutBp < 10000) {
      const st = (await rolloutStatuses(state, o.storage)).find((s) => s.channel === o.channel && s.model === o.model);
      if (st?.state === 'running') throw new Error(`${o.channel}: the rollout of ${o.model}@${o.version} is running`);
      if (st?.state === 'paused') {
        const d = decision(now, cur, 'resume', cur.rolloutBp, cur.rolloutBp, 'operator', 'resumed by the operator');
        await o.storage.addDecision(d);
        return d;
      }
    }
    if (cur?.version === o.version && cur.rolloutBp >= 10000) {
      throw new Error(`${o.channel} already runs ${o.model}@${o.version} on every device`);
    }
    if (!cur) throw new Error(`${o.channel} has no version of ${o.model} yet: a canary needs one to compare with`);
    // The version the whole channel runs: devices outside a partial rollout never had its version.
    const previous = cur.rolloutBp >= 10000 ? cur.version : (cur.previous ?? cur.version);
    if (previous === o.version) throw new Error(`${o.model}@${o.version} is what the channel would fall back to`);
    const pointer = {
      ...extrasOf(cur),
      channel: o.channel,
      model: o.model,
      version: o.version,
      rolloutBp: plan.steps[0]!,
      previous,
    };
    await writeRepoChanges(o.repo, await setChannel(state, pointer, o.signers, now, o.expiry));
    const d = decision(
      o.now ?? Date.now(),
      pointer,
      'start',
      0,
      pointer.rolloutBp,
      'operator',
      `started at ${pct(pointer.rolloutBp)}`,
    );
    await o.storage.addDecision(d);
    return d;
  });
}

/** Stops the controller acting on the channel's rollout, leaving the share where it is (`pause`). */
export async function pauseRollout(o: RolloutActionOptions): Promise<RolloutDecision> {
  const state = await loadRepoState(o.repo);
  const st = (await rolloutStatuses(state, o.storage)).find((s) => s.channel === o.channel && s.model === o.model);
  if (st?.state !== 'running') throw new Error(`${o.channel} has no running rollout of ${o.model}`);
  const d = decision(
    o.now ?? Date.now(),
    st,
    'pause',
    st.rolloutBp,
    st.rolloutBp,
    'operator',
    'paused by the operator',
  );
  await o.storage.addDecision(d);
  return d;
}

/** Points the channel back at the rollout's previous version for every device, and logs `abort`. */
export async function abortRollout(o: RolloutActionOptions & { reason?: string }): Promise<RolloutDecision> {
  return withRepoLock(o.repo, async () => {
    const now = o.now ?? Date.now();
    const state = await loadRepoState(o.repo);
    const cur = currentPointer(state, o.channel, o.model);
    if (!cur || cur.rolloutBp >= 10000 || cur.previous === undefined) {
      throw new Error(`${o.channel} has no partial rollout of ${o.model} to abort`);
    }
    const clock = () => o.now ?? Date.now();
    return applyAbort(o, state, cur, now, clock, 'operator', o.reason ?? 'aborted by the operator', null);
  });
}

function decision(
  timeMs: number,
  p: Pick<ChannelInfo, 'channel' | 'model' | 'version'> & { previous?: string | null },
  action: RolloutAction,
  fromBp: number,
  toBp: number,
  reason: string,
  message: string,
  figures: RolloutFigures | null = null,
): RolloutDecision {
  return {
    timeMs,
    channel: p.channel,
    model: p.model,
    version: p.version,
    previous: p.previous ?? null,
    action,
    fromBp,
    toBp,
    reason,
    message,
    figures,
  };
}

async function applyAbort(
  o: { repo: string; storage: StorageAdapter; signers: Signers; expiry?: Expiry },
  state: RepoState,
  cur: ChannelInfo,
  now: number,
  clock: () => number,
  reason: string,
  message: string,
  figures: RolloutFigures | null,
): Promise<RolloutDecision> {
  // A shadow of the aborted version stops too: nobody is to spend compute on it any more.
  const extras = extrasOf(cur, cur.version);
  const back = { ...extras, channel: cur.channel, model: cur.model, version: cur.previous!, rolloutBp: 10000 };
  await writeRepoChanges(o.repo, await setChannel(state, back, o.signers, now, o.expiry));
  // Stamped when the channel changed, which is when devices can see it.
  const d = decision(clock(), cur, 'abort', cur.rolloutBp, 0, reason, message, figures);
  await o.storage.addDecision(d);
  return d;
}

/** Runs the plans of every running rollout in a repository, on a timer and on demand. */
export class RolloutController {
  readonly #o: RolloutControllerOptions;
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<RolloutDecision[]> | undefined;

  constructor(options: RolloutControllerOptions) {
    for (const role of ['root', 'targets'] as const) {
      if (options.signers[role]?.length) {
        throw new TypeError(`The rollout controller holds the online keys only; it was given the ${role} key`);
      }
    }
    for (const role of ['channels', 'snapshot', 'timestamp'] as const) {
      if (!options.signers[role]?.length) throw new TypeError(`The rollout controller needs the ${role} key`);
    }
    this.#o = options;
  }

  /** Evaluates every rollout every `intervalMs`. */
  start(): void {
    if (this.#timer) return;
    const ms = this.#o.intervalMs ?? ROLLOUT_DEFAULTS.intervalMs;
    this.#timer = setInterval(() => {
      this.evaluate().catch((e: unknown) => this.#o.onError?.(e instanceof Error ? e : new Error(String(e))));
    }, ms);
  }

  /** Stops the timer and waits for an evaluation under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /**
   * Evaluates every running rollout now, once (an evaluation already under way is awaited
   * instead of started twice). Resolves to the decisions stored.
   */
  evaluate(): Promise<RolloutDecision[]> {
    this.#running ??= this.#evaluate().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #evaluate(): Promise<RolloutDecision[]> {
    const { repo, storage } = this.#o;
    const clock = this.#o.now ?? Date.now;
    const state = await loadRepoState(repo);
    const out: RolloutDecision[] = [];
    for (const st of await rolloutStatuses(state, storage)) {
      if (st.state !== 'running' || st.previous === null) continue;
      // Read after the statuses: a step that began while they were read is not judged from the past.
      const now = clock();
      const sinceMs = st.stepStartedMs ?? now;
      const pointer = { channel: st.channel, model: st.model, version: st.version, previous: st.previous };
      const figures = await measureRollout(storage, pointer, sinceMs);
      const v = judgeRollout(st.plan, st.rolloutBp, figures, now - sinceMs, st.shadow?.version === st.version);
      if (v.action === 'wait') {
        // A wait is logged when its reason changes, not at every evaluation.
        const last = st.decisions.find((d) => d.version === st.version);
        if (last?.action === 'wait' && last.reason === v.reason) continue;
        const d = decision(now, st, 'wait', st.rolloutBp, st.rolloutBp, v.reason, v.message, figures);
        await storage.addDecision(d);
        out.push(d);
        continue;
      }
      const d = await withRepoLock(repo, async () => {
        const fresh = await loadRepoState(repo);
        const cur = currentPointer(fresh, st.channel, st.model);
        if (!samePointer(cur, { ...st, previous: st.previous ?? undefined })) return null;
        if (v.action === 'abort') return applyAbort(this.#o, fresh, cur!, now, clock, v.reason, v.message, figures);
        const to = {
          // Once every device runs the canary, shadowing it compares it with itself: it stops.
          ...extrasOf(cur!, v.action === 'complete' ? st.version : undefined),
          channel: st.channel,
          model: st.model,
          version: st.version,
          rolloutBp: v.toBp,
          previous: st.previous!,
        };
        await writeRepoChanges(repo, await setChannel(fresh, to, this.#o.signers, now, this.#o.expiry));
        // Stamped when the channel changed: the next step's window starts there.
        const made = decision(clock(), st, v.action, st.rolloutBp, v.toBp, v.reason, v.message, figures);
        await storage.addDecision(made);
        return made;
      });
      if (d) out.push(d);
    }
    await this.#freshenTimestamp(state, clock);
    return out;
  }

  /**
   * Re-signs the timestamp once half its lifetime has passed: the controller holds that key
   * anyway, so a repository it runs needs no `outpost timestamp` cron job.
   */
  async #freshenTimestamp(state: RepoState, clock: () => number): Promise<void> {
    const lifetimeMs = (this.#o.expiry?.timestamp ?? DEFAULT_EXPIRY.timestamp) * 1000;
    const due = (s: RepoState) => Date.parse(s.timestamp.signed.expires) - clock() < lifetimeMs / 2;
    if (!due(state)) return;
    const { repo } = this.#o;
    await withRepoLock(repo, async () => {
      const fresh = await loadRepoState(repo);
      if (!due(fresh)) return;
      const snap = join(repo, 'metadata', metadataFile('snapshot', fresh.snapshot.signed.version));
      const bytes = new Uint8Array(await readFile(snap));
      await writeRepoChanges(repo, await refreshTimestamp(fresh, bytes, this.#o.signers, clock(), this.#o.expiry));
    });
  }
}
