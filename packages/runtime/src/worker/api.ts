import {
  AbortError,
  DisposedError,
  IntegrityError,
  NotCachedError,
  PROTOCOL_VERSION,
  type BackendId,
  type EngineConfig,
  type EngineSession,
  type LoadedModelInfo,
  type LoadProgress,
  type LoadRequest,
  type LoadTimings,
  type ModelFile,
  type RunRequest,
  type RunResult,
  type WorkerApi,
  type WorkerConfig,
} from '@outpost/core';
import * as Comlink from 'comlink';
import { tensorBuffers } from '../shared/index.js';
import { ModelStore, sha256Hex, type StoredBytes } from '../store/index.js';
import { download } from './download.js';
import { openModel, registeredEngines } from './engines.js';
import { validateFeeds } from './validate.js';

interface LiveModel {
  info: LoadedModelInfo;
  session: EngineSession;
  /** Runs of one session execute one at a time; this is the tail of that queue. */
  queue: Promise<unknown>;
  /** Set once a run succeeded, after which a failing run no longer means the backend is bad. */
  ranOnce: boolean;
  bytes: { graph: Uint8Array; external: { path: string; data: Uint8Array }[] };
}

const DEFAULT_CONFIG: WorkerConfig = {
  backends: ['webgpu', 'wasm'],
  numThreads: 1,
  maxInputBytes: 256 * 1024 * 1024,
};

/** Splits a source into its files; the first is the graph. */
function filesOf(req: LoadRequest): ModelFile[] {
  const { source } = req;
  if (source.files?.length) return source.files;
  if (!source.url) throw new TypeError(`Model ${source.name}@${source.version} has neither url nor files`);
  // The graph is stored under its file name (model.onnx, model.json), so companions such as
  // TF.js shards keep the relative paths the graph refers to them by.
  const path = new URL(source.url, 'http://x/').pathname.split('/').pop() || `${source.name}.onnx`;
  return [{ path, url: source.url, sha256: source.sha256 }];
}

/**
 * The worker side of the runtime: downloads and stores models, opens them on a backend, runs
 * them one call at a time per model. Everything here runs off the page thread.
 */
export class WorkerRuntime implements WorkerApi {
  private config: WorkerConfig = DEFAULT_CONFIG;
  private readonly store = new ModelStore();
  private readonly models = new Map<number, LiveModel>();
  private readonly calls = new Map<number, AbortController>();
  private nextId = 1;

  hello() {
    return { protocol: PROTOCOL_VERSION };
  }

  async init(config: WorkerConfig): Promise<void> {
    this.config = config;
  }

  cancel(callId: number): void {
    this.calls.get(callId)?.abort();
  }

  private engineConfig(): EngineConfig {
    return { numThreads: this.config.numThreads, wasmPaths: this.config.ortWasmPaths };
  }

