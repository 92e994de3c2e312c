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
