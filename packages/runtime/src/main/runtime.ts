import {
  AbortError,
  DisposedError,
  PROTOCOL_VERSION,
  ProtocolError,
  WorkerError,
  type CachedModel,
  type CacheUsage,
  type ModelSource,
  type WorkerApi,
  type WorkerConfig,
} from '@outpost/core';
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../shared/index.js';
import { Model, withAbort, type ModelHost } from './model.js';
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
}

/** A running Outpost runtime: one worker, its models and its store. */
export interface Runtime {
  /**
   * Loads a model version: from the store when it is there (no network), else downloaded,
   * verified and stored. Opens it on the first backend in preference order that works.
   */
  load(source: ModelSource, options?: LoadOptions): Promise<Model>;
  cache: ModelCache;
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

/**
 * Starts the runtime: a module Web Worker that downloads, stores and runs models. Nothing touches
 * `window`, `indexedDB` or `Worker` before this is called, so importing the package in Node or
 * during server-side rendering is safe.
 */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  installErrorTransfer();
  const worker = (options.createWorker ?? defaultWorker)();
  const api = Comlink.wrap<WorkerApi>(worker);
  let failure: Error | undefined;
  let failWorker: (err: Error) => void = () => undefined;
  const dead = new Promise<never>((_, reject) => {
    failWorker = (err) => {
      failure ??= err;
      reject(failure);
    };
  });
  dead.catch(() => undefined);
  worker.addEventListener('error', (e) => {
    e.preventDefault();
    failWorker(new WorkerError(`The Outpost worker failed: ${e.message || 'script error (did it load?)'}`));
  });
  worker.addEventListener('messageerror', () => failWorker(new WorkerError('A worker message could not be read')));
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, dead]);

  const timeoutMs = options.startTimeoutMs ?? RUNTIME_DEFAULTS.startTimeoutMs;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WorkerError(`The Outpost worker did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const hello = await Promise.race([guard(api.hello()), timeout]);
    if (hello?.protocol !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        `The Outpost worker speaks protocol ${String(hello?.protocol)} but this page expects ${PROTOCOL_VERSION}: ` +
          'a stale worker script is being served (clear the HTTP or service-worker cache)',
        PROTOCOL_VERSION,
        hello?.protocol,
      );
    }
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
    await guard(api.init(config));
  } catch (err) {
    worker.terminate();
    throw err;
  } finally {
    clearTimeout(timer);
  }

  let callId = 0;
  let closed = false;
  const models = new Set<Model>();
  const host: ModelHost = {
    api,
    nextCallId: () => ++callId,
    guard,
    forget: (m) => models.delete(m),
  };
  const live = <T>(p: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new DisposedError('The runtime was closed'));
    return guard(p());
  };

  return {
    async load(source, loadOptions = {}) {
      const { signal, onProgress, backend } = loadOptions;
      if (signal?.aborted) throw new AbortError();
      const id = host.nextCallId();
      const progress = onProgress ? Comlink.proxy(onProgress) : undefined;
      const info = await withAbort(
        live(() => api.load({ callId: id, source: resolveSource(source, location.href), backend }, progress)),
        signal,
        () => void api.cancel(id),
      );
      const model = new Model(host, info);
      models.add(model);
      return model;
    },
    cache: {
      list: () => live(() => api.cacheList()),
      delete: (name, version) => live(() => api.cacheDelete(name, version)),
      usage: () => live(() => api.cacheUsage()),
    },
    async close() {
      if (closed) return;
      await Promise.allSettled([...models].map((m) => m.dispose()));
      closed = true;
      failWorker(new DisposedError('The runtime was closed'));
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
