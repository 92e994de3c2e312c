import {
  ModelFormatError,
  RunError,
  type BackendId,
  type Dim,
  type Engine,
  type EngineConfig,
  type EngineSession,
  type ModelBytes,
  type Tensor,
  type TensorMap,
  type TensorType,
  type ValueInfo,
} from '@outpost/core';
import type * as Ort from 'onnxruntime-web';
import { checkOnnx, looksLikeOnnx } from './onnx-format.js';
import { warmupModel } from './warmup-model.js';

type OrtModule = typeof Ort;

/** The onnxruntime-web version this package pins; a variant choice is remade when it changes. */
export const ORT_VERSION = '1.30.0';

/**
 * onnxruntime-web builds are loaded on first use, never at import: the WASM build (14 MB of wasm)
 * for WASM, and the WebGPU build (its own 27 MB wasm, which also runs the CPU provider) only when
 * WebGPU is tried. Once the WebGPU build is in memory it serves WASM sessions too, so a worker
 * never holds both unless WASM was used before WebGPU.
 */
let wasmBuild: Promise<OrtModule> | undefined;
let webgpuBuild: Promise<OrtModule> | undefined;
/**
 * Whether the WebGPU build has opened a session. Only then may it serve WASM sessions: where its
 * files are not served (`@outpost/vite` with `webgpu: false`) it imports fine and then fails at
 * the first session, and WASM must not inherit that failure.
 */
let webgpuBuildWorks = false;

/** The part of a GPUDevice this engine watches (no DOM/WebGPU types in this package). */
interface WatchedDevice {
  lost: Promise<{ reason?: string; message?: string }>;
}

/** The WebGPU device onnxruntime-web runs on, once a session made it, and why it was lost, once it was. */
let device: WatchedDevice | undefined;
let deviceLost: string | undefined;

/**
 * Watches the device onnxruntime-web's WebGPU sessions use (one per worker). Once it is lost
 * (driver reset, `GPUDevice.destroy()`, the GPU process gone), no session on it can be trusted:
 * they refuse to run and say so, and the worker reopens the model on WASM (RELIABILITY R5).
 */
async function watchDevice(ort: OrtModule): Promise<void> {
  const d = (await ort.env.webgpu.device) as WatchedDevice;
  if (d === device) return;
  device = d;
  deviceLost = undefined;
  void d.lost.then((info) => {
    if (device !== d) return;
    deviceLost = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
    // New sessions must not trust the WebGPU build until a new device works.
    webgpuBuildWorks = false;
    warmups.delete('webgpu');
  });
}

function configure(ort: OrtModule, config: EngineConfig): OrtModule {
  ort.env.wasm.numThreads = config.numThreads;
  if (config.wasmPaths) ort.env.wasm.wasmPaths = config.wasmPaths;
  ort.env.logLevel = 'error';
  return ort;
}

/** One warm-up per backend: a session of the Identity model, created and released. */
const warmups = new Map<BackendId, Promise<void>>();

function warmUp(backend: BackendId, config: EngineConfig): Promise<void> {
  let w = warmups.get(backend);
  if (!w) {
    w = (async () => {
      const ort = await ortFor(backend, config);
      const session = await ort.InferenceSession.create(warmupModel(), { executionProviders: [backend] });
      await session.release();
    })();
    // A backend that failed to start may start later (a chunk that did not load, a lost device).
    w.catch(() => warmups.delete(backend));
    warmups.set(backend, w);
  }
  return w;
}

function ortFor(backend: BackendId, config: EngineConfig): Promise<OrtModule> {
  if (backend === 'webgpu') {
    webgpuBuild ??= import('onnxruntime-web/webgpu').then((m) => configure(m, config));
    // A failed import (a chunk that did not load) may succeed on a later try.
    webgpuBuild.catch(() => (webgpuBuild = undefined));
    return webgpuBuild;
  }
  if (webgpuBuild && webgpuBuildWorks && !wasmBuild) return webgpuBuild;
  wasmBuild ??= import('onnxruntime-web/wasm').then((m) => configure(m, config));
  return wasmBuild;
}

