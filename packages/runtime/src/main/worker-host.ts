import {
  PROTOCOL_VERSION,
  ProtocolError,
  WorkerError,
  type BackgroundFailure,
  type WorkerApi,
  type WorkerConfig,
} from '@outpost/core';
import * as Comlink from 'comlink';
import type { Model, ModelHost } from './model.js';

/** One Outpost worker as the page holds it: its API, its models, and its death. */
export interface WorkerHost extends ModelHost {
  /** Models whose session lives in this worker. */
  readonly models: Set<Model>;
  /** Stops the worker; pending calls reject with `reason`. */
  terminate(reason: Error): void;
  /** Stops a worker found broken (hung, gone): like `terminate`, and the supervisor is told. */
  crash(reason: Error, cause?: 'crash' | 'hang'): void;
  /** Whether the worker died or was stopped. */
  readonly dead: boolean;
}

/**
 * Starts a worker, checks it speaks this page's protocol, and sends it the configuration.
 * Every call through `guard` rejects as soon as the worker dies, so nothing hangs on a dead one.
 */
export async function startWorker(
  create: () => Worker,
  config: WorkerConfig,
  options: {
    timeoutMs: number;
    now?: () => number;
    nextCallId: () => number;
    /** Where the worker's background failures go. */
    report?: (failure: BackgroundFailure) => void;
    /** Told once when the worker dies by itself or is found broken, not when it is terminated. */
    onCrash?: (host: WorkerHost, reason: Error, cause: 'crash' | 'hang') => void;
    /**
     * A run or frame longer than this is taken as a hung (or silently gone) worker: it is
     * stopped, the call fails with a `WorkerError`, and `onCrash` is told. 0: never.
     */
    runTimeoutMs?: number;
  },
): Promise<WorkerHost> {
  const worker = create();
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
  // Set once the host exists: a crash before that fails the start instead.
  let crashed: (reason: Error, cause?: 'crash' | 'hang') => void = failWorker;
  worker.addEventListener('error', (e) => {
    e.preventDefault();
    crashed(new WorkerError(`The Outpost worker failed: ${e.message || 'script error (did it load?)'}`));
  });
  worker.addEventListener('messageerror', () => crashed(new WorkerError('A worker message could not be read')));
  const guard = <T>(p: Promise<T>): Promise<T> => Promise.race([p, dead]);

  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WorkerError(`The Outpost worker did not answer within ${options.timeoutMs} ms`)),
      options.timeoutMs,
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
    await guard(
      api.init(
        config,
        options.now ? Comlink.proxy(options.now) : undefined,
        options.report ? Comlink.proxy(options.report) : undefined,
      ),
    );
  } catch (err) {
    worker.terminate();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const models = new Set<Model>();
  const host: WorkerHost = {
    api,
    models,
    guard,
    nextCallId: options.nextCallId,
    forget: (m) => models.delete(m),
    terminate(reason) {
      stop(reason);
    },
    crash(reason, cause) {
      crashed(reason, cause);
    },
    get dead() {
      return failure !== undefined;
    },
    guardRun<T>(p: Promise<T>): Promise<T> {
      // A run that exhausted the worker's WebAssembly memory fails as it is; the memory it grew
      // to is never given back (wasm memory only grows), so the worker is replaced as well.
      p = p.catch((err: unknown) => {
        if (outOfMemory(err)) {
          crashed(
            new WorkerError(
              `A run ran out of memory (${(err as Error).message}): the worker is replaced, which gives its memory back`,
              { cause: err },
            ),
          );
        }
        throw err;
      });
      const ms = options.runTimeoutMs ?? 0;
      if (!(ms > 0)) return guard(p);
      let t: ReturnType<typeof setTimeout> | undefined;
      const hung = new Promise<never>(() => {
        t = setTimeout(
          () =>
            crashed(
              new WorkerError(`A run took longer than ${ms} ms: the worker is taken as hung (or gone) and restarted`),
              'hang',
            ),
          ms,
        );
      });
      return guard(Promise.race([p, hung])).finally(() => clearTimeout(t));
    },
  };
  let stopped = false;
  // Once: a worker found hung is stopped, and may be terminated again by whoever held it.
  const stop = (reason: Error) => {
    failWorker(reason);
    if (stopped) return;
    stopped = true;
    api[Comlink.releaseProxy]();
    worker.terminate();
  };
  crashed = (reason, cause = 'crash') => {
    if (failure !== undefined) return;
    stop(reason);
    options.onCrash?.(host, reason, cause);
  };
  return host;
}

/** Whether a run failed because an allocation failed (onnxruntime's std::bad_alloc, a WebAssembly memory that could not grow). */
export function outOfMemory(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof WorkerError) return false;
  return /bad_alloc|out of memory|Cannot enlarge memory|could not allocate memory/i.test(err.message);
}
