import {
  channelPath,
  setChannel,
  type AbInfo,
  type ChannelInfo,
  type Expiry,
  type RepoState,
  type ShadowInfo,
  type Signers,
} from '@outpost/protocol';
import { loadRepoState, withRepoLock, writeRepoChanges } from './repo-fs.js';
import { histogramQuantile, type StorageAdapter, type VersionFigures } from './storage.js';

/**
 * Shadow runs and A/B tests on a channel: both are fields of the signed channel pointer, so the
 * online channels key sets them (choosing among versions the offline targets key signed), and
 * devices follow at their next update check. The A/B figures compare the two arms from the fleet's
 * telemetry, with 95% confidence intervals (normal approximations, see {@link abFigures}).
 */

/** Options of the channel strategy actions. */
export interface StrategyOptions {
  repo: string;
  /** The online keys (channels, snapshot, timestamp). */
  signers: Signers;
  channel: string;
  model: string;
  expiry?: Expiry;
  now?: number;
}

function pointerOf(state: RepoState, channel: string, model: string): ChannelInfo {
  const o = state.channels.signed.targets[channelPath(channel, model)]?.custom?.outpost;
  if (o?.kind !== 'channel') throw new Error(`${channel} has no version of ${model} yet`);
  return o;
}

/** Rewrites the channel pointer with `edit` applied, under the repository lock (re-read there). */
async function editPointer(o: StrategyOptions, edit: (p: ChannelInfo) => ChannelInfo): Promise<ChannelInfo> {
  return withRepoLock(o.repo, async () => {
    const state = await loadRepoState(o.repo);
    const next = edit({ ...pointerOf(state, o.channel, o.model) });
    const pointer: Omit<ChannelInfo, 'kind'> & { kind?: string } = { ...next };
    delete pointer.kind;
    await writeRepoChanges(o.repo, await setChannel(state, pointer, o.signers, o.now ?? Date.now(), o.expiry));
    return next;
  });
}

/**
 * Names `shadow.version` as the channel's shadow at `shadow.sampleBp` of live runs. The version
 * must be signed with a comparison (`outpost publish --compare`); `setChannel` refuses it otherwise.
 */
export function startShadow(o: StrategyOptions & { shadow: ShadowInfo }): Promise<ChannelInfo> {
  return editPointer(o, (p) => {
    if (o.shadow.version === p.version && p.rolloutBp >= 10000 && !p.ab) {
      throw new Error(`${o.channel} runs ${o.model}@${o.shadow.version} live on every device already`);
    }
    return { ...p, shadow: { version: o.shadow.version, sampleBp: o.shadow.sampleBp } };
  });
}

/** Removes the channel's shadow. */
export function stopShadow(o: StrategyOptions): Promise<ChannelInfo> {
  return editPointer(o, (p) => {
    if (!p.shadow) throw new Error(`${o.channel} has no shadow of ${o.model}`);
    delete p.shadow;
    return p;
  });
}

/** Starts (or re-weights) an A/B test: `ab.version` in arm B for `ab.shareBp` of the channel's devices. */
export function startAb(o: StrategyOptions & { ab: AbInfo }): Promise<ChannelInfo> {
  return editPointer(o, (p) => {
    if (o.ab.version === p.version) throw new Error(`arm B must be another version than the channel's ${p.version}`);
    return { ...p, ab: { version: o.ab.version, shareBp: o.ab.shareBp } };
  });
}

/**
 * Ends the A/B test. `keep: 'a'` leaves the channel on arm A; `keep: 'b'` points the whole
 * channel at arm B's version (the arm A version staying as `previous`, for a rollback).
 */
export function stopAb(o: StrategyOptions & { keep: 'a' | 'b' }): Promise<ChannelInfo> {
  return editPointer(o, (p) => {
    if (!p.ab) throw new Error(`${o.channel} runs no A/B test of ${o.model}`);
    const b = p.ab.version;
    delete p.ab;
    if (o.keep === 'a') return p;
    const next: ChannelInfo = { ...p, version: b, rolloutBp: 10000, previous: p.version };
    if (next.shadow?.version === b) delete next.shadow;
    return next;
  });
}

/** A figure with its 95% confidence interval. */
export interface Interval {
  value: number | null;
  low: number | null;
  high: number | null;
}

/** One arm's figures. */
export interface ArmFigures {
  version: string;
  /** Devices on the channel last seen on this version. */
  devices: number;
  runs: number;
  errors: number;
  /** errors / (runs + errors), with a normal-approximation interval. */
  errorRate: Interval;
  /** Run latency quantiles, ms, from the merged histograms, with order-statistic intervals. */
  p50: Interval;
  p95: Interval;
  /** Timed runs the quantiles are read from (the telemetry sample). */
  timedRuns: number;
  /** Mean agreement with the live model of this arm's version run as a shadow, when it was one. */
  shadowAgreement: number | null;
}