/** Maps onnxruntime's dims to ours: symbolic names kept, "unknown" (-1 or 2^32-1) → null. */
export function toDims(shape: ReadonlyArray<number | string>): Dim[] {
  return shape.map((d) => {
    if (typeof d === 'string') return d === '' ? null : d;
    return d < 0 || d >= 0xffffffff ? null : d;
  });
}

function valueInfos(meta: readonly Ort.InferenceSession.ValueMetadata[]): ValueInfo[] {
  return meta.map((m) =>
    m.isTensor
      ? { name: m.name, type: m.type as TensorType, dims: toDims(m.shape) }
      : // Sequences and maps have no tensor type; runs that feed them fail validation clearly.
        { name: m.name, type: 'float32', dims: [] },
  );
}

/**
 * Copies when the data is a view into a larger or shared buffer (the wasm heap), so the output
 * can be transferred to the page without detaching memory the engine still owns.
 */
function ownedData<T extends ArrayBufferView>(data: T): T {
  const buf = data.buffer;
  if (buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength) {
    return data;
  }
  return (data as unknown as { slice(): T }).slice();
}

class OnnxSession implements EngineSession {
  constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly backend: BackendId,
    readonly inputs: ValueInfo[],
    readonly outputs: ValueInfo[],
  ) {}

  /** Why this session cannot run any more (its WebGPU device was lost), if so. */
  lost(): string | undefined {
    return this.backend === 'webgpu' ? deviceLost : undefined;
  }

  private refuseIfLost(): void {
    const why = this.lost();
    if (why !== undefined) throw new RunError(`The WebGPU device was lost (${why}): this session cannot run`);
  }

  async run(feeds: TensorMap): Promise<TensorMap> {
    this.refuseIfLost();
    const ortFeeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new this.ort.Tensor(t.type, t.data as never, [...t.dims]);
    }
    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run(ortFeeds);
    } catch (err) {
      this.refuseIfLost();
      throw new RunError(`onnxruntime failed to run the model: ${message(err)}`, { cause: err });
    }
    const out: TensorMap = {};
    for (const [name, value] of Object.entries(results)) {
      const data = (await value.getData(true)) as Tensor['data'];
      out[name] = { type: value.type as TensorType, data: ownedData(data), dims: [...value.dims] };
    }
    // Outputs read back while the device was being lost may be zeros: never return them.
    this.refuseIfLost();
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The onnxruntime-web engine. (The worker checks a new WebGPU session with one probe run before
 * trusting it: onnxruntime-web can create a WebGPU session that then fails on its first run.)
 */
export const onnxEngine: Engine = {
  name: 'onnx',
  // Kept equal to the pinned dependency by a unit test.
  version: `onnxruntime-web ${ORT_VERSION}`,
  priority: 100,

  accepts(model: ModelBytes): boolean {
    return looksLikeOnnx(model.graph);
  },

  async init(backend: BackendId, config: EngineConfig): Promise<void> {
    try {
      await warmUp(backend, config);
    } catch (err) {
      throw new Error(`onnxruntime-web could not start on ${backend}: ${message(err)}`, { cause: err });
    }
    if (backend === 'webgpu') webgpuBuildWorks = true;
  },

  async open(model: ModelBytes, backend: BackendId, config: EngineConfig): Promise<EngineSession> {
    checkOnnx(model.graph);
    const ort = await ortFor(backend, config);
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(model.graph, {
        executionProviders: [backend],
        graphOptimizationLevel: 'all',
        externalData: model.external.map((f) => ({ path: f.path, data: f.data })),
      });
    } catch (err) {
      const text = message(err);
      // On WASM, a session that will not create means the model itself is bad (onnxruntime's
      // CPU provider runs every standard op); on WebGPU it may only be the provider.
      if (backend === 'wasm') throw new ModelFormatError(`onnxruntime cannot load the model: ${text}`, { cause: err });
      throw new Error(`session creation failed: ${text}`, { cause: err });
    }
    if (backend === 'webgpu') await watchDevice(ort);
    return new OnnxSession(
      ort,
      session,
      backend,
      valueInfos(session.inputMetadata),
      valueInfos(session.outputMetadata),
    );
  },
};
