import { compareOutputs, relativeError } from './evaluate.js';
import { initializerMap } from './graph.js';
import { decodeModel, encodeModel, floatData } from './onnx.js';
import type { Feeds, Outputs } from './runtime.js';
import { runAll } from './runtime.js';
import { dequantizedWeight, weightTensors } from './weights.js';

/** How far int8 on one weight alone moves a model's outputs. */
export interface WeightSensitivity {
  /** The weight initializer's name. */
  name: string;
  /** The op types using it. */
  ops: string[];
  /** Number of values. */
  elements: number;
  /**
   * Relative error of the outputs (mean |int8 - fp32| / mean |fp32|, worst output) with only
   * this weight int8, every other weight fp32.
   */
  relativeError: number;
}

/**
 * Measures, for each weight the weight-only pass would store as int8, the output error when
 * only that weight is int8: the model is run with the weight replaced by the values its int8
 * form restores to, on `feeds`, against `ref` (the fp32 model's outputs on them). One session
 * per weight, so this costs about (weights) x (session + runs).
 *
 * Sorted by error, largest first.
 */
export async function weightSensitivity(
  fp32: Uint8Array,
  feeds: readonly Feeds[],
  ref: readonly Outputs[],
  onProgress: (done: number, total: number) => void = () => undefined,
): Promise<WeightSensitivity[]> {
  const model = decodeModel(fp32);
  const inits = initializerMap(model.graph!);
  const weights = weightTensors(model);
  const out: WeightSensitivity[] = [];
  for (const [i, w] of weights.entries()) {
    onProgress(i, weights.length);
    const t = inits.get(w.name)!;
    const { rawData, floatData: values } = t;
    const q = dequantizedWeight(floatData(t), w.dims, w.axis);
    t.rawData = new Uint8Array(q.buffer);
    t.floatData = [];
    try {
      const err = relativeError(compareOutputs(ref, await runAll(encodeModel(model), feeds)));
      out.push({ name: w.name, ops: w.ops, elements: w.elements, relativeError: err });
    } finally {
      t.rawData = rawData;
      t.floatData = values;
    }
  }
  onProgress(weights.length, weights.length);
  return out.sort((a, b) => b.relativeError - a.relativeError);
}
