import type { Range } from './calibrate.js';
import { initializerMap, topologicalSort } from './graph.js';
import type { ModelProto, NodeProto, TensorProto } from './onnx.js';
import { DataType, dimsOf, floatData, getIntAttribute, intAttribute, makeNode, makeTensor } from './onnx.js';
import { activationParams, quantizeBias } from './quant-math.js';
import type { QuantizedWeightInfo } from './weights.js';

/** Ops the QDQ pass quantizes, in the pattern onnxruntime fuses (QLinearConv, QLinearMatMul, QGemm). */
export const QDQ_OPS: readonly string[] = ['Conv', 'MatMul', 'Gemm'];

/**
 * Nodes the QDQ pass can quantize after {@link quantizeWeights}: Conv, MatMul with a 2-D
 * weight, and Gemm without transA/alpha/beta; the weight must be int8 and any bias a 1-D fp32
 * initializer with one value per output channel (it becomes int32).
 */
export function qdqCandidates(model: ModelProto, weights: ReadonlyMap<string, QuantizedWeightInfo>): NodeProto[] {
  const graph = model.graph;
  if (!graph) return [];
  const inits = initializerMap(graph);
  return graph.node.filter((n) => {
    if ((n.domain && n.domain !== 'ai.onnx') || !QDQ_OPS.includes(n.opType)) return false;
    const w = weights.get(n.input[1] ?? '');
    if (!w || !n.input[0] || inits.has(n.input[0]) || weights.has(n.input[0])) return false;
    if (n.opType === 'MatMul' && w.dims.length !== 2) return false;
    if (n.opType === 'Gemm') {
      const attr = (name: string) => n.attribute.find((a) => a.name === name);
      if (getIntAttribute(n, 'transA', 0) !== 0) return false;
      if ((attr('alpha')?.f ?? 1) !== 1 || (attr('beta')?.f ?? 1) !== 1) return false;
    }
    const b = n.input[2];
    if (b) {
      const t = inits.get(b);
      const channels = w.dims[w.axis];
      if (!t || t.dataType !== DataType.FLOAT || dimsOf(t).length !== 1 || dimsOf(t)[0] !== channels) return false;
    }
    return true;
  });
}

/** The activations the QDQ pass needs ranges for: each node's input 0 and output 0. */
export function qdqTensors(nodes: readonly NodeProto[]): string[] {
  return [...new Set(nodes.flatMap((n) => [n.input[0]!, n.output[0]!]))];
}

/** Inputs of {@link insertQdq}. */
export interface QdqPlan {
  /** Names of the nodes to quantize (from {@link qdqCandidates}). */
  nodes: ReadonlySet<string>;
  /** Calibrated ranges of {@link qdqTensors} of those nodes. */
  ranges: ReadonlyMap<string, Range>;
  /** The weights {@link quantizeWeights} stored as int8. */
  weights: ReadonlyMap<string, QuantizedWeightInfo>;
}

/**
 * Static QDQ in place, on a model whose weights are already int8 + DequantizeLinear: for each
 * planned node, its input gets QuantizeLinear→DequantizeLinear (uint8, asymmetric, from the
 * calibrated range), its bias becomes int32 (scale = input scale × weight scale, zero point 0)
 * behind a DequantizeLinear, and its output gets QuantizeLinear→DequantizeLinear. That is
 * DQ(x) + DQ(w) [+ DQ(b)] → op → Q → DQ, which onnxruntime's graph optimizer fuses into
 * QLinearConv / QLinearMatMul / QGemm.
 */
export function insertQdq(model: ModelProto, plan: QdqPlan): void {
  const graph = model.graph;
  if (!graph) return;
  const inits = initializerMap(graph);
  const added: TensorProto[] = [];
  const nodes: NodeProto[] = [];
  const dequantized = new Map<string, string>(); // fp32 tensor -> its Q→DQ'd version
  const params = (t: string) => {
    const r = plan.ranges.get(t);
    if (!r) throw new Error(`no calibrated range for ${t}`);
    return activationParams(r.min, r.max);
  };
  const addQdq = (t: string, source: string, target: string) => {
    const p = params(t);
    const s = `${t}_act_scale`;
    const z = `${t}_act_zero_point`;
    added.push(
      makeTensor(s, DataType.FLOAT, [], Float32Array.of(p.scale)),
      makeTensor(z, DataType.UINT8, [], Uint8Array.of(p.zeroPoint)),
    );
    nodes.push(
      makeNode('QuantizeLinear', [source, s, z], [`${t}_act_quantized`], `${t}_QuantizeLinear`),
      makeNode('DequantizeLinear', [`${t}_act_quantized`, s, z], [target], `${t}_DequantizeLinear`),
    );
  };
  const planned = graph.node.filter((n) => plan.nodes.has(n.name));
  // Outputs first: a quantized output that feeds another planned node is reused as its input.
  for (const n of planned) {
    const y = n.output[0]!;
    n.output[0] = `${y}_fp32`;
    addQdq(y, n.output[0], y);
    dequantized.set(y, y);
  }
  for (const n of planned) {
    const x = n.input[0]!;
    let dq = dequantized.get(x);
    if (!dq) {
      dq = `${x}_act_dequantized`;
      addQdq(x, x, dq);
      dequantized.set(x, dq);
    }
    n.input[0] = dq;
    const b = n.input[2];
    if (b) {
      const w = plan.weights.get(n.input[1]!)!;
      const bias = quantizeBias(floatData(inits.get(b)!), params(x).scale, w.scale);
      const base = `${n.name}_bias`;
      added.push(
        makeTensor(`${base}_quantized`, DataType.INT32, [bias.q.length], bias.q),
        makeTensor(`${base}_scale`, DataType.FLOAT, [bias.q.length], bias.scale),
        makeTensor(`${base}_zero_point`, DataType.INT32, [bias.q.length], new Int32Array(bias.q.length)),
      );
      nodes.push(
        makeNode(
          'DequantizeLinear',
          [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`],
          [base],
          `${base}_DequantizeLinear`,
          [intAttribute('axis', 0)],
        ),
      );
      n.input[2] = base;
    }
  }
  graph.node = [...graph.node, ...nodes];
  graph.initializer = [...graph.initializer, ...added];
  pruneInitializers(model);
  topologicalSort(graph);
}

/** Drops initializers nothing reads (fp32 biases replaced by int32 ones). */
export function pruneInitializers(model: ModelProto): void {
  const graph = model.graph;
  if (!graph) return;
  const used = new Set([...graph.node.flatMap((n) => n.input), ...graph.output.map((o) => o.name)]);
  graph.initializer = graph.initializer.filter((t) => used.has(t.name));
}
