import {
  AbortError,
  DisposedError,
  type BackendId,
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
  forget(model: Model): void;
}

/** A loaded model. Runs go to the worker, one at a time per model, in call order. */
export class Model {
  readonly name: string;
  readonly version: string;
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** Whether the bytes came from the network or the store. */
  readonly source: LoadedModelInfo['source'];
  /** Milliseconds each load step took. */
  readonly timings: LoadedModelInfo['timings'];
  /** The variant in use, when the source listed variants. */
  readonly variant: string | undefined;
  /** How the variant was chosen on this device: every trial with its figures. */
  readonly choice: LoadedModelInfo['choice'];
  private _backend: BackendId;
  private _fallbackReason: string | undefined;
  private disposed = false;

  /** @internal */
  constructor(
    private readonly host: ModelHost,
    private readonly info: LoadedModelInfo,
  ) {
    this.name = info.name;
    this.version = info.version;
    this.inputs = info.inputs;
    this.outputs = info.outputs;
    this.source = info.source;
    this.timings = info.timings;
    this.variant = info.variant;
    this.choice = info.choice;
    this._backend = info.backend;
    this._fallbackReason = info.fallbackReason;
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
    const callId = this.host.nextCallId();
    // Without `transfer`, the caller keeps its buffers. Large inputs are copied here and the
    // copies transferred: one memcpy on the page beats structured clone, which copies twice
    // (serialize, deserialize). Small ones are cloned, where a transfer list costs more than it saves.
    const sent = options.transfer || bytesOf(feeds) < COPY_AND_TRANSFER_BYTES ? feeds : copyTensors(feeds);
    const req = { callId, modelId: this.info.id, feeds: sent };
    const transfer = options.transfer || sent !== feeds;
    const call = this.host.guard(this.host.api.run(transfer ? Comlink.transfer(req, tensorBuffers(sent)) : req));
    const result = await withAbort(call, signal, () => void this.host.api.cancel(callId));
    if (result.backend) {
      this._backend = result.backend;
      this._fallbackReason = result.fallbackReason;
    }
    return result.outputs as Record<O, Tensor>;
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
