import type { BackendId, ModelFile, ValueInfo } from './model.js';
import type { TensorMap } from './tensor.js';

/** The bytes of a model: the graph and, for ONNX external data, the other files by path. */
export interface ModelBytes {
  graph: Uint8Array;
  external: { path: string; data: Uint8Array }[];
}

/** Settings the worker hands every engine. */
export interface EngineConfig {
  /** Threads for the WASM backend; already resolved (never 0). */
  numThreads: number;
  /** Base URL the engine's own wasm and glue files are served from, when the app serves them. */
  wasmPaths?: string;
}

/** A model opened on one backend. */
export interface EngineSession {
  readonly backend: BackendId;
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** Runs the model. Feeds are already validated against `inputs`. */
  run(feeds: TensorMap): Promise<TensorMap>;
  /**
   * Why the session can no longer run (a GPU device lost), if so: the worker then reopens the
   * model on WASM. Sessions that cannot be lost leave it out.
   */
  lost?(): string | undefined;
  dispose(): Promise<void>;
}

/**
 * An inference engine (onnxruntime-web, TF.js) as the worker sees it. Engines register by name
 * and priority; the worker asks each in turn, highest priority first, whether it can open a
 * model, and starts an engine's heavy code only when it is first used.
 */
export interface Engine {
  readonly name: string;
  /** The engine library's version (`onnxruntime-web 1.30.0`); a variant choice is remade when it changes. */
  readonly version?: string;
  /** Higher runs first among engines that accept the same model. */
  readonly priority: number;
  /** Whether this engine reads this model (a cheap look at the bytes, no heavy imports). */
  accepts(model: ModelBytes): boolean;
  /**
   * Files the graph refers to that must be downloaded and stored with it (a TF.js model.json's
   * weight shards), with URLs resolved against `graphUrl`. Absent or empty for self-contained
   * formats.
   */
  companions?(graph: Uint8Array, graphUrl: string): ModelFile[];
  /**
   * Engine-specific reasons it cannot use `backend` here, beyond the device lacking it (the
   * worker checks for WebAssembly and a WebGPU adapter itself): `null` when it can.
   */
  probe?(backend: BackendId, config: EngineConfig): Promise<string | null>;
  /**
   * Starts the engine's heavy code for `backend` (imports it, compiles its wasm, acquires the GPU
   * device) once, so that `open` costs only the session; later calls return at once. Throws when
   * the backend cannot start.
   */
  init(backend: BackendId, config: EngineConfig): Promise<void>;
  /** Opens the model on `backend`; throws when the backend cannot create the session. */
  open(model: ModelBytes, backend: BackendId, config: EngineConfig): Promise<EngineSession>;
}
