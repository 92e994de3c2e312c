/**
 * The telemetry contract between the runtime (which records and sends), the server (which
 * ingests, stores and charts) and any OpenTelemetry Collector: OTLP/HTTP JSON on the standard
 * paths, with these metric names, event names and attributes. Nothing outside
 * {@link ALLOWED_ATTRIBUTES} may leave a device (T6); raw inputs and outputs never do.
 */

/** OTLP/HTTP paths (relative to the endpoint). */
export const OTLP_PATHS = { metrics: '/v1/metrics', logs: '/v1/logs' } as const;

/**
 * Every batch carries a random UUID in this header and as the resource attribute
 * {@link RESOURCE.batchId}: OTLP has no batch id of its own, and the server deduplicates on it (T2).
 */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** The header carrying the fleet's device token (telemetry) or the admin token. */
export const AUTH_HEADER = 'Authorization';

/** Resource attributes (one set per batch). */
export const RESOURCE = {
  serviceName: 'service.name',
  batchId: 'outpost.batch.id',
  /** The device's random install id (the same random id rollout buckets use): never derived from the device. */
  deviceId: 'outpost.device.id',
  /** Bucketed, never exact: see {@link DEVICE_CLASS}. */
  deviceCores: 'outpost.device.cores',
  deviceMemory: 'outpost.device.memory_gb',
  gpuVendor: 'outpost.device.gpu_vendor',
  browser: 'outpost.device.browser',
  browserMajor: 'outpost.device.browser_major',
  runtimeVersion: 'outpost.runtime.version',
  channel: 'outpost.channel',
  /**
   * The share of runs (0 to 1) whose duration and drift figures the device records: run and error
   * counts are exact, the run duration histogram's count is the sample's.
   */
  sampleRate: 'outpost.telemetry.sample_rate',
} as const;

/** The `service.name` every Outpost runtime reports. */
export const SERVICE_NAME = 'outpost-runtime';

/** Data point attributes. */
export const ATTR = {
  model: 'outpost.model',
  version: 'outpost.model.version',
  variant: 'outpost.model.variant',
  backend: 'outpost.backend',
  /** `cold` (downloaded) or `warm` (from the store). */
  loadKind: 'outpost.load.kind',
  /** An error's stable code (`RUN_FAILED`, `INTEGRITY`…). */
  errorCode: 'outpost.error.code',
  /** Which output (or opted-in input) a drift figure is about. */
  tensor: 'outpost.drift.tensor',
  /** Update events: available, downloaded, activated, rolled-back, failed. */
  updateKind: 'outpost.update.kind',
  fromVersion: 'outpost.update.from',
  /** On a drift event: the window's PSI and KL divergence against the reference. */
  driftPsi: 'outpost.drift.psi',
  driftKl: 'outpost.drift.kl',
  /** On a drift event: runs recorded in the window. */
  driftRuns: 'outpost.drift.runs',
  /** Worker supervision events: `restarted` or `breaker-open`. */
  workerEvent: 'outpost.worker.event',
  /** Why: `crash` (the worker failed) or `hang` (a run outlasted the supervision timeout). */
  workerCause: 'outpost.worker.cause',
  /** Restarts within the circuit breaker's window, and the models that were on the worker. */
  workerRestarts: 'outpost.worker.restarts',
  workerModels: 'outpost.worker.models',
  /**
   * On shadow figures (whose model version is the shadow's): the live version it was compared
   * with on the same inputs.
   */
  shadowLiveVersion: 'outpost.shadow.live_version',
} as const;

/** Metric names. */
export const METRIC = {
  /** Histogram, ms, {@link RUN_DURATION_BOUNDS}: p50/p95/p99 are derived from it. */
  runDuration: 'outpost.run.duration',
  /** Histogram, ms, {@link LOAD_DURATION_BOUNDS}, by {@link ATTR.loadKind}. */
  loadDuration: 'outpost.load.duration',
  /** Sum, monotonic: runs that returned. */
  runs: 'outpost.run.count',
  /** Sum, monotonic, by {@link ATTR.errorCode}. */
  errors: 'outpost.error.count',
  /** Sum, monotonic: a preferred backend passed over (WebGPU → WASM). */
  fallbacks: 'outpost.backend.fallback.count',
  /** Sum, monotonic: loads served from the store. */
  cacheHits: 'outpost.cache.hit.count',
  /** Gauge, bytes: the model store's size. */
  storageBytes: 'outpost.storage.bytes',
  /** Gauge per window: population stability index of a tensor's histogram vs the reference. */
  driftPsi: 'outpost.drift.psi',
  /** Gauge per window: KL divergence of the same. */
  driftKl: 'outpost.drift.kl',
  /** Sum, monotonic: telemetry events dropped on the device (queue caps, T1). */
  dropped: 'outpost.telemetry.dropped.count',
  /**
   * Histogram, 1, {@link SHADOW_AGREEMENT_BOUNDS}: per shadow run, its agreement with the live
   * model's output on the same input (0 to 1, by the version's signed comparison). The mean
   * agreement is sum / count. Its data points name the shadow version, and
   * {@link ATTR.shadowLiveVersion} the live one.
   */
  shadowAgreement: 'outpost.shadow.agreement',
  /** Histogram, 1, {@link SHADOW_RATIO_BOUNDS}: per shadow run, shadow run time / live run time. */
  shadowLatencyRatio: 'outpost.shadow.latency_ratio',
  /** Sum, monotonic: sampled runs not shadowed because the shadow worker was busy (never queued). */
  shadowSkipped: 'outpost.shadow.skipped.count',
  /** Sum, monotonic, by {@link ATTR.errorCode}: shadow runs that failed. */
  shadowErrors: 'outpost.shadow.error.count',
} as const;

