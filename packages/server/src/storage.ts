import type { AttrValue, DeviceInfo, Subject, TelemetryBatch } from './otlp.js';

/** What the dashboard asks about: a time window, optionally one model. */
export interface TelemetryQuery {
  /** Points and events at or after this time (ms since the epoch). */
  sinceMs: number;
  model?: string;
}

/** A device that has sent telemetry. */
export interface DeviceRow extends DeviceInfo {
  firstSeenMs: number;
  lastSeenMs: number;
  batches: number;
}

/** How many devices run a model version on a channel (each device counted at its latest version). */
export interface VersionRow {
  channel: string | null;
  model: string;
  version: string;
  devices: number;
}

/** Run latency of one model / version / backend, from the merged run duration histograms (ms). */
export interface LatencyRow extends Subject {
  runs: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  mean: number | null;
}

/** Runs and errors of one model / version / backend. */
export interface HealthRow extends Subject {
  runs: number;
  errors: number;
  /** errors / (runs + errors), or null with neither. */
  errorRate: number | null;
  errorsByCode: Record<string, number>;
  fallbacks: number;
}

/** Update events of one model version, by kind, and the share of activations rolled back. */
export interface UpdateRow {
  model: string | null;
  version: string | null;
  events: Record<string, number>;
  devices: number;
  /** rolled-back / activated, or null before any activation. */
  rollbackRate: number | null;
}

/** One drift event (a window whose PSI passed the threshold on a device). */
export interface DriftRow extends Subject {
  deviceId: string;
  timeMs: number;
  tensor: string | null;
  psi: number | null;
  kl: number | null;
  attributes: Record<string, AttrValue>;
}

/** What the rollout controller measures of one model version in a window (all backends merged). */
export interface VersionFigures {
  model: string;
  version: string;
  /** Runs that returned. */
  runs: number;
  /** Runs that failed, any code. */
  errors: number;
  /** Runs in the merged run duration histogram (the timed sample). */
  timedRuns: number;
  /** p95 run latency, ms, from the merged histograms; null without timed runs. */
  p95: number | null;
  /** Drift windows closed (every window, not only those that raised an alert). */
  driftWindows: number;
  /** Mean PSI of those windows; null without any. */
  driftPsiMean: number | null;
  /** The merged run duration histogram p95 was read from (ms bounds, counts); null without timed runs. */
  runHistogram: { bounds: number[]; buckets: number[] } | null;
  /** Shadow runs of this version on devices running another (each compared with the live output). */
  shadowRuns: number;
  /** Mean agreement of those runs with the live model (0 to 1); null without any. */
  shadowAgreementMean: number | null;
  /** Mean of shadow run time / live run time over those runs; null without any. */
  shadowRatioMean: number | null;
}

/** Which device figures to read: one model version's, since a time. */
export interface DeviceFiguresQuery {
  /** Points at or after this time (ms since the epoch). */
  sinceMs: number;
  model: string;
  version: string;
}

/**
 * One device's figures of one model version in a window (all backends merged): what the A/B
 * intervals resample, since runs of one device are not independent of each other.
 */
export interface DeviceFigures {
  deviceId: string;
  /** Runs that returned. */
  runs: number;
  /** Runs that failed, any code. */
  errors: number;
  /**
   * The device's merged run duration histogram (ms bounds, counts), in the bounds most of the
   * version's timed runs use (as {@link VersionFigures.runHistogram}), so that the histograms of
   * a version's devices add up; null when the device has no timed runs in those bounds.
   */
  runHistogram: { bounds: number[]; buckets: number[] } | null;
}

/** What the rollout controller (or an operator through the CLI) did to a channel. */
export type RolloutAction = 'start' | 'wait' | 'widen' | 'complete' | 'abort' | 'pause' | 'resume';

/**
 * The figures a rollout decision was taken on: the canary version's, measured since its step
 * began, integers in the plan's units (basis points, percent, thousandths).
 */
