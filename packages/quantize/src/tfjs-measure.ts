import type { GraphModel } from '@tensorflow/tfjs-converter';
import type * as tfc from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { CalibrationDataError, UnsupportedModelError } from './errors.js';

// Runs TF.js models in Node to measure what a weight encoding does to their outputs. TF.js is
// loaded on first use only (optional peer dependencies), so ONNX users never load it: the wasm
// backend when @tensorflow/tfjs-backend-wasm is installed (MoveNet: ~55 ms a run), else the
// pure-JS cpu backend (~1.4 s). tfjs-node is not needed.

/** A model input for TF.js measurements, as onnxruntime users know tensors. */
export interface TfjsTensor {
  type: 'float32' | 'int32';
  data: Float32Array | Int32Array;
  dims: number[];
}

/** One set of inputs, by input name (a graph model's input node, a layers model's input layer). */
export type TfjsFeed = Record<string, TfjsTensor>;

/**
 * How outputs are compared with the source model's:
 * - `max-abs`: the largest |difference| over every element of every output.
 * - `keypoints`: for pose outputs laid out `[..., keypoints, 3]` as (y, x, score), like
 *   MoveNet's: the largest |difference| of the coordinates only. A keypoint score is read off one
 *   heatmap cell and jumps when a near-tie picks the neighbouring cell (uint16 weights already
 *   move MoveNet's scores by 0.27 while its coordinates move by 0.005), so scores are reported
 *   but not held to the tolerance.
 */
export type TfjsErrorMetric = 'max-abs' | 'keypoints';

type Tf = typeof tfc;
let loading: Promise<{ tf: Tf; backend: string }> | undefined;

/** TF.js core, converter and layers on the fastest backend Node has here (wasm, else cpu). */
export function loadTfjs(): Promise<{ tf: Tf; backend: string }> {
  loading ??= (async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    try {
      await import('@tensorflow/tfjs-backend-wasm');
      // Node has no threads for it; one thread also keeps measurements comparable.
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
      if (await tf.setBackend('wasm')) return { tf, backend: 'wasm' };
    } catch {
      // Not installed or not loadable: the cpu backend is slower but exact enough.
    }
    await tf.setBackend('cpu');
    return { tf, backend: 'cpu' };
  })();
  return loading;
}

/** Input names of a TF.js model.json: a graph model's signature or Placeholders, a layers model's input layers. */
export function tfjsInputNames(json: { [key: string]: unknown }): string[] {
  const topology = json['modelTopology'] as Record<string, unknown> | undefined;
  const signature = json['signature'] as { inputs?: Record<string, unknown> } | undefined;
  if (signature?.inputs) return Object.keys(signature.inputs).map((k) => k.replace(/:\d+$/, ''));
  const nodes = topology?.['node'] as { name: string; op: string }[] | undefined;
  if (nodes) return nodes.filter((n) => n.op === 'Placeholder').map((n) => n.name);
  const config = (topology?.['model_config'] ?? topology) as { config?: { input_layers?: [string, ...unknown[]][] } };
  const layers = config?.config?.input_layers;
  if (layers) return layers.map((l) => l[0]);
  // A Sequential model: Keras and TF.js name its input after the first layer.
  const first = (config as { config?: { layers?: { config?: { name?: string } }[] } })?.config?.layers?.[0]?.config
    ?.name;
  if (first) return [`${first}_input`];
  throw new UnsupportedModelError('cannot tell the model’s inputs from its model.json');
}

/** One weight as the measuring model gets it: float32 values, or bytes with their manifest entry. */
export interface MeasuredWeight {
  spec: tfc.io.WeightsManifestEntry;
  bytes: Uint8Array;
}

/** A TF.js model loaded afresh for each set of weights, run on fixed feeds. */
export class TfjsEvaluator {
  private constructor(
    private readonly tf: Tf,
    private readonly json: tfc.io.ModelJSON,
    private readonly layers: boolean,
    private readonly feeds: readonly TfjsFeed[],
    /** The TF.js backend measurements run on. */
    readonly backend: string,
  ) {}

