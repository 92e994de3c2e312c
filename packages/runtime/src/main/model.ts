import {
  AbortError,
  DisposedError,
  type BackendId,
  type FramePreprocess,
  type FrameResult,
  type InputShapes,
  type LoadedModelInfo,
  type Tensor,
  type TensorMap,
  type ValueInfo,
  type WorkerApi,
} from '@outpost/core';
import * as Comlink from 'comlink';
import { tensorBuffers } from '../shared/index.js';
import type { RunOptions } from './options.js';

/** Hooks the runtime gives each model it loads. */
export interface ModelHost {
  api: Comlink.Remote<WorkerApi>;
  nextCallId(): number;
  /** Rejects when the worker dies, so calls never hang on a dead worker. */
  guard<T>(p: Promise<T>): Promise<T>;
  /** `guard` for runs: also takes a run past the supervision timeout as a hung worker. */
  guardRun<T>(p: Promise<T>): Promise<T>;
  forget(model: Model): void;
}

/** A loaded model. Runs go to the worker, one at a time per model, in call order. */
/** The types and shapes of a run's inputs. */
function shapesOf(feeds: TensorMap): InputShapes {
  const out: InputShapes = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = { type: t.type, dims: [...t.dims] };
  return out;
}

export class Model {
  readonly name: string;
  private host: ModelHost;
  private info: LoadedModelInfo;
  private _backend: BackendId;
  private _fallbackReason: string | undefined;
  private disposed = false;
  /** The input shapes of the last run or frame: what an update's new session is warmed at. */
  private shapes: InputShapes | undefined;
  /** Set while supervision reloads this model in a new worker after its worker crashed. */
  private recovering: Promise<void> | undefined;
  /** Set when supervision gave up on this model (the circuit breaker is open): calls fail at once. */
  private broken: Error | undefined;

  /** @internal */
  constructor(host: ModelHost, info: LoadedModelInfo) {
    this.name = info.name;
    this.host = host;
    this.info = info;
    this._backend = info.backend;
    this._fallbackReason = info.fallbackReason;
  }

  /** The version running now (an over-the-air update can change it between two runs). */
  get version(): string {
    return this.info.version;
  }
  get inputs(): ValueInfo[] {
    return this.info.inputs;
  }
  get outputs(): ValueInfo[] {
    return this.info.outputs;
  }
  /** Whether the bytes came from the network or the store. */
  get source(): LoadedModelInfo['source'] {
    return this.info.source;
  }
  /** Milliseconds each load step took. */
  get timings(): LoadedModelInfo['timings'] {
    return this.info.timings;
  }
  /** The variant in use, when the source listed variants. */
  get variant(): string | undefined {
    return this.info.variant;
  }
  /** How the variant was chosen on this device: every trial with its figures. */
  get choice(): LoadedModelInfo['choice'] {
    return this.info.choice;
  }

  /**
   * Moves this handle to another session (an activated update, built in a second worker).
   * Runs already sent finish on the old session; the next run goes to the new one, so no call
   * fails or waits because of the switch. Returns the old host and id, for the caller to
   * release once the old session drained.
   * @internal
   */
  rebind(host: ModelHost, info: LoadedModelInfo): { host: ModelHost; id: number } {
    const old = { host: this.host, id: this.info.id };
    this.host = host;
    this.info = info;
    this._backend = info.backend;
    this._fallbackReason = info.fallbackReason;
    return old;
  }

  /**
   * Supervision: calls wait for `reload` (which rebinds this handle to a new worker) instead of
   * failing on the dead one. A failed reload leaves the model broken.
   * @internal
   */
  recover(reload: Promise<void>): Promise<void> {
    this.recovering = reload.then(
      () => {
        this.recovering = undefined;
      },
      (err: unknown) => {
        this.recovering = undefined;
        this.broken = err instanceof Error ? err : new Error(String(err));
      },
    );
    return this.recovering;
  }

  /** Supervision gave up: every later call fails with `reason`. @internal */
  break(reason: Error): void {
    this.broken = reason;
  }

  /** Whether supervision is reloading this model now. @internal */
  get isRecovering(): boolean {
    return this.recovering !== undefined;
  }

  /** Waits out a reload in progress; throws when the model is broken or disposed. */
  private async ready(): Promise<void> {
    if (this.recovering) await this.recovering;
    if (this.broken) throw this.broken;
  }

  /** The input shapes this handle last ran with, if it ran. @internal */
  get lastShapes(): InputShapes | undefined {
    return this.shapes;
  }

  /** @internal */
  get hostOf(): ModelHost {
    return this.host;
  }

  /** The id of the session this handle runs on, in its worker. @internal */
  get sessionId(): number {
    return this.info.id;
  }