/** Metric names whose points are about a shadow version: a device does not run it, it only tries it. */
export const SHADOW_METRIC_PREFIX = 'outpost.shadow.';

/** Bucket bounds of the shadow agreement histogram. */
export const SHADOW_AGREEMENT_BOUNDS = [0, 0.5, 0.8, 0.9, 0.95, 0.99, 1] as const;
/** Bucket bounds of the shadow / live latency ratio histogram. */
export const SHADOW_RATIO_BOUNDS = [0.5, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 5, 10] as const;

/** Log record event names (the OTLP log's `eventName`, and the `event.name` attribute). */
export const EVENT = {
  update: 'outpost.update',
  /** A window whose PSI exceeded the threshold. */
  drift: 'outpost.drift',
  /** Worker supervision: a worker replaced after a crash or hang, or the circuit breaker opening. */
  worker: 'outpost.worker',
} as const;

/** Explicit bucket bounds of the run duration histogram, ms. */
export const RUN_DURATION_BOUNDS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] as const;
/** Explicit bucket bounds of the load duration histogram, ms. */
export const LOAD_DURATION_BOUNDS = [50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000] as const;

/** The PSI above which a window raises a drift event, unless the app sets another. */
export const DRIFT_PSI_THRESHOLD = 0.2;

/**
 * A model version's reference output distribution, the target file
 * `models/<name>/<version>/reference.json`: per tensor, fixed bin edges (`edges.length` =
 * `counts.length + 1`; values outside fall in the first or last bin) and the counts seen on the
 * reference data. A device bins its own outputs on the same edges and compares (PSI, KL).
 */
export interface DriftReference {
  tensors: Record<string, { edges: number[]; counts: number[] }>;
}

/**
 * Reads a `reference.json` target, checking its shape: ascending finite edges, one count more
 * edge than counts, counts not negative. Throws a TypeError naming what is wrong.
 */
export function decodeReference(bytes: Uint8Array | string): DriftReference {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes));
  } catch {
    throw new TypeError('A drift reference must be JSON');
  }
  const tensors = (raw as { tensors?: unknown } | null)?.tensors;
  if (typeof tensors !== 'object' || tensors === null || Array.isArray(tensors)) {
    throw new TypeError('A drift reference is { tensors: { <name>: { edges: number[], counts: number[] } } }');
  }
  const out: DriftReference = { tensors: {} };
  for (const [name, t] of Object.entries(tensors as Record<string, unknown>)) {
    const { edges, counts } = (t ?? {}) as { edges?: unknown; counts?: unknown };
    const nums = (x: unknown): x is number[] =>
      Array.isArray(x) && x.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!nums(edges) || !nums(counts) || counts.length < 1 || edges.length !== counts.length + 1) {
      throw new TypeError(`Drift reference "${name}": edges must be one longer than counts, all finite numbers`);
    }
    if (edges.some((e, i) => i > 0 && e <= edges[i - 1]!)) {
      throw new TypeError(`Drift reference "${name}": edges must be ascending`);
    }
    if (counts.some((c) => c < 0)) throw new TypeError(`Drift reference "${name}": counts cannot be negative`);
    out.tensors[name] = { edges, counts };
  }
  return out;
}

/** Coarse device classes: values are bucketed so no combination fingerprints a device. */
export const DEVICE_CLASS = {
  /** `navigator.hardwareConcurrency` rounded down to one of these. */
  cores: [1, 2, 4, 8, 16],
  /** `navigator.deviceMemory` (GB) rounded down to one of these. */
  memoryGb: [1, 2, 4, 8],
} as const;

/**
 * Every attribute key a payload may carry (resource, data point, log record), plus the OTLP
 * structure's own fields. The runtime's test checks every payload it builds against this list
 * (T6), and the README publishes it.
 */
export const ALLOWED_ATTRIBUTES: ReadonlySet<string> = new Set<string>([
  ...Object.values(RESOURCE),
  ...Object.values(ATTR),
  'event.name',
]);

/** Rounds down to the largest bucket not above `value` (the smallest bucket for anything below it). */
export function bucketDown(value: number, buckets: readonly number[]): number {
  let out = buckets[0] ?? 0;
  for (const b of buckets) if (value >= b) out = b;
  return out;
}