  static async create(json: { [key: string]: unknown }, feeds: readonly TfjsFeed[]): Promise<TfjsEvaluator> {
    if (feeds.length === 0) throw new CalibrationDataError('no calibration inputs');
    const { tf, backend } = await loadTfjs();
    const layers =
      json['format'] === 'layers-model' ||
      (json['modelTopology'] as { class_name?: unknown })?.class_name !== undefined;
    const names = tfjsInputNames(json);
    for (const feed of feeds) {
      const missing = names.filter((n) => !(n in feed));
      if (missing.length)
        throw new CalibrationDataError(`inputs ${missing.join(', ')} missing (the model takes ${names.join(', ')})`);
    }
    return new TfjsEvaluator(tf, json as unknown as tfc.io.ModelJSON, layers, feeds, backend);
  }

  /** Every output of every feed, as float32, in feed order. */
  async run(weights: readonly MeasuredWeight[]): Promise<Float32Array[][]> {
    const { tf } = this;
    // Whoever shares this TF.js may have switched backends since.
    if (tf.getBackend() !== this.backend) await tf.setBackend(this.backend);
    const data = new Uint8Array(weights.reduce((n, w) => n + w.bytes.length, 0));
    weights.reduce((o, w) => (data.set(w.bytes, o), o + w.bytes.length), 0);
    const specs = weights.map((w) => w.spec);
    const artifacts = tf.io.getModelArtifactsForJSONSync(
      { ...this.json, weightsManifest: [{ paths: [], weights: specs }] },
      specs,
      data.buffer,
    );
    const handler: tfc.io.IOHandler = { load: () => Promise.resolve(artifacts) };
    const names = tfjsInputNames(this.json as unknown as Record<string, unknown>);
    const results: Float32Array[][] = [];
    if (this.layers) {
      const { loadLayersModel } = await import('@tensorflow/tfjs-layers');
      const model: LayersModel = await loadLayersModel(handler);
      try {
        for (const feed of this.feeds) {
          const xs = names.map((n) => toTf(tf, feed[n]!));
          const ys = model.predict(xs.length === 1 ? xs[0]! : xs);
          results.push(await collect(ys));
          tf.dispose(xs);
        }
      } finally {
        model.dispose();
      }
      return results;
    }
    const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
    const model: GraphModel = await loadGraphModel(handler);
    try {
      for (const feed of this.feeds) {
        const xs: tfc.NamedTensorMap = {};
        for (const n of names) xs[n] = toTf(tf, feed[n]!);
        // execute, unless the graph has control flow or dynamic shapes (then only executeAsync runs it).
        let ys: tfc.Tensor | tfc.Tensor[];
        try {
          ys = model.execute(xs);
        } catch {
          ys = await model.executeAsync(xs);
        }
        results.push(await collect(ys));
        tf.dispose(Object.values(xs));
      }
    } finally {
      model.dispose();
    }
    return results;
  }
}

function toTf(tf: Tf, t: TfjsTensor): tfc.Tensor {
  return tf.tensor(t.data, t.dims, t.type);
}

async function collect(ys: tfc.Tensor | tfc.Tensor[]): Promise<Float32Array[]> {
  const list = Array.isArray(ys) ? ys : [ys];
  const out: Float32Array[] = [];
  for (const y of list) {
    const v = await y.data();
    out.push(v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>));
    y.dispose();
  }
  return out;
}

/** The error of `got` against `want` (both from {@link TfjsEvaluator.run}) under `metric`. */
export function outputError(
  got: readonly Float32Array[][],
  want: readonly Float32Array[][],
  metric: TfjsErrorMetric,
): number {
  let max = 0;
  got.forEach((outs, f) =>
    outs.forEach((a, o) => {
      const b = want[f]![o]!;
      if (metric === 'keypoints' && a.length % 3 !== 0)
        throw new UnsupportedModelError(
          `metric keypoints needs outputs of (y, x, score) triples; output ${o} has ${a.length} values`,
        );
      for (let i = 0; i < a.length; i++) {
        if (metric === 'keypoints' && i % 3 === 2) continue;
        const d = Math.abs(a[i]! - b[i]!);
        // NaN anywhere is an unbounded error, never a pass.
        if (!(d <= max)) max = Number.isNaN(d) ? Infinity : d;
      }
    }),
  );
  return max;
}

/** The largest |difference| of keypoint scores (every third value), for reports. */
export function scoreError(got: readonly Float32Array[][], want: readonly Float32Array[][]): number {
  let max = 0;
  got.forEach((outs, f) =>
    outs.forEach((a, o) => {
      const b = want[f]![o]!;
      for (let i = 2; i < a.length; i += 3) max = Math.max(max, Math.abs(a[i]! - b[i]!));
    }),
  );
  return max;
}
