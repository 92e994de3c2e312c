import { ensureNodeNames } from './graph.js';
import { UnsupportedModelError } from './errors.js';
import type { AttributeProto, ModelProto, NodeProto, TensorProto } from './onnx.js';
import {
  DataType,
  defaultOpset,
  getAttribute,
  intAttribute,
  makeInt64Tensor,
  makeNode,
  makeTensor,
  toNumber,
} from './onnx.js';

/** The opset quantized models use: per-channel DequantizeLinear (`axis`) needs 13. */
export const TARGET_OPSET = 13;

/** What {@link normalizeModel} changed. */
export interface NormalizeSummary {
  /** Constant nodes turned into initializers. */
  constantsToInitializers: number;
  /** Default-domain opset before. */
  opsetBefore: number;
  /** Default-domain opset after. */
  opsetAfter: number;
  /** Nodes rewritten for the opset upgrade, by op type. */
  rewritten: Record<string, number>;
}

function constantValue(node: NodeProto, name: string): TensorProto | undefined {
  const [attr] = node.attribute;
  if (!attr || node.attribute.length !== 1) return undefined;
  switch (attr.name) {
    case 'value':
      return attr.t ? { ...attr.t, name } : undefined;
    case 'value_float':
      return makeTensor(name, DataType.FLOAT, [], Float32Array.of(attr.f));
    case 'value_floats':
      return makeTensor(name, DataType.FLOAT, [attr.floats.length], Float32Array.from(attr.floats));
    case 'value_int':
      return makeInt64Tensor(name, [toNumber(attr.i)], []);
    case 'value_ints':
      return makeInt64Tensor(name, attr.ints.map(toNumber));
    default:
      // sparse_value, value_string(s): left as Constant nodes.
      return undefined;
  }
}

/** Moves `Constant` nodes' values into initializers, so weights are visible to the quantizer. */
export function constantsToInitializers(model: ModelProto): number {
  const graph = model.graph;
  if (!graph) return 0;
  let converted = 0;
  graph.node = graph.node.filter((node) => {
    if (node.opType !== 'Constant' || (node.domain && node.domain !== 'ai.onnx')) return true;
    const output = node.output[0];
    const tensor = output ? constantValue(node, output) : undefined;
    if (!tensor) return true;
    graph.initializer = [...graph.initializer, tensor];
    converted++;
    return false;
  });
  return converted;
}

function takeIntsAttribute(node: NodeProto, name: string): number[] | undefined {
  const attr = getAttribute(node, name);
  if (!attr) return undefined;
  node.attribute = node.attribute.filter((a) => a !== attr);
  return attr.ints.map(toNumber);
}

/**
 * Rewrites the ops whose signature changed between opsets 11 and 13 to their opset-13 form.
 * Attributes that became inputs become INT64 initializers; Softmax-family ops (which coerced
 * their input to 2D before 13) get the explicit Flatten/Reshape around them.
 */
function upgradeNode(node: NodeProto, index: number, addInit: (t: TensorProto) => string): NodeProto[] {
  const axesToInput = (attrName: string, slot: number): boolean => {
    const values = takeIntsAttribute(node, attrName);
    if (values === undefined) return false;
    const name = addInit(makeInt64Tensor(`${node.name || node.opType + index}_${attrName}`, values));
    while (node.input.length < slot) node.input.push('');
    node.input[slot] = name;
    return true;
  };
  switch (node.opType) {
    case 'Squeeze':
    case 'Unsqueeze':
    case 'ReduceSum':
      axesToInput('axes', 1);
      return [node];
    case 'Split':
      axesToInput('split', 1);
      return [node];
    case 'Dropout': {
      // Opset 12 made `ratio` an input; inference ignores it, but the attribute is invalid now.
      const ratio = getAttribute(node, 'ratio');
      if (ratio) {
        node.attribute = node.attribute.filter((a) => a !== ratio);
        const name = addInit(
          makeTensor(`${node.name || 'Dropout' + index}_ratio`, DataType.FLOAT, [], Float32Array.of(ratio.f)),
        );
        node.input = [node.input[0] ?? '', name];
      }
      return [node];
    }
    case 'Softmax':
    case 'LogSoftmax':
    case 'Hardmax': {
      // Before 13: flatten to [prod(d<axis), prod(d>=axis)], apply on axis 1, restore the shape.
      const axisAttr = getAttribute(node, 'axis');
      const axis = axisAttr ? toNumber(axisAttr.i) : 1;
      const x = node.input[0] ?? '';
      const y = node.output[0] ?? '';
      const base = node.name || `${node.opType}${index}`;
      const attrs: AttributeProto[] = [intAttribute('axis', 1)];
      return [
        makeNode('Flatten', [x], [`${base}_flat`], `${base}_flatten`, [intAttribute('axis', axis)]),
        makeNode('Shape', [x], [`${base}_shape`], `${base}_shapeof`),
        makeNode(node.opType, [`${base}_flat`], [`${base}_out2d`], base, attrs),
        makeNode('Reshape', [`${base}_out2d`, `${base}_shape`], [y], `${base}_reshape`),
      ];
    }
    default:
      return [node];
  }
}

