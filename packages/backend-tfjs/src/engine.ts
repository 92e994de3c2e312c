import {
  ModelFormatError,
  RunError,
  type BackendId,
  type Engine,
  type EngineConfig,
  type EngineSession,
  type ModelBytes,
  type ModelFile,
  type TensorMap,
  type ValueInfo,
} from '@outpost/core';
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type * as TfjsChunk from './tfjs.js';
import { fromTfOutput, toDims, toTensorType, toTfInput } from './tensors.js';
import {
  modelKind,
  parseModelJson,
  shardFiles,
  signatureShape,
  type TfjsModelJson,
  type TfjsModelKind,
} from './tfjs-format.js';

type TfjsModule = typeof TfjsChunk;
type Tf = TfjsModule['tf'];
type LoadedModel = Awaited<ReturnType<TfjsModule['loadStoredModel']>>;
/** The TF.js backend names Outpost uses: ours, plus TF.js's pure-JS `cpu` as a last resort. */
type TfBackend = 'webgpu' | 'wasm' | 'cpu';

let tfjsModule: Promise<TfjsModule> | undefined;

function loadTfjs(): Promise<TfjsModule> {
  tfjsModule ??= import('./tfjs.js');
  // A chunk that failed to load may load on a later try.
  tfjsModule.catch(() => (tfjsModule = undefined));
  return tfjsModule;
}

function message(err: unknown): string {
  if (err instanceof Error) return err.message;
  // tfjs-backend-wasm rejects with a plain `{ message }` object.
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  return String(err);
}

/**
 * TF.js has one active backend per realm, while the worker may hold models on WebGPU and WASM at
 * once. Every load and run therefore switches to its model's backend inside this one queue, so
 * one model's run never executes on another's backend.
 */
let tail: Promise<unknown> = Promise.resolve();

function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const result = tail.then(fn);
  tail = result.catch(() => undefined);
  return result;
}

async function activate(tf: Tf, backend: TfBackend): Promise<void> {
  if (tf.getBackend() === backend) return;
  if (!(await tf.setBackend(backend))) throw new Error(`TF.js could not switch to its ${backend} backend`);
}

/** Starts one TF.js backend once; a backend that failed may be tried again. */
const started = new Map<TfBackend, Promise<void>>();

function start(backend: TfBackend, config: EngineConfig): Promise<void> {
  let s = started.get(backend);
  if (!s) {
    s = (async () => {
      const { tf } = await loadTfjs();
      if (backend === 'webgpu') {
        // Registers the backend only where navigator.gpu exists.
        await import('@tensorflow/tfjs-backend-webgpu');
      } else if (backend === 'wasm') {
        const wasm = await import('@tensorflow/tfjs-backend-wasm');
        if (config.wasmPaths) wasm.setWasmPaths(config.wasmPaths);
        // One thread, whatever config.numThreads says. tfjs-backend-wasm starts its threads from
        // blob: workers running `factory.toString()` of its own Emscripten glue: once an app's
        // bundler has minified that function it refers to names that only exist in the bundle
        // ("ReferenceError: e is not defined" in every thread, and the worker dies), and a strict
        // CSP (worker-src 'self') forbids blob: workers anyway.
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      } else {
        await import('@tensorflow/tfjs-backend-cpu');
      }
      if (!tf.findBackendFactory(backend)) throw new Error(`TF.js has no ${backend} backend in this browser`);
      await exclusive(() => activate(tf, backend));
    })();
    s.catch(() => started.delete(backend));
    started.set(backend, s);
  }
  return s;
}

/**
 * The TF.js backend behind one of ours. `wasm` means tfjs-backend-wasm; TF.js's pure-JS `cpu`
 * backend stands in only where WebAssembly itself is missing, since a WASM backend that fails to
 * start otherwise means its files are not served, which should fail loudly rather than run 10-50×
 * slower.
 */
function tfBackendFor(backend: BackendId): TfBackend {
  if (backend === 'webgpu') return 'webgpu';
  return typeof WebAssembly === 'object' ? 'wasm' : 'cpu';
}

interface Signature {
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

function signatureOf(model: LoadedModel, kind: TfjsModelKind, json: TfjsModelJson): Signature {
  if (kind === 'graph') {
    const g = model as GraphModel;
    // tfjs-converter knows the shapes of placeholders only; the converter's signature (when the
    // model.json has one) also gives the outputs'.
    const info = (side: 'inputs' | 'outputs', t: { name: string; dtype: string; shape?: number[] }): ValueInfo => ({
      name: t.name,
      type: toTensorType(t.dtype, `${side === 'inputs' ? 'input' : 'output'} "${t.name}"`),
      dims: toDims(t.shape ?? signatureShape(json, side, t.name)),
    });
    return { inputs: g.inputs.map((t) => info('inputs', t)), outputs: g.outputs.map((t) => info('outputs', t)) };
  }
  const l = model as LayersModel;
  return {
    inputs: l.inputs.map((t, i) => ({
      name: l.inputNames[i] ?? t.name,
      type: toTensorType(t.dtype, `input "${t.name}"`),
      dims: toDims(t.shape),
    })),
    outputs: l.outputs.map((t, i) => ({
      name: l.outputNames[i] ?? t.name,
      type: toTensorType(t.dtype, `output "${t.name}"`),
      dims: toDims(t.shape),
    })),
  };
}

/** A TF.js model opened on one backend. */
class TfjsSession implements EngineSession {
  readonly inputs: ValueInfo[];
  readonly outputs: ValueInfo[];
  /** Set once `execute` refused the graph (control flow, dynamic ops): `executeAsync` from then on. */
  private async = false;

