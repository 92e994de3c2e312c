import type { BackendId, DownloadPolicy, LoadProgress } from '@outpost/core';

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  /**
   * Backends in order of preference. A backend the device lacks, or that cannot run a model, is
   * passed over for the next, and the model reports why in `fallbackReason`.
   * @defaultValue `['webgpu', 'wasm']`
   */
  backends?: BackendId[];
  /** WASM backend settings. */
  wasm?: {
    /**
     * Threads for WASM inference. 0 picks `min(4, navigator.hardwareConcurrency)` when the page
     * is cross-origin isolated (threads need SharedArrayBuffer) and 1 otherwise.
     * @defaultValue 0
     */
    numThreads?: number;
    /**
     * URL prefix onnxruntime-web loads its `.wasm` and `.mjs` files from. `@outpost/vite` sets
     * it for you; set it when you serve those files yourself.
     * @defaultValue the path `@outpost/vite` serves them at, else onnxruntime-web's own default
     */
    paths?: string;
  };
  /**
   * Largest total size of one run's inputs, in bytes; bigger inputs are rejected before they
   * reach the backend (an opaque WASM out-of-memory abort otherwise).
   * @defaultValue 256 MiB
   */
  maxInputBytes?: number;
  /**
   * Creates the worker. For apps that bundle the worker script themselves.
   * @defaultValue a module worker from `@outpost/runtime`'s own worker entry
   */
  createWorker?: () => Worker;
  /**
   * Milliseconds to wait for the worker to answer its first message.
   * @defaultValue 15000
   */
  startTimeoutMs?: number;
  /**
   * The signed model repository `load(name)` installs from and updates follow. `trustedRoot`
   * is the root metadata `outpost init` printed (`metadata/1.root.json`), shipped with the app:
   * every later metadata file and model byte is verified from it.
   */
  repository?: { url: string; trustedRoot: string | object };
  /**
   * The repository channel this device follows.
   * @defaultValue `'stable'`
   */
  channel?: string;
  /** Over-the-air updates of models loaded by name. */
  updates?: {
    /**
     * How often to check the repository (ms, or `'30s'`, `'15m'`, `'1h'`); 0 checks only when
     * `updates.check()` is called or the browser comes back online.
     * @defaultValue `'1h'`
     */
    checkEvery?: number | string;
    /**
     * `'now'`: a verified, healthy new version takes over loaded models between two runs.
     * `'next-load'`: it becomes active for the next `load(name)` (after a reload).
     * @defaultValue `'now'`
     */
    activate?: 'now' | 'next-load';
    /**
     * Timeouts and retries of model downloads from the repository, which resume from the
     * last saved byte after a cut, a flap or a reload.
     * @defaultValue `{ inactivityMs: 30000, deadlineMs: 600000, retries: 4, backoffMs: 1000 }`
     */
    download?: Partial<DownloadPolicy>;
    /**
     * Versions of each model kept in the store after an update, least recently used evicted
     * first; the active version and pinned ones are never evicted. 2 keeps the previous version
     * for an instant switch back.
     * @defaultValue 2
     */
    keep?: number;
    /**
     * While the browser's Save-Data mode is on, report updates as `available` but leave the
     * download for a later check.
     * @defaultValue true
     */
    deferOnSaveData?: boolean;
  };
  /**
   * The clock update checks use (ms since the epoch), read once per check: metadata expiry is
   * judged against it. For tests; the worker asks the page for it.
   * @defaultValue `Date.now`
   */
  now?: () => number;
  /**
   * Telemetry: per model, version, variant and backend, load and run latency, runs, errors,
   * fallbacks, cache hits, update events, storage used and drift, with a coarse device class;
   * never inputs or outputs. Sent as OTLP/HTTP JSON to `endpoint` (our server or any
   * OpenTelemetry Collector), queued in IndexedDB while offline.
   * @defaultValue off: nothing is recorded or sent unless `endpoint` is set
   */
  telemetry?: TelemetryOptions;
  /**
   * Worker supervision: a worker that crashes, or a run that takes longer than `runTimeout` (a
   * hung or vanished worker), or a load stalled for `loadTimeout`, is replaced by a new worker with its models reloaded from the
   * store; calls in flight fail with a `WorkerError`, later ones work. After `maxRestarts`
   * restarts within `window`, the circuit breaker opens: models on a crashed worker are not
   * reloaded and their calls fail at once, until the window has passed. Each restart and the
   * breaker are reported to `rt.on('error')` and in telemetry.
   */
  supervision?: SupervisionOptions;
}

