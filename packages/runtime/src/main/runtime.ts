import {
  AbortError,
  deserializeError,
  DisposedError,
  WorkerError,
  type CachedModel,
  type CacheUsage,
  type LoadedModelInfo,
  type LoadProgress,
  type ModelSource,
  type WorkerConfig,
} from '@outpost/core';
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../shared/index.js';
import { Model, withAbort } from './model.js';
import { UpdateController, type Updates } from './updates.js';
import { startStream, type Stream, type StreamOptions, type StreamSource } from './stream.js';
import { CircuitBreaker, Stall } from './supervisor.js';
import { startWorker, type WorkerHost } from './worker-host.js';
import { attachTelemetry, resolveTelemetry } from './telemetry.js';
import { RUNTIME_DEFAULTS, type LoadOptions, type RuntimeOptions } from './options.js';

/** Set by `@outpost/vite` (Vite `define`): where it serves onnxruntime-web's files. */
declare const __OUTPOST_ORT_PATHS__: string | undefined;

/** The model store, as the app sees it. */
export interface ModelCache {
  /** Every stored model version. */
  list(): Promise<CachedModel[]>;
  /** Deletes a stored version; resolves whether it was stored. */
  delete(name: string, version: string): Promise<boolean>;
  /** Bytes used by stored models, and the origin's quota. */
  usage(): Promise<CacheUsage>;
  /** Keeps a version through retention (S6), e.g. a known-good fallback. */
  pin(name: string, version: string): Promise<void>;
  unpin(name: string, version: string): Promise<void>;
  /**
   * One stored version with the signed metadata that vouches for it, as a single file to carry
   * to a device with no network (a USB stick).
   */
  export(name: string, version: string): Promise<Uint8Array>;
  /**
   * Installs a bundle from {@link ModelCache.export}: its metadata is checked against this
   * device's trusted root and clock, every file against the signed hashes; then the version is
   * stored and (unless `activate: false`) made active, so `load(name)` uses it offline.
   */
  import(
    bundle: Uint8Array | ArrayBuffer | Blob,
    options?: { activate?: boolean },
  ): Promise<{ name: string; version: string }>;
}

/**
 * A failure away from any call the app made: an update check or install, or telemetry (its
 * queue's storage, or batches the endpoint refused). Calls the app makes reject instead.
 */
export interface BackgroundError {
  /** `worker`: supervision replaced a crashed or hung worker, or its circuit breaker opened. */
  source: 'updates' | 'telemetry' | 'worker';
  error: Error;
  /** The model and version an update failure is about. */
  name?: string;
  version?: string;
}

/** A running Outpost runtime: one worker, its models and its store. */
export interface Runtime {
  /**
   * Loads a model version: from the store when it is there (no network), else downloaded,
   * verified and stored. Opens it on the first backend in preference order that works.
   *
   * By name (`load('digits')`, with `repository` configured): the active version from the store
   * (offline too), or on first use the version the signed channel names for this device,
   * downloaded, verified against the signed metadata, health-checked and made active.
   */
  load(source: ModelSource | string, options?: LoadOptions): Promise<Model>;
  cache: ModelCache;
  /**
   * Runs `model` on every frame of a `<video>` or MediaStream: frames go to the worker as
   * transferred ImageBitmaps, are preprocessed there as `options.preprocess` says, and outputs
   * come back to `options.onResult`. When the model is slower than the source the newest frame
   * wins (one in flight, one waiting, older ones dropped). The stream follows the model across
   * over-the-air updates, between two frames.
   */
  stream(model: Model, source: StreamSource, options: StreamOptions): Stream;
  /** Over-the-air updates of models loaded by name. */
  updates: Updates;
  /**
   * The one place background failures go (update errors, telemetry that cannot be stored or was
   * refused); returns the unsubscribe function. With no handler, they go to `console.error`.
   */
  on(event: 'error', handler: (e: BackgroundError) => void): () => void;
  /** Disposes every model and stops the worker. */
  close(): Promise<void>;
}

/** Threads for WASM: 0 means as many as useful, but only where threads can work at all. */
export function resolveThreads(requested: number, isolated: boolean, cores: number): number {
  if (!isolated) return 1;
  if (requested > 0) return requested;
  return Math.max(1, Math.min(4, cores));
}

function defaultWasmPaths(explicit: string | undefined): string | undefined {
  const raw = explicit ?? (typeof __OUTPOST_ORT_PATHS__ === 'string' ? __OUTPOST_ORT_PATHS__ : undefined);
  // The worker resolves URLs against its own script's location, not the page's: make it absolute.
  return raw === undefined ? undefined : new URL(raw, location.href).href;
}

