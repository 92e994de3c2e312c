import { initializerMap, ensureNodeNames, topologicalSort } from './graph.js';
import type { ModelProto, NodeProto, TensorProto } from './onnx.js';
import { DataType, dimsOf, floatData, getIntAttribute, intAttribute, makeNode, makeTensor } from './onnx.js';
import type { QuantizedWeight } from './quant-math.js';
import { quantizeWeightPerChannel } from './quant-math.js';

/** Ops whose weight (input 1) the quantizer stores as int8. */
export const WEIGHT_OPS: readonly string[] = ['Conv', 'ConvTranspose', 'MatMul', 'Gemm'];

/** Where a node's weight is and which axis holds its output channels. */
export interface WeightSlot {
  /** The weight initializer's name. */
  name: string;
  /** Output-channel axis of the weight: the axis of per-channel scales. */
  axis: number;
}

/**
 * The weight slot of a Conv/ConvTranspose/MatMul/Gemm node, if its weight is a float32
 * initializer of rank ≥ 2: Conv `[M, C/g, kh, kw]` axis 0; ConvTranspose `[C, M/g, kh, kw]`
 * axis 1; MatMul B `[…, K, N]` the last axis; Gemm B axis 1, or 0 with transB.
 */
export function weightSlot(node: NodeProto, inits: ReadonlyMap<string, TensorProto>): WeightSlot | undefined {
  if ((node.domain && node.domain !== 'ai.onnx') || !WEIGHT_OPS.includes(node.opType)) return undefined;
  const name = node.input[1];
  const t = name ? inits.get(name) : undefined;
  if (!name || !t || t.dataType !== DataType.FLOAT) return undefined;
  const rank = t.dims.length;
  if (rank < 2) return undefined;
  switch (node.opType) {
    case 'Conv':
      return { name, axis: 0 };
    case 'ConvTranspose':
      return { name, axis: 1 };
    case 'MatMul':
      return { name, axis: rank - 1 };
    default:
      return { name, axis: getIntAttribute(node, 'transB', 0) ? 0 : 1 };
  }
}

/** A weight {@link quantizeWeights} would store as int8, as found in the graph. */
export interface WeightTensor extends WeightSlot {
  /** The weight's dims. */
  dims: number[];
  /** The op types using it, one per use. */
  ops: string[];
  /** Number of values. */
  elements: number;
}

/** Every weight {@link quantizeWeights} would store as int8, in graph order, each once. */
export function weightTensors(model: ModelProto): WeightTensor[] {
  const graph = model.graph;
  if (!graph) return [];
  const inits = initializerMap(graph);
  const found = new Map<string, WeightTensor>();
  for (const node of graph.node) {
    const slot = weightSlot(node, inits);
    if (!slot) continue;
    const seen = found.get(slot.name);
    if (seen) {
      seen.ops.push(node.opType);
      continue;
    }
    const dims = dimsOf(inits.get(slot.name)!);
    found.set(slot.name, { ...slot, dims, ops: [node.opType], elements: dims.reduce((a, b) => a * b, 1) });
  }
  return [...found.values()];
}

/**
 * The float32 values an int8 weight stands for: `q * scale` per channel, in float32, as
 * onnxruntime computes the Cast + Mul (or DequantizeLinear) that restores it.
 */
export function dequantizedWeight(w: Float32Array, dims: readonly number[], axis: number): Float32Array {
  const { q, scale } = quantizeWeightPerChannel(w, dims, axis);
  const channels = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  return Float32Array.from(q, (v, i) => Math.fround(v * (scale[Math.floor(i / inner) % channels] ?? 1)));
}

/** One weight stored as int8. */
export interface QuantizedWeightInfo extends QuantizedWeight {
  /** The original initializer name (now the DequantizeLinear's output). */
  name: string;
  /** The weight's dims. */
  dims: number[];
  /** The op types using it. */
  ops: string[];
}

/**
 * Weight-only INT8 in place: each Conv/ConvTranspose/MatMul/Gemm float weight becomes an int8
 * initializer (symmetric, per output channel, zero point 0) and nodes that restore it under the
 * weight's old name, so consumers are unchanged. Weights in `dequantizeLinear` (those of nodes
 * the QDQ pass will quantize) get a DequantizeLinear with `axis`, the form onnxruntime fuses;
 * the others get Cast + Mul by a per-channel scale, which onnxruntime constant-folds when the
 * session is created, so they run at fp32 speed from a file about 4x smaller. Biases stay fp32,
 * and so do the weights named in `keepFloat` (those whose int8 error the output cannot take).
 */
export function quantizeWeights(
  model: ModelProto,
  dequantizeLinear: ReadonlySet<string> | 'all' = new Set(),
  keepFloat: ReadonlySet<string> = new Set(),
): Map<string, QuantizedWeightInfo> {
  const graph = model.graph;
  const done = new Map<string, QuantizedWeightInfo>();
  if (!graph) return done;
  ensureNodeNames(graph);
  const original = initializerMap(graph);
  const inits = new Map(original);
  const dqNodes: NodeProto[] = [];
  for (const node of graph.node) {
    const slot = weightSlot(node, original);
    if (!slot || keepFloat.has(slot.name)) continue;
    const seen = done.get(slot.name);
    if (seen) {
      seen.ops.push(node.opType);
      continue;
    }
    const t = original.get(slot.name)!;
    const dims = dimsOf(t);
    const qw = quantizeWeightPerChannel(floatData(t), dims, slot.axis);
    const qName = `${slot.name}_quantized`;
    const sName = `${slot.name}_scale`;
    const zName = `${slot.name}_zero_point`;
    const channels = qw.scale.length;
    inits.delete(slot.name);
    const add = (t: TensorProto) => inits.set(t.name, t);
    add(makeTensor(qName, DataType.INT8, dims, qw.q));
    if (dequantizeLinear === 'all' || dequantizeLinear.has(slot.name)) {
      add(makeTensor(sName, DataType.FLOAT, [channels], qw.scale));
      add(makeTensor(zName, DataType.INT8, [channels], new Int8Array(channels)));
      dqNodes.push(
        makeNode('DequantizeLinear', [qName, sName, zName], [slot.name], `${slot.name}_DequantizeLinear`, [
          intAttribute('axis', slot.axis),
        ]),
      );
    } else {
      // Cast + Mul: the same values as DequantizeLinear, but onnxruntime's constant folding
      // skips DequantizeLinear (to keep QDQ groups for fusion), so a weight-only DQ would run on
      // every inference; Cast and Mul of initializers are folded when the session is created.
      add(
        makeTensor(
          sName,
          DataType.FLOAT,
          dims.map((d, i) => (i === slot.axis ? d : 1)),
          qw.scale,
        ),
      );
      dqNodes.push(
        makeNode('Cast', [qName], [`${slot.name}_cast`], `${slot.name}_Cast`, [intAttribute('to', DataType.FLOAT)]),
        makeNode('Mul', [`${slot.name}_cast`, sName], [slot.name], `${slot.name}_Mul`),
      );
    }
    done.set(slot.name, { ...qw, name: slot.name, dims, ops: [node.opType] });
  }
  graph.initializer = [...inits.values()];
  graph.node = [...dqNodes, ...graph.node];
  topologicalSort(graph);
  return done;
}