/** Options of {@link RuntimeOptions.supervision}. */
export interface SupervisionOptions {
  /**
   * A run or frame that takes longer is taken as a hung worker (`'30s'`, ms; 0: never).
   * @defaultValue `'30s'`
   */
  runTimeout?: number | string;
  /**
   * A load that makes no progress for this long (no downloaded bytes, no session yet) is taken as
   * a hung worker: it is replaced, and the load is tried once more in the new worker before it
   * fails with a `WorkerError` (`'2m'`, ms; 0: never). The same holds for an update's staging
   * worker (staged once more in a new one; the version is not marked bad) and a shadow's worker
   * (stopped, started again at the next check), so an update check never waits forever. onnxruntime's multi-threaded session creation can hang for good
   * now and then (seen in Firefox ESR, about 1 load in 100).
   * @defaultValue `'2m'`
   */
  loadTimeout?: number | string;
  /** @defaultValue 3 */
  maxRestarts?: number;
  /** @defaultValue `'5m'` */
  window?: number | string;
}

/** Options of {@link RuntimeOptions.telemetry}. */
export interface TelemetryOptions {
  /**
   * Base URL of the OTLP/HTTP receiver; batches go to `<endpoint>/v1/metrics` and `/v1/logs`.
   * Without it telemetry is off.
   */
  endpoint?: string;
  /** The fleet's device token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /**
   * Fraction of runs recorded (latency, runs, errors, drift), 0..1; loads and update events are
   * always recorded. Counts are of sampled runs: divide by the rate to estimate totals.
   * @defaultValue 1
   */
  sampleRate?: number;
  /**
   * How often the aggregates are queued in IndexedDB and the queue is sent (ms, or `'30s'`,
   * `'5m'`). The queue is also sent when the browser comes back online, and up to 60 KB of it
   * when the page is hidden.
   * @defaultValue `'1m'`
   */
  flushEvery?: number | string;
  /**
   * Caps of the offline queue; past either the oldest batches are dropped and counted.
   * @defaultValue `{ bytes: 1 MiB, count: 1000 }`
   */
  queue?: { bytes?: number; count?: number };
  /** Drift of outputs against the reference distribution a model version carries in the repository. */
  drift?: {
    /**
     * PSI above which a window raises a drift event.
     * @defaultValue 0.2 (`DRIFT_PSI_THRESHOLD`)
     */
    threshold?: number;
    /**
     * Runs per window.
     * @defaultValue 1000
     */
    windowRuns?: number;
    /**
     * Also summarise inputs named in the reference. Inputs are app data: off unless asked.
     * @defaultValue false
     */
    inputs?: boolean;
  };
}

/** Options of `load`. */
export interface LoadOptions {
  /** Called as model bytes arrive (not called when the model comes from the store). */
  onProgress?: (progress: LoadProgress) => void;
  /** Use only this backend instead of the runtime's preference list. */
  backend?: BackendId;
  /** Cancels the download and the load. */
  signal?: AbortSignal;
}

/** Options of `run`. */
export interface RunOptions {
  /**
   * Transfer the input buffers to the worker instead of copying them. They are detached on the
   * page afterwards (length 0).
   * @defaultValue false
   */
  transfer?: boolean;
  /**
   * Cancels the run while it waits for earlier runs of the same model. A run that has started
   * executing in WASM cannot be interrupted; it completes and its result is dropped.
   */
  signal?: AbortSignal;
}

/** Defaults of {@link RuntimeOptions}. */
export const RUNTIME_DEFAULTS = {
  backends: ['webgpu', 'wasm'] as BackendId[],
  numThreads: 0,
  maxInputBytes: 256 * 1024 * 1024,
  startTimeoutMs: 15_000,
  channel: 'stable',
  checkEvery: '1h',
  activate: 'now',
  supervision: { runTimeout: '30s', loadTimeout: '2m', maxRestarts: 3, window: '5m' },
  telemetry: {
    sampleRate: 1,
    flushEvery: '1m',
    queueBytes: 1024 * 1024,
    queueCount: 1000,
    driftWindowRuns: 1000,
    driftInputs: false,
    /** Bytes a page sends with `keepalive` when it is hidden (browsers cap all keepalive bodies at 64 KiB). */
    keepaliveBytes: 60 * 1024,
  },
} as const;