  async load(req: LoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo> {
    const ac = new AbortController();
    this.calls.set(req.callId, ac);
    try {
      return await this.loadInner(req, ac.signal, onProgress);
    } finally {
      this.calls.delete(req.callId);
    }
  }

  private async loadInner(
    req: LoadRequest,
    signal: AbortSignal,
    onProgress?: (p: LoadProgress) => void,
  ): Promise<LoadedModelInfo> {
    const t0 = performance.now();
    const { name, version } = req.source;
    const files = filesOf(req);
    const timings: Partial<LoadTimings> = {};
    let source: LoadedModelInfo['source'] = 'cache';

    let stored: StoredBytes[] | undefined;
    try {
      const hit = await this.store.read(name, version);
      if (hit) {
        stored = hit.files;
        timings.read = hit.timings.read;
        timings.verify = hit.timings.verify;
      }
    } catch (err) {
      // S1: stored bytes that no longer match their hash are never used; drop them and fetch anew.
      if (!(err instanceof IntegrityError)) throw err;
      await this.store.delete(name, version);
    }
    if (stored && !sameFiles(stored, files, req.source.files !== undefined)) stored = undefined;
    if (signal.aborted) throw new AbortError();

    if (!stored) {
      source = 'network';
      const td = performance.now();
      stored = await this.fetchAll(req, files, signal, onProgress, timings);
      const extra = req.source.files ? [] : companionsOf(stored[0]!.data, files[0]!.url);
      if (extra.length) {
        const verified = timings.verify ?? 0;
        stored = [...stored, ...(await this.fetchAll(req, extra, signal, onProgress, timings))];
        timings.verify = (timings.verify ?? 0) + verified;
        files.push(...extra);
      }
      timings.download = performance.now() - td - (timings.verify ?? 0);
    } else {
      void this.store.touch(name, version).catch(() => undefined);
    }
    if (signal.aborted) throw new AbortError();

    const [graph, ...external] = stored;
    const bytes = { graph: graph!.data, external: external.map((f) => ({ path: f.path, data: f.data })) };
    const backends: BackendId[] = req.backend ? [req.backend] : this.config.backends;
    const opened = await openModel(bytes, backends, this.engineConfig());
    timings.backendInit = opened.timings.backendInit;
    timings.sessionCreate = opened.timings.sessionCreate;
    try {
      if (signal.aborted) throw new AbortError();
      if (source === 'network') {
        // Stored only once it has opened: bytes that download intact but are no model the
        // backend can run must not come back from the store on the next load.
        const tw = performance.now();
        const withHashes = await Promise.all(
          stored.map(async (f, i) => ({ ...f, sha256: files[i]!.sha256 ?? (await sha256Hex(f.data)) })),
        );
        await this.store.write(name, version, withHashes);
        timings.write = performance.now() - tw;
      }
    } catch (err) {
      await opened.session.dispose();
      throw err;
    }
    const id = this.nextId++;
    const info: LoadedModelInfo = {
      id,
      name,
      version,
      backend: opened.session.backend,
      fallbackReason: opened.fallbackReason,
      inputs: opened.session.inputs,
      outputs: opened.session.outputs,
      source,
      timings: { ...timings, total: performance.now() - t0 },
    };
    this.models.set(id, { info, session: opened.session, queue: Promise.resolve(), ranOnce: false, bytes });
    return info;
  }

  /** Downloads every file, checking each against its expected hash as it completes (U1). */
  private async fetchAll(
    req: LoadRequest,
    files: ModelFile[],
    signal: AbortSignal,
    onProgress: ((p: LoadProgress) => void) | undefined,
    timings: Partial<LoadTimings>,
  ): Promise<StoredBytes[]> {
    const loaded = new Array<number>(files.length).fill(0);
    const totals = new Array<number | null>(files.length).fill(null);
    let lastReport = 0;
    const report = (force: boolean) => {
      if (!onProgress) return;
      const now = performance.now();
      // Comlink callbacks are a postMessage each; a few per frame is plenty for a progress bar.
      if (!force && now - lastReport < 50) return;
      lastReport = now;
      const known = totals.every((t) => t !== null);
      onProgress({
        loaded: loaded.reduce((a, b) => a + b, 0),
        total: known ? totals.reduce<number>((a, b) => a + (b ?? 0), 0) : null,
      });
    };
    let verify = 0;
    const out = await Promise.all(
      files.map(async (f, i) => {
        let data: Uint8Array;
        try {
          data = await download(f.url, signal, (n, total) => {
            loaded[i] = n;
            totals[i] = total;
            report(false);
          });
        } catch (err) {
          if (err instanceof Error && 'status' in err && (err as { status: number }).status === 0) {
            throw new NotCachedError(
              `${req.source.name}@${req.source.version} is not cached and cannot be downloaded: ${err.message}`,
              req.source.name,
              req.source.version,
            );
          }
          throw err;
        }
        totals[i] = data.length;
        loaded[i] = data.length;
        if (f.sha256) {
          const tv = performance.now();
          const actual = await sha256Hex(data);
          verify += performance.now() - tv;
          if (actual !== f.sha256.toLowerCase()) {
            throw new IntegrityError(
              `${f.url} does not match the expected SHA-256 of ${req.source.name}@${req.source.version}`,
              f.sha256.toLowerCase(),
              actual,
              f.path,
            );
          }
        }
        return { path: f.path, data };
      }),
    );
    report(true);
    timings.verify = verify;
    return out;
  }

  async run(req: RunRequest): Promise<RunResult> {
    const model = this.models.get(req.modelId);
    if (!model) throw new DisposedError(`Model ${req.modelId} is not loaded (disposed?)`);
    const ac = new AbortController();
    this.calls.set(req.callId, ac);
    const turn = model.queue.then(async (): Promise<RunResult> => {
      if (ac.signal.aborted) throw new AbortError();
      if (!this.models.has(req.modelId)) throw new DisposedError(`Model ${model.info.name} was disposed`);
      validateFeeds(req.feeds, model.info.inputs, this.config.maxInputBytes);
      try {
        const outputs = await model.session.run(req.feeds);
        model.ranOnce = true;
        return { outputs };
      } catch (err) {
        if (model.ranOnce || model.session.backend === 'wasm') throw err;
        return this.fallBackAndRun(model, req, err);
      }
    });
    model.queue = turn.catch(() => undefined);
    try {
      const result = await turn;
      // Outputs are always transferred: the worker has no further use for them.
      return Comlink.transfer(result, tensorBuffers(result.outputs));
    } finally {
      this.calls.delete(req.callId);
    }
  }

  /**
   * A WebGPU session can pass its probe and still fail its first real run. Rather than fail the
   * app's call, reopen the model on WASM, run there, and say so.
   */
  private async fallBackAndRun(model: LiveModel, req: RunRequest, cause: unknown): Promise<RunResult> {
    const reason = `${model.session.backend}: first run failed: ${cause instanceof Error ? cause.message : String(cause)}`;
    const opened = await openModel(model.bytes, ['wasm'], this.engineConfig());
    await model.session.dispose().catch(() => undefined);
    model.session = opened.session;
    model.info = { ...model.info, backend: 'wasm', fallbackReason: reason };
    const outputs = await model.session.run(req.feeds);
    model.ranOnce = true;
    return { outputs, backend: 'wasm', fallbackReason: reason };
  }

  async dispose(modelId: number): Promise<void> {
    const model = this.models.get(modelId);
    if (!model) return;
    this.models.delete(modelId);
    await model.queue;
    await model.session.dispose();
  }

  cacheList() {
    return this.store.list();
  }

  cacheDelete(name: string, version: string) {
    return this.store.delete(name, version);
  }

  cacheUsage() {
    return this.store.usage();
  }
}

/** Files the graph's engine says belong with it (TF.js weight shards), when it says any. */
function companionsOf(graph: Uint8Array, url: string): ModelFile[] {
  const engine = registeredEngines().find((e) => e.accepts({ graph, external: [] }));
  return engine?.companions?.(graph, url) ?? [];
}

/**
 * Whether the stored copy is the model the source describes: the same files when the source
 * lists them, else the same graph (its companions were found by the engine when it was stored).
 */
function sameFiles(stored: StoredBytes[], files: ModelFile[], listed: boolean): boolean {
  if (!listed) return stored[0]?.path === files[0]?.path;
  return stored.length === files.length && stored.every((s, i) => s.path === files[i]!.path);
}