  constructor(
    private readonly tf: Tf,
    private readonly model: LoadedModel,
    private readonly kind: TfjsModelKind,
    json: TfjsModelJson,
    private readonly tfBackend: TfBackend,
    readonly backend: BackendId,
  ) {
    ({ inputs: this.inputs, outputs: this.outputs } = signatureOf(model, kind, json));
  }

  run(feeds: TensorMap): Promise<TensorMap> {
    return exclusive(async () => {
      const { tf } = this;
      await activate(tf, this.tfBackend);
      const inputs = this.inputs.map((info) => {
        const t = feeds[info.name]!;
        const { dtype, values } = toTfInput(t);
        return tf.tensor(values, [...t.dims], dtype);
      });
      let results: TfTensor[] = [];
      try {
        results = await this.execute(inputs);
        const out: TensorMap = {};
        for (const [i, info] of this.outputs.entries()) {
          const r = results[i]!;
          let data = await r.data();
          // The cpu backend hands out the tensor's own array, which may be a weight's; the others copy.
          if (this.tfBackend === 'cpu') data = data.slice();
          out[info.name] = fromTfOutput(r.dtype, data, r.shape, info.name);
        }
        return out;
      } catch (err) {
        if (err instanceof ModelFormatError) throw err;
        throw new RunError(`TF.js failed to run the model: ${message(err)}`, { cause: err });
      } finally {
        tf.dispose(inputs);
        tf.dispose(results);
      }
    });
  }

  private async execute(inputs: TfTensor[]): Promise<TfTensor[]> {
    const list = (r: TfTensor | TfTensor[]) => (Array.isArray(r) ? r : [r]);
    if (this.kind === 'layers') {
      const l = this.model as LayersModel;
      return list(this.tf.tidy(() => l.predict(inputs)));
    }
    const g = this.model as GraphModel;
    const named = Object.fromEntries(this.inputs.map((info, i) => [info.name, inputs[i]!]));
    const names = this.outputs.map((o) => o.name);
    if (!this.async) {
      try {
        return list(this.tf.tidy(() => g.execute(named, names)));
      } catch (err) {
        // tfjs-converter refuses graphs with control flow or dynamic ops in `execute` and names
        // `executeAsync` in its message; anything else is a real failure.
        if (!/executeAsync/.test(message(err))) throw err;
        this.async = true;
      }
    }
    return list(await g.executeAsync(named, names));
  }

  dispose(): Promise<void> {
    return exclusive(async () => {
      this.model.dispose();
    });
  }
}

/**
 * The TF.js engine: graph models (tfjs-converter) and layers models (Keras) whose `model.json`
 * and weight shards the worker stored. `webgpu` runs on tfjs-backend-webgpu and `wasm` on
 * tfjs-backend-wasm (SIMD, one thread: see `start`). Its priority is below onnxruntime's; the
 * two never read the same file anyway.
 */
export const tfjsEngine: Engine = {
  name: 'tfjs',
  priority: 50,

  accepts(model: ModelBytes): boolean {
    return parseModelJson(model.graph) !== undefined;
  },

  companions(graph: Uint8Array, graphUrl: string): ModelFile[] {
    return shardFiles(graph, graphUrl);
  },

  async init(backend: BackendId, config: EngineConfig): Promise<void> {
    const tfBackend = tfBackendFor(backend);
    try {
      await start(tfBackend, config);
    } catch (err) {
      throw new Error(`TF.js could not start its ${tfBackend} backend: ${message(err)}`, { cause: err });
    }
  },

  async open(model: ModelBytes, backend: BackendId, config: EngineConfig): Promise<EngineSession> {
    const json = parseModelJson(model.graph);
    if (!json) throw new ModelFormatError('The model is not a TF.js model.json');
    const kind = modelKind(json);
    const tfBackend = tfBackendFor(backend);
    await start(tfBackend, config);
    const { tf, loadStoredModel } = await loadTfjs();
    return exclusive(async () => {
      await activate(tf, tfBackend);
      let loaded: LoadedModel;
      try {
        loaded = await loadStoredModel(model, kind);
      } catch (err) {
        if (err instanceof ModelFormatError) throw err;
        // On WASM (or cpu) a model that will not load is itself bad; on WebGPU it may only be
        // the backend (a weight upload that failed), so WASM still gets its turn.
        if (backend === 'wasm')
          throw new ModelFormatError(`TF.js cannot load the model: ${message(err)}`, { cause: err });
        throw new Error(`TF.js could not load the model on webgpu: ${message(err)}`, { cause: err });
      }
      try {
        return new TfjsSession(tf, loaded, kind, json, tfBackend, backend);
      } catch (err) {
        loaded.dispose();
        throw err;
      }
    });
  },
};