  /** The backend the model runs on. */
  get backend(): BackendId {
    return this._backend;
  }

  /** Why a preferred backend was not used, if one was passed over. */
  get fallbackReason(): string | undefined {
    return this._fallbackReason;
  }

  /**
   * Runs the model. Inputs are checked against the model's declared inputs first; a mismatch
   * rejects with an `InputError` and nothing runs. Outputs arrive as transferred buffers.
   */
  async run<O extends string = string>(feeds: TensorMap, options: RunOptions = {}): Promise<Record<O, Tensor>> {
    if (this.disposed) throw new DisposedError(`Model ${this.name}@${this.version} was disposed`);
    const { signal } = options;
    if (signal?.aborted) throw new AbortError();
    // Only while supervision reloads the model does a run wait: otherwise it is sent at once, so
    // an abort right after the call finds it queued in the worker, as before supervision.
    if (this.recovering || this.broken) {
      await this.ready();
      if (signal?.aborted) throw new AbortError();
    }
    const host = this.host;
    const callId = host.nextCallId();
    // Without `transfer`, the caller keeps its buffers. Large inputs are copied here and the
    // copies transferred: one memcpy on the page beats structured clone, which copies twice
    // (serialize, deserialize). Small ones are cloned, where a transfer list costs more than it saves.
    const sent = options.transfer || bytesOf(feeds) < COPY_AND_TRANSFER_BYTES ? feeds : copyTensors(feeds);
    this.shapes = shapesOf(feeds);
    const req = { callId, modelId: this.info.id, feeds: sent };
    const transfer = options.transfer || sent !== feeds;
    const call = host.guardRun(host.api.run(transfer ? Comlink.transfer(req, tensorBuffers(sent)) : req));
    const result = await withAbort(call, signal, () => void host.api.cancel(callId));
    if (result.backend && host === this.host) {
      this._backend = result.backend;
      this._fallbackReason = result.fallbackReason;
    }
    return result.outputs as Record<O, Tensor>;
  }

  /**
   * Sends a video frame (transferred, so the page no longer holds it) to be preprocessed and
   * run in the worker, on the session this handle points at now: after an update, the next
   * frame goes to the new version. Says which version and backend ran it.
   * @internal
   */
  async runFrame(
    frame: ImageBitmap,
    preprocess: FramePreprocess,
  ): Promise<{ result: FrameResult; version: string; backend: BackendId }> {
    if (this.disposed) {
      frame.close();
      throw new DisposedError(`Model ${this.name}@${this.version} was disposed`);
    }
    if (this.recovering || this.broken) {
      try {
        await this.ready();
      } catch (err) {
        frame.close();
        throw err;
      }
    }
    const host = this.host;
    const version = this.info.version;
    const backend = this._backend;
    const { width, height, layout = 'nchw' } = preprocess;
    const dims = layout === 'nchw' ? [1, 3, height, width] : [1, height, width, 3];
    this.shapes = { [preprocess.input]: { type: 'float32', dims } };
    const req = { callId: host.nextCallId(), modelId: this.info.id, frame, preprocess };
    const result = await host.guardRun(host.api.runFrame(Comlink.transfer(req, [frame])));
    if (result.backend && host === this.host) {
      this._backend = result.backend;
      this._fallbackReason = result.fallbackReason;
    }
    return { result, version, backend: result.backend ?? backend };
  }

  /** Releases the session in the worker. Runs already queued finish first. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.host.forget(this);
    await this.host.guard(this.host.api.dispose(this.info.id));
  }
}

/** Inputs at least this large are copied and transferred rather than structured-cloned. */
const COPY_AND_TRANSFER_BYTES = 64 * 1024;

function bytesOf(feeds: TensorMap): number {
  let n = 0;
  for (const t of Object.values(feeds)) n += ArrayBuffer.isView(t?.data) ? t.data.byteLength : 0;
  return n;
}

function copyTensors(feeds: TensorMap): TensorMap {
  const out: TensorMap = {};
  for (const [name, t] of Object.entries(feeds)) {
    // A tensor that is not one (bad input) is passed as is, for the worker to reject with a typed error.
    out[name] = ArrayBuffer.isView(t?.data) ? { type: t.type, dims: t.dims, data: t.data.slice() } : t;
  }
  return out;
}

/** Races a worker call against an AbortSignal; on abort, tells the worker and rejects at once. */
export function withAbort<T>(call: Promise<T>, signal: AbortSignal | undefined, onAbort: () => void): Promise<T> {
  if (!signal) return call;
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort();
      reject(new AbortError());
    };
    signal.addEventListener('abort', abort, { once: true });
    call.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
