import { UnsupportedModelError } from './errors.js';
import type { GraphProto, NodeProto, TensorProto } from './onnx.js';

/** Initializers by name. */
export function initializerMap(graph: GraphProto): Map<string, TensorProto> {
  return new Map(graph.initializer.map((t) => [t.name, t]));
}

/** Node names are optional in ONNX; the passes need one for every node. */
export function ensureNodeNames(graph: GraphProto): void {
  const used = new Set(graph.node.map((n) => n.name).filter(Boolean));
  graph.node.forEach((n, i) => {
    if (n.name) return;
    let name = `${n.opType}_${i}`;
    while (used.has(name)) name += '_';
    used.add(name);
    n.name = name;
  });
}

/**
 * Orders nodes so every tensor is produced before it is consumed (ONNX requires it; the passes
 * append nodes at the end). Stable: nodes already in order keep their order.
 */
export function topologicalSort(graph: GraphProto): void {
  const producer = new Map<string, number>();
  graph.node.forEach((n, i) => n.output.forEach((o) => producer.set(o, i)));
  const state = new Uint8Array(graph.node.length); // 0 new, 1 visiting, 2 done
  const order: NodeProto[] = [];
  const visit = (start: number): void => {
    // Iterative DFS: real graphs are deep enough to overflow a recursive one.
    const stack: [number, number][] = [[start, 0]];
    while (stack.length > 0) {
      const top = stack[stack.length - 1]!;
      const [i, next] = top;
      const node = graph.node[i]!;
      if (next === 0) {
        if (state[i] === 2) {
          stack.pop();
          continue;
        }
        state[i] = 1;
      }
      if (next < node.input.length) {
        top[1]++;
        const p = producer.get(node.input[next]!);
        if (p === undefined || p === i || state[p] === 2) continue;
        if (state[p] === 1) throw new UnsupportedModelError('graph has a cycle', node.name);
        stack.push([p, 0]);
        continue;
      }
      state[i] = 2;
      order.push(node);
      stack.pop();
    }
  };
  graph.node.forEach((_, i) => visit(i));
  graph.node = order;
}

/** Consumers of each tensor. */
export function consumerMap(graph: GraphProto): Map<string, NodeProto[]> {
  const map = new Map<string, NodeProto[]>();
  for (const n of graph.node) {
    for (const i of n.input) {
      if (!i) continue;
      const list = map.get(i) ?? [];
      list.push(n);
      map.set(i, list);
    }
  }
  return map;
}
