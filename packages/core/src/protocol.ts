import type { BackendId, CachedModel, CacheUsage, LoadedModelInfo, LoadProgress, ModelSource } from './model.js';
import type { SerializedError } from './errors.js';
import type { TensorMap, TensorType } from './tensor.js';

/**
 * Version of the page ⇄ worker protocol. The page refuses a worker that answers with another
 * version: that is a stale worker script from a cache, and calling it would fail in odd ways.
 */
export const PROTOCOL_VERSION = 7;

/** Sent once after the worker starts. */
export interface WorkerConfig {
  backends: BackendId[];
  /** Resolved thread count for WASM (never 0). */
  numThreads: number;
  /** Absolute base URL of onnxruntime-web's wasm and .mjs files, when the app serves them. */
  ortWasmPaths?: string;
  /** Bytes a single input may hold in all (R3). */
  maxInputBytes: number;
  /** The signed repository models are loaded from by name, when the app configured one. */
  repository?: RepositoryConfig;
  /** Timeouts and retries of resumable (repository) downloads. */
  download?: Partial<DownloadPolicy>;
  /** Versions kept per model after an update (S6); the active and pinned ones are never evicted. */
  keepVersions?: number;
  /** Telemetry, when the app configured an endpoint. */
  telemetry?: TelemetryConfig;
}

/** Telemetry settings as the worker receives them (resolved: no defaults left to apply). */
export interface TelemetryConfig {
  /** Absolute base URL of the OTLP/HTTP receiver (`/v1/metrics` and `/v1/logs` below it). */
  endpoint: string;
  /** Sent as `Authorization: Bearer <token>`, when set. */
  token?: string;
  /** Fraction of runs recorded, 0..1. */
  sampleRate: number;
  /** Aggregates move from memory to the IndexedDB queue, and the queue is sent, this often (ms). */
  flushEveryMs: number;
  /** Queue caps (T1): the oldest batches are dropped, and counted, past either. */
  maxQueueBytes: number;
  maxQueueCount: number;
  /** The channel the device follows, reported as a resource attribute. */
  channel?: string;
  drift: {
    /** PSI above which a window raises a drift event. */
    threshold: number;
    /** A window closes after this many recorded runs (or at the next flush). */
    windowRuns: number;
    /** Also summarise inputs (only with a reference for them). */
    inputs: boolean;
  };
}

/** An update event the page reports to the worker's telemetry. */
export interface TelemetryUpdateEvent {
  kind: 'available' | 'downloaded' | 'activated' | 'rolled-back' | 'failed';
  name: string;
  version: string;
  from?: string;
  /** An error's stable code, for `failed` and `rolled-back`. */
  errorCode?: string;
}

/** What worker supervision did, for telemetry (recorded in the worker that takes over). */
export interface TelemetryWorkerEvent {
  /** `restarted`: a new worker took over, models reloaded; `breaker-open`: restarts stopped. */
  kind: 'restarted' | 'breaker-open';
  /** `crash`: the worker failed; `hang`: a run outlasted the supervision timeout. */
  cause: 'crash' | 'hang';
  /** Restarts within the breaker's window, this one included. */
  restarts: number;
  /** Models that were on the worker. */
  models: number;
}

/** What one flush of the telemetry queue did. */
/** A failure in the background, away from any call the app made, as it crosses the worker boundary. */
export interface BackgroundFailure {
  source: 'telemetry';
  error: SerializedError;
}

export interface TelemetryFlushReport {
  sent: number;
  /** Batches the server refused for good (400 and other 4xx): kept aside, never resent. */
  setAside: number;
  /** The HTTP status of the last refusal, when there was one. */
  refusedStatus?: number;
  split: number;
  /** Batches left for a later flush (429, 5xx, offline), and when the next may go (ms epoch). */
  pending: number;
  retryAt?: number;
}

/** How resumable downloads wait and retry. */
export interface DownloadPolicy {
  /** Abort an attempt after this long without a byte (U13). */
  inactivityMs: number;
  /** Abort an attempt after this long in all, however slowly bytes still come (U13). */
  deadlineMs: number;
  /** Further attempts after the first, each resuming from the saved offset (U12). */
  retries: number;
  /** Base of the exponential backoff; each wait is a random fraction of base * 2^attempt. */
  backoffMs: number;
}

/** A signed model repository and the channel this device follows. */
export interface RepositoryConfig {
  /** Base URL of the repository (the folder holding `metadata/` and `targets/`). */
  url: string;
  /** The root metadata the app ships (`metadata/1.root.json` from `outpost init`), as JSON text. */
  trustedRoot: string;
  /** Channel to follow, e.g. `stable`. */
  channel: string;
}

