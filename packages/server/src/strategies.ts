import { mulberry32 } from '@outpost/core';
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
import { histogramQuantile, type DeviceFigures, type StorageAdapter } from './storage.js';

/**
 * Shadow runs and A/B tests on a channel: both are fields of the signed channel pointer, so the
 * online channels key sets them (choosing among versions the offline targets key signed), and
 * devices follow at their next update check. The A/B figures compare the two arms from the fleet's
 * telemetry, with 95% confidence intervals clustered by device (see {@link compareArms}).
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
  /** Bounds of the interval; null without a figure, or with a figure from fewer than 2 devices. */
  low: number | null;
  high: number | null;
}

/** One arm's figures. */
export interface ArmFigures {
  version: string;
  /** Devices on the channel last seen on this version. */
  devices: number;
  /** Devices that reported runs (or errors) of this version in the window: what the intervals resample. */
  reportingDevices: number;
  runs: number;
  errors: number;
  /** errors / (runs + errors) over the arm's devices. */
  errorRate: Interval;
  /** Run latency quantiles, ms, from the arm's merged histograms. */
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
  /** What makes these intervals unreliable, in words (an arm with too few devices); empty when nothing does. */
  notes: string[];
}

/** Bootstrap resamples of each arm's devices. */
const RESAMPLES = 500;
/** Fewer devices than this in an arm and its intervals are noted as unreliable. */
const MIN_DEVICES = 10;
/** Each arm draws from its own fixed seed: the same telemetry gives the same intervals. */
const SEEDS = { a: 0x0a0b1e55, b: 0x0b0b1e55 } as const;

const AB_METHOD =
  `95% intervals clustered by device, since runs of one device are not independent (one slow ` +
  `device can send thousands of slow runs): each arm's devices are resampled with replacement ` +
  `(${RESAMPLES} bootstrap resamples, fixed seeds, so the same telemetry gives the same intervals); ` +
  `on each resample the error rate is Σerrors / Σ(runs + errors) and p50/p95 are read from the sum of ` +
  `the resampled devices' run-duration histograms, and an interval is the 2.5th to 97.5th percentile ` +
  `of the figure over the resamples. B − A pairs the arms' resamples (arms resampled independently). ` +
  `The quantiles are no finer than the histogram's buckets, which the intervals do not measure (an arm ` +
  `whose runs all fall in one bucket gets a zero-width one); with fewer than ${MIN_DEVICES} devices in ` +
  `an arm the intervals are unreliable (see the notes).`;

const none: Interval = { value: null, low: null, high: null };

/** The q-quantile of ascending `xs` (linear between closest ranks); null when empty. */
function quantileOf(xs: readonly number[], q: number): number | null {
  if (xs.length === 0) return null;
  const pos = (xs.length - 1) * q;
  const lo = xs[Math.floor(pos)]!;
  const hi = xs[Math.ceil(pos)]!;
  return lo + (hi - lo) * (pos - Math.floor(pos));
}

type Figure = 'errorRate' | 'p50' | 'p95';
const FIGURES: readonly Figure[] = ['errorRate', 'p50', 'p95'];

/** One arm's figures from all its devices, and from each bootstrap resample of them (null where undefined). */
interface ArmSample {
  devices: number;
  runs: number;
  errors: number;
  timedRuns: number;
  value: Record<Figure, number | null>;
  resampled: Record<Figure, (number | null)[]>;
}

function sampleArm(devices: readonly DeviceFigures[], seed: number): ArmSample {
  // Sorted, so that the same devices give the same resamples whatever order they came in.
  const ds = [...devices].sort((x, y) => (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0));
  const n = ds.length;
  const bounds = ds.find((d) => d.runHistogram)?.runHistogram?.bounds ?? [];
  const tried = Float64Array.from(ds, (d) => d.runs + d.errors);
  const failed = Float64Array.from(ds, (d) => d.errors);
  // The histograms' non-empty buckets only (a device's runs fill a few): device i's are
  // bucket[at[i]..at[i + 1]) with counts count[…].
  const at = new Int32Array(n + 1);
  const nonEmpty: [number, number][] = [];
  ds.forEach((d, i) => {
    d.runHistogram?.buckets.forEach((c, b) => c > 0 && nonEmpty.push([b, c]));
    at[i + 1] = nonEmpty.length;
  });
  const bucket = Int32Array.from(nonEmpty, ([b]) => b);
  const count = Float64Array.from(nonEmpty, ([, c]) => c);
  const sum = new Float64Array(bounds.length + 1);
  /** The figures of the devices drawn `times[i]` times each. */
  const figuresOf = (times: Int32Array | null): Record<Figure, number | null> => {
    sum.fill(0);
    let e = 0;
    let t = 0;
    for (let i = 0; i < n; i++) {
      const w = times ? times[i]! : 1;
      if (w === 0) continue;
      e += w * failed[i]!;
      t += w * tried[i]!;
      for (let k = at[i]!; k < at[i + 1]!; k++) {
        const b = bucket[k]!;
        sum[b] = sum[b]! + w * count[k]!;
      }
    }
    const buckets = Array.from(sum);
    return {
      errorRate: t > 0 ? e / t : null,
      p50: histogramQuantile(bounds, buckets, 0.5),
      p95: histogramQuantile(bounds, buckets, 0.95),
    };
  };
  const value = figuresOf(null);
  const timedRuns = sum.reduce((x, y) => x + y, 0);
  const resampled: Record<Figure, (number | null)[]> = { errorRate: [], p50: [], p95: [] };
  // One device says nothing about the spread between devices: no resamples, no interval.
  if (n >= 2) {
    const random = mulberry32(seed);
    const times = new Int32Array(n);
    for (let r = 0; r < RESAMPLES; r++) {
      times.fill(0);
      for (let j = 0; j < n; j++) times[Math.floor(random() * n)]!++;
      const f = figuresOf(times);
      for (const k of FIGURES) resampled[k].push(f[k]);
    }
  }
  return {
    devices: n,
    runs: ds.reduce((x, d) => x + d.runs, 0),
    errors: ds.reduce((x, d) => x + d.errors, 0),
    timedRuns,
    value,
    resampled,
  };
}