const CHANGED_BEFORE_11 = new Set([
  'Clip',
  'Pad',
  'Resize',
  'Upsample',
  'Slice',
  'TopK',
  'Gather',
  'Scatter',
  'BatchNormalization',
  'Dropout',
]);

/**
 * Raises the default-domain opset to 13 when it is lower, rewriting the ops that changed.
 * Models from opset 11 and 12 are supported; older ones only when they use no op that changed
 * before 11.
 */
export function upgradeOpset(model: ModelProto, summary: Pick<NormalizeSummary, 'rewritten'>): void {
  const graph = model.graph;
  const opset = defaultOpset(model);
  if (!graph || opset >= TARGET_OPSET) return;
  if (opset < 11) {
    const old = graph.node.find((n) => CHANGED_BEFORE_11.has(n.opType));
    if (old) {
      throw new UnsupportedModelError(
        `opset ${opset} models with ${old.opType} are not upgraded (only opset 11 and 12 are)`,
        old.name,
      );
    }
  }
  const addInit = (t: TensorProto): string => {
    graph.initializer = [...graph.initializer, t];
    return t.name;
  };
  const changed = new Set([
    'Squeeze',
    'Unsqueeze',
    'ReduceSum',
    'Split',
    'Dropout',
    'Softmax',
    'LogSoftmax',
    'Hardmax',
  ]);
  graph.node = graph.node.flatMap((node, i) => {
    if ((node.domain && node.domain !== 'ai.onnx') || !changed.has(node.opType)) return [node];
    if (node.opType === 'Dropout' && opset >= 12) return [node];
    summary.rewritten[node.opType] = (summary.rewritten[node.opType] ?? 0) + 1;
    return upgradeNode(node, i, addInit);
  });
  model.opsetImport = model.opsetImport.map((o) =>
    !o.domain || o.domain === 'ai.onnx' ? { domain: '', version: TARGET_OPSET } : o,
  );
  // IR 7 is the first IR version for opset 13.
  if (toNumber(model.irVersion) < 7) model.irVersion = 7;
}

/**
 * Normalises a real-world model in place for quantization: Constant nodes become initializers,
 * the opset becomes at least 13, and initializers are no longer listed as graph inputs (so
 * onnxruntime may constant-fold what the quantizer inserts).
 */
export function normalizeModel(model: ModelProto): NormalizeSummary {
  if (model.graph) ensureNodeNames(model.graph);
  const summary: NormalizeSummary = {
    constantsToInitializers: constantsToInitializers(model),
    opsetBefore: defaultOpset(model),
    opsetAfter: 0,
    rewritten: {},
  };
  upgradeOpset(model, summary);
  summary.opsetAfter = defaultOpset(model);
  const graph = model.graph;
  if (graph) {
    const inits = new Set(graph.initializer.map((t) => t.name));
    graph.input = graph.input.filter((i) => !inits.has(i.name));
  }
  return summary;
}
