import type { BackendId, CachedModel, CacheUsage, LoadedModelInfo, LoadProgress, ModelSource } from './model.js';
import type { TensorMap } from './tensor.js';

/**
 * Version of the page ⇄ worker protocol. The page refuses a worker that answers with another
 * version: that is a stale worker script from a cache, and calling it would fail in odd ways.
 */
export const PROTOCOL_VERSION = 1;

/** Sent once after the worker starts. */
export interface WorkerConfig {
  backends: BackendId[];
  /** Resolved thread count for WASM (never 0). */
  numThreads: number;
  /** Absolute base URL of onnxruntime-web's wasm and .mjs files, when the app serves them. */
  ortWasmPaths?: string;
  /** Bytes a single input may hold in all (R3). */
  maxInputBytes: number;
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
 * What the worker exposes over comlink. This interface is the whole worker boundary: every call
 * the page makes is here, every value is structured-cloneable, errors travel as
 * `SerializedError` and are rebuilt as the same class. Run outputs are always transferred; run
 * inputs are transferred when the caller asks.
 */
export interface WorkerApi {
  hello(): { protocol: number };
  init(config: WorkerConfig): Promise<void>;
  load(req: LoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo>;
  run(req: RunRequest): Promise<RunResult>;
  dispose(modelId: number): Promise<void>;
  /** Cancels a pending load or run. A run already executing in WASM cannot be stopped. */
  cancel(callId: number): void;
  cacheList(): Promise<CachedModel[]>;
  cacheDelete(name: string, version: string): Promise<boolean>;
  cacheUsage(): Promise<CacheUsage>;
}