export interface RolloutFigures {
  /** Start of the window measured (the step's start), ms since the epoch. */
  sinceMs: number;
  /** Devices on the channel last seen running the canary version. */
  devices: number;
  runs: number;
  errors: number;
  /** errors / (runs + errors) in basis points; null without runs. */
  errorBp: number | null;
  activated: number;
  rolledBack: number;
  /** rolled-back / (activated + rolled-back) in basis points; null before any attempt. */
  rollbackBp: number | null;
  p95Ms: number | null;
  /** p95 of the version devices outside the rollout run, in the same window. */
  previousP95Ms: number | null;
  /** p95Ms / previousP95Ms in percent; null unless both are known. */
  p95RatioPct: number | null;
  driftWindows: number;
  /** Mean drift PSI of the canary's windows, in thousandths; null without any. */
  driftPsiMilli: number | null;
  /** Runs of the canary as a shadow (on devices still on another version), compared with the live output. */
  shadowRuns?: number;
  /** Their mean agreement with the live model, in basis points; null without any. */
  shadowAgreementBp?: number | null;
}

/** One stored rollout decision, with the figures behind it. */
export interface RolloutDecision {
  timeMs: number;
  channel: string;
  model: string;
  /** The canary version the decision is about. */
  version: string;
  /** The version devices outside the rollout run (where an abort goes). */
  previous: string | null;
  action: RolloutAction;
  /** The channel's rollout share before and after, basis points of the canary version. */
  fromBp: number;
  toBp: number;
  /** A stable reason code: `too-few-devices`, `error-rate`, `healthy`, `operator`… */
  reason: string;
  /** The reason in words, with the figures that decided it. */
  message: string;
  figures: RolloutFigures | null;
}

/** Which decisions to read, newest first. */
export interface DecisionQuery {
  sinceMs?: number;
  channel?: string;
  model?: string;
  version?: string;
  /** @defaultValue 100 */
  limit?: number;
}

/** What {@link StorageAdapter.ingest} did with a batch. */
export interface IngestResult {
  /** False when a batch with the same kind and id was stored before (a retry): nothing was written. */
  stored: boolean;
}

/**
 * Where telemetry goes. `ingest` is atomic: the batch id and all its rows commit together or not
 * at all, so an acknowledged batch is never half there, and a retried one is never counted twice.
 */
export interface StorageAdapter {
  ingest(batch: TelemetryBatch): Promise<IngestResult>;
  devices(q: TelemetryQuery): Promise<DeviceRow[]>;
  versions(q: TelemetryQuery): Promise<VersionRow[]>;
  latency(q: TelemetryQuery): Promise<LatencyRow[]>;
  health(q: TelemetryQuery): Promise<HealthRow[]>;
  updates(q: TelemetryQuery): Promise<UpdateRow[]>;
  drift(q: TelemetryQuery): Promise<DriftRow[]>;
  /** Runs, errors, p95 and drift per model version (backends merged), for the rollout controller. */
  versionFigures(q: TelemetryQuery): Promise<VersionFigures[]>;
  /** One version's runs, errors and run duration histogram per device, for the A/B intervals. */
  deviceFigures(q: DeviceFiguresQuery): Promise<DeviceFigures[]>;
  /** Stores a rollout decision. */
  addDecision(d: RolloutDecision): Promise<void>;
  /** Rollout decisions, newest first. */
  decisions(q: DecisionQuery): Promise<RolloutDecision[]>;
  /** Batches stored, by kind (for checks and the bench). */
  batchCount(): Promise<{ metrics: number; logs: number }>;
  close(): Promise<void>;
}

/**
 * The q-quantile of an explicit-bounds histogram (OTLP: `buckets.length` = `bounds.length + 1`,
 * bucket i holds (bounds[i-1], bounds[i]]), interpolated linearly inside the bucket it falls in,
 * as Prometheus' histogram_quantile does. The open last bucket answers its lower bound.
 */
export function histogramQuantile(bounds: readonly number[], buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const c = buckets[i]!;
    if (c > 0 && seen + c >= rank) {
      const lo = i === 0 ? Math.min(0, bounds[0] ?? 0) : bounds[i - 1]!;
      const hi = bounds[i];
      if (hi === undefined) return lo;
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return bounds[bounds.length - 1] ?? null;
}