/** Load a model by name from the repository. */
export interface NamedLoadRequest {
  callId: number;
  name: string;
  /**
   * Install exactly this version (the update path), checking it is the one the signed channel
   * names for this device. Without it: the active version, or the channel's on first use.
   */
  version?: string;
  /** Make the version active once it loaded and passed its health check. */
  activate: boolean;
  backend?: BackendId;
}

/** A model whose channel names another version than the active one. */
export interface UpdatePlan {
  name: string;
  /** The active version, if any. */
  from?: string;
  to: string;
  /** True when `to` is older than `from` in the repository's order (an operator's rollback). */
  rollback: boolean;
  /** The device's rollout bucket and the channel's fraction, both in basis points. */
  bucket: number;
  rolloutBp: number;
}

/** What one update check found. */
export interface UpdateCheck {
  plans: UpdatePlan[];
  /** The repository could not be reached; nothing changed. */
  offline: boolean;
  /** Metadata was refused (expired, bad signature, rollback): the installed models keep serving. */
  refused?: { code: string; message: string };
  /** Versions the channel names that this device marked bad, and why. */
  skipped: { name: string; version: string; reason: string }[];
  /** The active version of each model (another tab may have switched it). */
  active: Record<string, string>;
}

/** A load request. `callId` lets the page cancel it. */
export interface LoadRequest {
  callId: number;
  source: ModelSource;
  /** Use only this backend. */
  backend?: BackendId;
}

/** A run request. `callId` lets the page cancel it while it waits its turn. */
export interface RunRequest {
  callId: number;
  modelId: number;
  feeds: TensorMap;
}

/** What a run returns: the outputs, and the backend when it changed during this run. */
export interface RunResult {
  outputs: TensorMap;
  /** Set when this run moved the model to another backend (a WebGPU first run that failed). */
  backend?: BackendId;
  fallbackReason?: string;
}

/**
 * How the worker turns a video frame into a model input, on an OffscreenCanvas: the frame is
 * scaled to `width` × `height` (stretched), then each RGB value `v` (0..255) becomes
 * `(v * scale - mean[c]) / std[c]`, a float32 tensor `[1, 3, height, width]` (`nchw`) or
 * `[1, height, width, 3]` (`nhwc`). A spec, not a function: it runs in the worker, where no
 * page code can go.
 */
export interface FramePreprocess {
  /** The model input the tensor is fed to. */
  input: string;
  width: number;
  height: number;
  /** @defaultValue `'nchw'` */
  layout?: 'nchw' | 'nhwc';
  /** @defaultValue `1 / 255` */
  scale?: number;
  /** Three values, per channel (R, G, B), after `scale`. @defaultValue `[0, 0, 0]` */
  mean?: readonly number[];
  /** Three values, per channel (R, G, B), after `scale`. @defaultValue `[1, 1, 1]` */
  std?: readonly number[];
}

/**
 * A frame as it crosses the boundary: an `ImageBitmap`, transferred (declared by shape, since
 * this package has no DOM types). The worker closes it once drawn.
 */
export interface FrameBitmap {
  readonly width: number;
  readonly height: number;
  close(): void;
}

/** One video frame to preprocess in the worker and run. */
export interface FrameRequest {
  callId: number;
  modelId: number;
  /** Transferred: listed in the message's transfer list. */
  frame: FrameBitmap;
  preprocess: FramePreprocess;
}

/** A MessagePort as it crosses the boundary, transferred (declared by shape: no DOM types here). */
export interface ShadowPort {
  postMessage(message: unknown, transfer?: unknown[]): void;
  close(): void;
}

/** The shadow the signed channel names for this device for one model. */
export interface ShadowPlan {
  name: string;
  /** The shadow's version (signed with a comparison). */
  version: string;
  /** Share of live runs it also runs, basis points. */
  sampleBp: number;
}

/** Live worker: sample runs of `modelId` to the shadow worker at the other end of `port`. */
export interface ShadowTapRequest {
  modelId: number;
  /** Transferred. */
  port: ShadowPort;
  sampleBp: number;
  /** The shadow's version, which its figures are recorded under. */
  shadowVersion: string;
}

/**
 * Shadow worker: load `name@version` (from the store, else the repository; once per worker), run
 * it on what arrives on `port`, compare, answer.
 */
export interface ShadowServeRequest {
  callId: number;
  name: string;
  version: string;
  /** Transferred. */
  port: ShadowPort;
}

/** Input shapes a model was last fed with, by input name. */
export type InputShapes = Record<string, { type: TensorType; dims: number[] }>;