/** An A/B test and the difference between its arms (B minus A). */
export interface AbStatus {
  channel: string;
  model: string;
  shareBp: number;
  a: ArmFigures;
  b: ArmFigures;
  /** B minus A, each with a 95% interval; an interval that excludes 0 is a difference at that level. */
  diff: { errorRate: Interval; p50: Interval; p95: Interval };
  /** How the intervals are computed, in words (shown with them). */
  method: string;
}

const Z95 = 1.959964;
const none: Interval = { value: null, low: null, high: null };

/**
 * The q-quantile of a histogram with a 95% interval: the ranks n·q ± z·√(n·q·(1−q)) (the normal
 * approximation of the binomial distribution of the order statistic) read from the same
 * histogram, interpolated within buckets. Distribution-free, but no finer than the buckets.
 */
export function quantileInterval(h: { bounds: number[]; buckets: number[] } | null, q: number): Interval {
  const n = h ? h.buckets.reduce((a, b) => a + b, 0) : 0;
  if (!h || n <= 0) return none;
  const half = Z95 * Math.sqrt(n * q * (1 - q));
  const at = (rank: number) => histogramQuantile(h.bounds, h.buckets, Math.min(1, Math.max(0, rank / n)));
  return { value: at(n * q), low: at(n * q - half), high: at(n * q + half) };
}

/** A proportion k / n with its normal-approximation (Wald) 95% interval, clamped to [0, 1]. */
export function proportionInterval(k: number, n: number): Interval & { se: number | null } {
  if (n <= 0) return { ...none, se: null };
  const p = k / n;
  const se = Math.sqrt((p * (1 - p)) / n);
  return { value: p, low: Math.max(0, p - Z95 * se), high: Math.min(1, p + Z95 * se), se };
}

/**
 * B minus A with a 95% interval from each side's interval, taken as symmetric normal ones:
 * half-widths combined in quadrature (independent arms).
 */
export function differenceInterval(a: Interval, b: Interval): Interval {
  if (a.value === null || b.value === null || a.low === null || a.high === null || b.low === null || b.high === null)
    return none;
  const d = b.value - a.value;
  const half = Math.hypot((a.high - a.low) / 2, (b.high - b.low) / 2);
  return { value: d, low: d - half, high: d + half };
}

function arm(version: string, figures: VersionFigures[], devices: number): ArmFigures {
  const f = figures.find((x) => x.version === version);
  const runs = f?.runs ?? 0;
  const errors = f?.errors ?? 0;
  const { value, low, high } = proportionInterval(errors, runs + errors);
  const errorRate: Interval = { value, low, high };
  return {
    version,
    devices,
    runs,
    errors,
    errorRate,
    p50: quantileInterval(f?.runHistogram ?? null, 0.5),
    p95: quantileInterval(f?.runHistogram ?? null, 0.95),
    timedRuns: f?.timedRuns ?? 0,
    shadowAgreement: f?.shadowAgreementMean ?? null,
  };
}

/**
 * Every channel pointer of the repository that runs an A/B test, with both arms' figures since
 * `sinceMs` and their differences. Arm A is the pointer's version, arm B `ab.version`; a device's
 * figures count for the arm of the version it reported.
 */
export async function abFigures(state: RepoState, storage: StorageAdapter, sinceMs: number): Promise<AbStatus[]> {
  const out: AbStatus[] = [];
  for (const t of Object.values(state.channels.signed.targets)) {
    const p = t.custom?.outpost;
    if (p?.kind !== 'channel' || !p.ab) continue;
    const q = { sinceMs, model: p.model };
    const [figures, versions] = await Promise.all([storage.versionFigures(q), storage.versions(q)]);
    const devicesOn = (v: string) =>
      versions.filter((r) => r.channel === p.channel && r.version === v).reduce((n, r) => n + Number(r.devices), 0);
    const a = arm(p.version, figures, devicesOn(p.version));
    const b = arm(p.ab.version, figures, devicesOn(p.ab.version));
    const ea = proportionInterval(a.errors, a.runs + a.errors);
    const eb = proportionInterval(b.errors, b.runs + b.errors);
    const errorDiff: Interval =
      ea.value === null || eb.value === null
        ? none
        : (() => {
            const d = eb.value - ea.value;
            const half = Z95 * Math.hypot(ea.se ?? 0, eb.se ?? 0);
            return { value: d, low: d - half, high: d + half };
          })();
    out.push({
      channel: p.channel,
      model: p.model,
      shareBp: p.ab.shareBp,
      a,
      b,
      diff: { errorRate: errorDiff, p50: differenceInterval(a.p50, b.p50), p95: differenceInterval(a.p95, b.p95) },
      method:
        '95% intervals, normal approximations: error rates Wald (difference: standard errors in quadrature); ' +
        'p50/p95 from the order statistic’s binomial ranks n·q ± 1.96·√(n·q·(1−q)) on the merged histograms ' +
        '(difference: half-widths in quadrature). Runs are treated as independent; runs of one device are not, ' +
        'so with few devices the intervals are too narrow.',
    });
  }
  return out;
}