/**
 * Resolves a source's URLs against the page: the worker would resolve a relative URL against its
 * own script's location instead.
 */
export function resolveSource(source: ModelSource, base: string): ModelSource {
  const abs = (u: string) => new URL(u, base).href;
  return {
    ...source,
    url: source.url === undefined ? undefined : abs(source.url),
    files: source.files?.map((f) => ({ ...f, url: abs(f.url) })),
  };
}

function defaultWorker(): Worker {
  return new Worker(new URL('../worker/index.js', import.meta.url), { type: 'module', name: 'outpost' });
}

/** `checkEvery` as milliseconds: a number, or `'30s'`, `'15m'`, `'1h'`, `'1d'`. */
export function parseInterval(value: number | string): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new TypeError(`Cannot read the interval "${value}" (use e.g. 30s, 15m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

function rootText(root: string | object): string {
  return typeof root === 'string' ? root : JSON.stringify(root);
}

/**
 * Starts the runtime: a module Web Worker that downloads, stores and runs models. Nothing touches
 * `window`, `indexedDB` or `Worker` before this is called, so importing the package in Node or
 * during server-side rendering is safe.
 */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  installErrorTransfer();
  const config: WorkerConfig = {
    backends: options.backends ?? [...RUNTIME_DEFAULTS.backends],
    numThreads: resolveThreads(
      options.wasm?.numThreads ?? RUNTIME_DEFAULTS.numThreads,
      globalThis.crossOriginIsolated === true,
      globalThis.navigator?.hardwareConcurrency || 1,
    ),
    ortWasmPaths: defaultWasmPaths(options.wasm?.paths),
    maxInputBytes: options.maxInputBytes ?? RUNTIME_DEFAULTS.maxInputBytes,
  };
  if (options.updates?.download) config.download = options.updates.download;
  if (options.updates?.keep !== undefined) config.keepVersions = options.updates.keep;
  if (options.repository) {
    config.repository = {
      url: new URL(options.repository.url, location.href).href,
      trustedRoot: rootText(options.repository.trustedRoot),
      channel: options.channel ?? RUNTIME_DEFAULTS.channel,
    };
  }
  const telemetry = resolveTelemetry(
    options.telemetry,
    options.channel ?? RUNTIME_DEFAULTS.channel,
    globalThis.location?.href,
    parseInterval,
  );
  if (telemetry) config.telemetry = telemetry;
  const errorHandlers = new Set<(e: BackgroundError) => void>();
  const backgroundError = (e: BackgroundError) => {
    if (errorHandlers.size === 0) {
      console.error(`Outpost (${e.source}):`, e.error);
      return;
    }
    for (const h of errorHandlers) {
      try {
        h(e);
      } catch (err) {
        // A throwing handler must not stop the others, nor the runtime.
        console.error('Outpost: an error handler threw', err);
      }
    }
  };
  const sup = RUNTIME_DEFAULTS.supervision;
  const runTimeoutMs = parseInterval(options.supervision?.runTimeout ?? sup.runTimeout);
  const loadTimeoutMs = parseInterval(options.supervision?.loadTimeout ?? sup.loadTimeout);
  const breaker = new CircuitBreaker(
    options.supervision?.maxRestarts ?? sup.maxRestarts,
    parseInterval(options.supervision?.window ?? sup.window),
  );
  let callId = 0;
  const start = () =>
    startWorker(options.createWorker ?? defaultWorker, config, {
      timeoutMs: options.startTimeoutMs ?? RUNTIME_DEFAULTS.startTimeoutMs,
      now: options.now,
      nextCallId: () => ++callId,
      report: (f) => backgroundError({ source: f.source, error: deserializeError(f.error) }),
      onCrash: (host, reason, cause) => supervise(host, reason, cause),
      runTimeoutMs,
    });
  // The primary worker: loads, the store, update checks. Replaced when it crashes, so callers
  // always go through `current()`.
  let primary = await start();
  let replacing: Promise<WorkerHost> | undefined;
  const current = async (): Promise<WorkerHost> => (replacing ? await replacing : primary);

  let closed = false;
  const workers = new Set<WorkerHost>([primary]);
  const models = new Set<Model>();
  const named = new Map<string, Set<Model>>();
  const streams = new Set<Stream>();
  /** How each model handle is loaded again in a new worker after its worker crashed. */
  const reloads = new WeakMap<Model, (host: WorkerHost) => Promise<LoadedModelInfo>>();
  const live = async <T>(call: (api: WorkerHost['api']) => Promise<T>): Promise<T> => {
    if (closed) throw new DisposedError('The runtime was closed');
    const host = await current();
    return host.guard(call(host.api));
  };
  const adopt = (w: WorkerHost) => {
    // A disposed model leaves every list; a model moving between workers only changes worker.
    w.forget = (m) => {
      w.models.delete(m);
      models.delete(m);
      named.get(m.name)?.delete(m);
    };
    return w;
  };
  adopt(primary);

  /** Starts a new primary worker in place of a crashed one. */
  const replacePrimary = () => {
    replacing = start().then(
      (w) => {
        adopt(w);
        workers.add(w);
        primary = w;
        replacing = undefined;
        return w;
      },
      (err: unknown) => {
        replacing = undefined;
        throw err;
      },
    );
    return replacing;
  };

  /**
   * Supervision (a worker crashed, or a run outlasted the timeout): a new primary worker if the
   * primary died, and the dead worker's models reloaded there from the store, unless the circuit
   * breaker is open. Told to the app (`on('error')`) and to telemetry.
   */
  const supervise = (dead: WorkerHost, reason: Error, cause: 'crash' | 'hang') => {
    if (closed) return;
    workers.delete(dead);
    // A staging worker that failed before any model moved to it: the updater reports that.
    if (dead !== primary && dead.models.size === 0) return;
    const now = Date.now();
    const restart = breaker.crashed(now);
    const affected = [...dead.models];
    dead.models.clear();
    const next = dead === primary ? replacePrimary() : current();
    const event = { cause, restarts: breaker.count(now), models: affected.length };
    if (!restart) {
      const open = new WorkerError(
        `Worker restarts stopped (circuit breaker open): ${event.restarts} within the window; ` +
          `${affected.length} model(s) on the crashed worker fail until it closes, or until loaded again`,
        { cause: reason },
      );
      for (const m of affected) m.break(open);
      backgroundError({ source: 'worker', error: open });
      void next
        .then(async (w) => {
          await w.api.telemetryWorkerEvent({ kind: 'breaker-open', ...event });
          await w.api.telemetryPersist();
        })
        .catch(() => undefined);
      return;
    }
    backgroundError({ source: 'worker', error: reason });
    // Each handle waits (its calls too) from now until it is rebound to the new worker.
    const reloaded = affected.map((m) =>
      m.recover(
        next.then(async (w) => {
          const info = await w.guard(reloads.get(m)!(w));
          m.rebind(w, info);
          w.models.add(m);
        }),
      ),
    );
    void Promise.all([next, ...reloaded])
      // Queued at once: the next crash would take what the worker holds in memory with it.
      .then(async ([w]) => {
        await w.api.telemetryWorkerEvent({ kind: 'restarted', ...event });
        await w.api.telemetryPersist();
      })
      .catch((error: unknown) =>
        backgroundError({ source: 'worker', error: error instanceof Error ? error : new Error(String(error)) }),
      );
  };

  const track = (
    model: Model,
    host: WorkerHost,
    byName: boolean,
    reload: (w: WorkerHost) => Promise<LoadedModelInfo>,
  ) => {
    models.add(model);
    host.models.add(model);
    reloads.set(model, reload);
    if (byName) {
      let set = named.get(model.name);
      if (!set) named.set(model.name, (set = new Set()));
      set.add(model);
    }
    return model;
  };
  const updates = new UpdateController({
    get primary() {
      return primary;
    },
    async startWorker() {
      if (closed) throw new DisposedError('The runtime was closed');
      const w = adopt(await start());
      workers.add(w);
      const terminate = w.terminate.bind(w);
      w.terminate = (reason) => {
        workers.delete(w);
        terminate(reason);
      };
      return w;
    },
    named: () => named,
    activate: options.updates?.activate ?? RUNTIME_DEFAULTS.activate,
    deferOnSaveData: options.updates?.deferOnSaveData ?? true,
    loadTimeoutMs,
    workerReplaced: (error) => backgroundError({ source: 'worker', error }),
  });
  // Offline is no failure (the check says so); a check that rejects is (storage, a dead worker).
  const background = () => {
    updates
      .check()
      .catch((error: unknown) =>
        backgroundError({ source: 'updates', error: error instanceof Error ? error : new Error(String(error)) }),
      );
  };
  updates.on('error', (d) => backgroundError({ source: 'updates', ...d }));
  const detachTelemetry = telemetry
    ? attachTelemetry(
        () => primary.api,
        telemetry,
        updates,
        (error) => backgroundError({ source: 'telemetry', error }),
      )
    : undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (options.repository) {
    const every = parseInterval(options.updates?.checkEvery ?? RUNTIME_DEFAULTS.checkEvery);
    if (every > 0) timer = setInterval(background, every);
    // Ask the browser not to evict the models under storage pressure. Only a page can ask
    // (workers have no persist()); the browser decides, and saying no is not an error.
    void globalThis.navigator?.storage?.persist?.().catch(() => false);
    globalThis.addEventListener?.('online', background);
  }

  return {
    async load(source, loadOptions = {}) {
      const { signal, onProgress, backend } = loadOptions;
      if (signal?.aborted) throw new AbortError();
      if (closed) throw new DisposedError('The runtime was closed');
      const resolved = typeof source === 'string' ? undefined : resolveSource(source, location.href);
      let stalled = false;
      /** One try in the current worker; a stall past the load timeout takes that worker as hung. */
      const attempt = async (host: WorkerHost) => {
        const id = host.nextCallId();
        const onStall = () => {
          stalled = true;
          host.crash(
            new WorkerError(
              `A load made no progress for ${loadTimeoutMs} ms: the worker is taken as hung and restarted`,
            ),
            'hang',
          );
        };
        return Stall.watch(loadTimeoutMs, onStall, (reset) => {
          const progress = Comlink.proxy((p: LoadProgress) => {
            reset();
            onProgress?.(p);
          });
          const call = resolved
            ? host.api.load({ callId: id, source: resolved, backend }, progress)
            : host.api.loadNamed({ callId: id, name: source as string, activate: true, backend }, progress);
          return withAbort(host.guard(call), signal, () => void host.api.cancel(id));
        });
      };
      let host = await current();
      let info: LoadedModelInfo;
      try {
        info = await attempt(host);
      } catch (err) {
        // Stalled (its worker is being replaced): once more, in the new worker.
        if (!stalled || closed) throw err;
        stalled = false;
        host = await current();
        info = await attempt(host);
      }
      const model = new Model(host, info);
      // After a crash, the same version again from the store (a named model keeps its version).
      const reload = (w: WorkerHost) =>
        resolved
          ? w.api.load({ callId: w.nextCallId(), source: resolved, backend: model.backend })
          : w.api.loadNamed({
              callId: w.nextCallId(),
              name: model.name,
              version: model.version,
              activate: false,
              backend: model.backend,
            });
      track(model, host, !resolved, reload);
      // A shadow the channel names starts now, not at the next check.
      if (!resolved) updates.followShadows();
      return model;
    },
    cache: {
      list: () => live((api) => api.cacheList()),
      delete: (name, version) => live((api) => api.cacheDelete(name, version)),
      usage: () => live((api) => api.cacheUsage()),
      pin: (name, version) => live((api) => api.cachePin(name, version, true)),
      unpin: (name, version) => live((api) => api.cachePin(name, version, false)),
      export: (name, version) => live((api) => api.cacheExport(name, version)),
      async import(bundle, importOptions = {}) {
        const bytes =
          bundle instanceof Uint8Array
            ? bundle
            : new Uint8Array(bundle instanceof Blob ? await bundle.arrayBuffer() : bundle);
        return live((api) => api.cacheImport(bytes, importOptions.activate ?? true));
      },
    },
    updates,
    stream(model, source, streamOptions) {
      if (closed) throw new DisposedError('The runtime was closed');
      const s = startStream(model, source, streamOptions, () => streams.delete(s));
      streams.add(s);
      return s;
    },
    on(_event, handler) {
      errorHandlers.add(handler);
      return () => void errorHandlers.delete(handler);
    },
    async close() {
      if (closed) return;
      if (timer !== undefined) clearInterval(timer);
      globalThis.removeEventListener?.('online', background);
      updates.close();
      detachTelemetry?.();
      for (const s of [...streams]) s.stop();
      // What the workers recorded goes to the queue, to be sent by the next runtime. A worker
      // that stopped answering (hung in WASM, or gone without an error) must not keep the
      // runtime from closing: it is terminated after a bounded wait.
      await settled(
        [...workers].map((w) => w.guard(w.api.telemetryPersist())),
        options.startTimeoutMs ?? RUNTIME_DEFAULTS.startTimeoutMs,
      );
      await settled(
        [...models].map((m) => m.dispose()),
        options.startTimeoutMs ?? RUNTIME_DEFAULTS.startTimeoutMs,
      );
      closed = true;
      for (const w of [...workers]) w.terminate(new DisposedError('The runtime was closed'));
    },
  };
}

/** Waits for every promise to settle, or `ms`, whichever comes first. */
async function settled(promises: Promise<unknown>[], ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([Promise.allSettled(promises), timeout]);
  clearTimeout(timer);
}