/** What a frame run returns: the run's result and where the worker's time went. */
export interface FrameResult extends RunResult {
  /** Drawing, scaling and normalising the frame (ms). */
  preprocessMs: number;
  /** Waiting for the model's earlier runs, then running (ms). */
  runMs: number;
}

/**
 * What the worker exposes over comlink. This interface is the whole worker boundary: every call
 * the page makes is here, every value is structured-cloneable, errors travel as
 * `SerializedError` and are rebuilt as the same class. Run outputs are always transferred; run
 * inputs are transferred when the caller asks.
 */
export interface WorkerApi {
  hello(): { protocol: number };
  /**
   * `now`: the app's clock (ms since the epoch), read once per update cycle. `report`: where the
   * worker's background failures go (its telemetry timer), to reach the app's error handler.
   */
  init(
    config: WorkerConfig,
    now?: () => number | Promise<number>,
    report?: (failure: BackgroundFailure) => void,
  ): Promise<void>;
  load(req: LoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo>;
  run(req: RunRequest): Promise<RunResult>;
  /**
   * Preprocesses a video frame (transferred `ImageBitmap`, closed here) as `preprocess` says and
   * runs the model on it, in the model's run order. Outputs are transferred.
   */
  runFrame(req: FrameRequest): Promise<FrameResult>;
  /**
   * Runs a model once on zeros of the given input shapes, recording nothing: a session staged by
   * an update is warmed at the shapes the app feeds before handles move to it, so the first real
   * run after the switch is not the slow first run of a new session, and a version that cannot
   * take those shapes fails here, before it serves.
   */
  warm(modelId: number, shapes: InputShapes): Promise<void>;
  dispose(modelId: number): Promise<void>;
  /** Cancels a pending load or run. A run already executing in WASM cannot be stopped. */
  cancel(callId: number): void;
  /** Loads a model by name from the repository (see {@link NamedLoadRequest}). */
  loadNamed(req: NamedLoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo>;
  /** Refreshes the repository metadata and says which models the channel moves. */
  checkUpdates(names: string[]): Promise<UpdateCheck>;
  /**
   * Makes an installed version the active one (one IndexedDB transaction; the previous version
   * is remembered). Fails, changing nothing, when the version is not stored.
   */
  activate(name: string, version: string): Promise<void>;
  /** Records that a version failed its health check on this device; it is never installed again. */
  markBad(name: string, version: string, reason: string): Promise<void>;
  cacheList(): Promise<CachedModel[]>;
  cacheDelete(name: string, version: string): Promise<boolean>;
  cacheUsage(): Promise<CacheUsage>;
  /** Pins (or unpins) a stored version so retention never evicts it. */
  cachePin(name: string, version: string, pinned: boolean): Promise<void>;
  /**
   * A stored version with the signed metadata that vouches for it, as one file to carry to an
   * air-gapped device.
   */
  cacheExport(name: string, version: string): Promise<Uint8Array>;
  /**
   * Verifies a bundle from {@link WorkerApi.cacheExport} against this device's trusted root
   * (every TUF rule, the clock included) and stores it; it is then loadable by name offline.
   */
  cacheImport(bundle: Uint8Array, activate: boolean): Promise<{ name: string; version: string }>;
  /**
   * The shadow the channel names for this device for `name` (trusted metadata, no network), or
   * null; null too with telemetry off, where a shadow's figures would go nowhere.
   */
  shadowPlan(name: string): Promise<ShadowPlan | null>;
  /**
   * Taps a live model: after a run has returned, a sample of its inputs, with copies of its
   * outputs, goes to the shadow at the other end of the port, only while that shadow is idle.
   * Never changes or delays a live result. Replaces an earlier tap of the model.
   */
  shadowTap(req: ShadowTapRequest): void;
  /** Removes a live model's tap. */
  shadowUntap(modelId: number): void;
  /**
   * Serves as a shadow: runs the version on what a tap sends and answers with its agreement (by
   * its release's signed comparison) and run time; only figures go back. A worker that serves as a
   * shadow records no telemetry of its own (its load would report the device as running it).
   * `onProgress` hears the load's progress, as with `loadNamed`.
   */
  shadowServe(req: ShadowServeRequest, onProgress?: (p: LoadProgress) => void): Promise<void>;
  /** Records an update event (telemetry on; a no-op otherwise). */
  telemetryEvent(event: TelemetryUpdateEvent): void;
  /** Records what worker supervision did (telemetry on; a no-op otherwise). */
  telemetryWorkerEvent(event: TelemetryWorkerEvent): void;
  /** Moves the in-memory aggregates to the IndexedDB queue. */
  telemetryPersist(): Promise<void>;
  /** Persists, then sends what the queue holds. */
  telemetryFlush(): Promise<TelemetryFlushReport>;
}