/** A figure with the 2.5th-97.5th percentile interval of its resampled values. */
function percentileInterval(value: number | null, resampled: readonly (number | null)[]): Interval {
  if (value === null) return none;
  const xs = resampled.filter((x): x is number => x !== null).sort((x, y) => x - y);
  return { value, low: quantileOf(xs, 0.025), high: quantileOf(xs, 0.975) };
}

/**
 * Both arms' figures and B minus A, each with a 95% interval clustered by device: a device's runs
 * are not independent of each other, so the bootstrap resamples whole devices (each arm's
 * independently, from a fixed seed: deterministic), recomputing the error rate (Σerrors /
 * Σ(runs + errors)) and p50/p95 (from the summed histograms) on each resample; the intervals are
 * the 2.5th and 97.5th percentiles over the resamples, and B − A pairs resample i of A with
 * resample i of B. Each arm's devices come from {@link StorageAdapter.deviceFigures} (one version,
 * histograms in one set of bounds). About 30-50 ms for two arms of 1,000 devices (2 shared cores).
 */
export function compareArms(
  a: { version: string; devices: readonly DeviceFigures[] },
  b: { version: string; devices: readonly DeviceFigures[] },
): {
  a: Omit<ArmFigures, 'version' | 'devices' | 'shadowAgreement'>;
  b: Omit<ArmFigures, 'version' | 'devices' | 'shadowAgreement'>;
  diff: AbStatus['diff'];
  notes: string[];
} {
  const sa = sampleArm(a.devices, SEEDS.a);
  const sb = sampleArm(b.devices, SEEDS.b);
  const arm = (s: ArmSample) => ({
    reportingDevices: s.devices,
    runs: s.runs,
    errors: s.errors,
    errorRate: percentileInterval(s.value.errorRate, s.resampled.errorRate),
    p50: percentileInterval(s.value.p50, s.resampled.p50),
    p95: percentileInterval(s.value.p95, s.resampled.p95),
    timedRuns: s.timedRuns,
  });
  const difference = (k: Figure): Interval => {
    const va = sa.value[k];
    const vb = sb.value[k];
    if (va === null || vb === null) return none;
    const ds: (number | null)[] = [];
    for (let r = 0; r < Math.min(sa.resampled[k].length, sb.resampled[k].length); r++) {
      const x = sa.resampled[k][r];
      const y = sb.resampled[k][r];
      ds.push(x === null || x === undefined || y === null || y === undefined ? null : y - x);
    }
    return percentileInterval(vb - va, ds);
  };
  const notes: string[] = [];
  for (const [name, version, s] of [
    ['A', a.version, sa],
    ['B', b.version, sb],
  ] as const) {
    if (s.devices >= MIN_DEVICES) continue;
    const what = s.devices < 2 ? 'no interval can be drawn from' : 'the intervals are unreliable with';
    notes.push(
      `arm ${name} (${version}): ${s.devices} device${s.devices === 1 ? '' : 's'} reported runs, ` +
        `fewer than ${MIN_DEVICES}: ${what} so few (its figures' and the differences').`,
    );
  }
  return {
    a: arm(sa),
    b: arm(sb),
    diff: { errorRate: difference('errorRate'), p50: difference('p50'), p95: difference('p95') },
    notes,
  };
}

/**
 * Every channel pointer of the repository that runs an A/B test, with both arms' figures since
 * `sinceMs` and their differences (see {@link compareArms}). Arm A is the pointer's version, arm B
 * `ab.version`; a device's figures count for the arm of the version it reported.
 */
export async function abFigures(state: RepoState, storage: StorageAdapter, sinceMs: number): Promise<AbStatus[]> {
  const out: AbStatus[] = [];
  for (const t of Object.values(state.channels.signed.targets)) {
    const p = t.custom?.outpost;
    if (p?.kind !== 'channel' || !p.ab) continue;
    const q = { sinceMs, model: p.model };
    const [figures, versions, onA, onB] = await Promise.all([
      storage.versionFigures(q),
      storage.versions(q),
      storage.deviceFigures({ ...q, version: p.version }),
      storage.deviceFigures({ ...q, version: p.ab.version }),
    ]);
    const devicesOn = (v: string) =>
      versions.filter((r) => r.channel === p.channel && r.version === v).reduce((n, r) => n + Number(r.devices), 0);
    const shadowOf = (v: string) => figures.find((x) => x.version === v)?.shadowAgreementMean ?? null;
    const c = compareArms({ version: p.version, devices: onA }, { version: p.ab.version, devices: onB });
    out.push({
      channel: p.channel,
      model: p.model,
      shareBp: p.ab.shareBp,
      a: { version: p.version, devices: devicesOn(p.version), ...c.a, shadowAgreement: shadowOf(p.version) },
      b: { version: p.ab.version, devices: devicesOn(p.ab.version), ...c.b, shadowAgreement: shadowOf(p.ab.version) },
      diff: c.diff,
      method: AB_METHOD,
      notes: c.notes,
    });
  }
  return out;
}
