import { describe, expect, it } from 'vitest';
import { build, floatTensor, int, ints, randomValues, vi } from './__tests__/build.js';
import { encodeModel, floatData, intData, toNumber } from './onnx.js';
import { normalizeModel } from './normalize.js';
import { runAll } from './runtime.js';

const constant = (output: string, tensor: ReturnType<typeof floatTensor>) => ({
  opType: 'Constant',
  output: [output],
  attribute: [{ name: 'value', type: 4, t: tensor }],
});

describe('normalizeModel', () => {
  it('turns Constant nodes into initializers with the same values', () => {
    const w = randomValues(6);
    const model = build({
      opset: 13,
      nodes: [constant('w', floatTensor('ignored', [3, 2], w)), { opType: 'MatMul', input: ['x', 'w'], output: ['y'] }],
      inputs: [vi('x', [1, 3])],
      outputs: [vi('y', [1, 2])],
    });
    const summary = normalizeModel(model);
    expect(summary.constantsToInitializers).toBe(1);
    expect(model.graph!.node.map((n) => n.opType)).toEqual(['MatMul']);
    const init = model.graph!.initializer.find((t) => t.name === 'w')!;
    expect(init.dims.map(toNumber)).toEqual([3, 2]);
    expect(floatData(init)).toEqual(w);
  });

  it('upgrades opset 11 to 13, moving Squeeze/Unsqueeze/ReduceSum axes and Split sizes to inputs, same outputs', async () => {
    const spec = {
      opset: 11,
      nodes: [
        { opType: 'Unsqueeze', input: ['x'], output: ['u'], attribute: [ints('axes', [0])] },
        { opType: 'Squeeze', input: ['u'], output: ['s'], attribute: [ints('axes', [0])] },
        { opType: 'Split', input: ['s'], output: ['a', 'b'], attribute: [int('axis', 1), ints('split', [1, 3])] },
        { opType: 'ReduceSum', input: ['b'], output: ['r'], attribute: [ints('axes', [1]), int('keepdims', 1)] },
        { opType: 'Softmax', input: ['x'], output: ['sm'], attribute: [int('axis', 1)] },
      ],
      inputs: [vi('x', [2, 4])],
      outputs: [vi('a', [2, 1]), vi('r', [2, 1]), vi('sm', [2, 4])],
    };
    const before = build(spec);
    const after = build(spec);
    const summary = normalizeModel(after);
    expect(summary).toMatchObject({ opsetBefore: 11, opsetAfter: 13 });
    expect(summary.rewritten).toEqual({ Unsqueeze: 1, Squeeze: 1, Split: 1, ReduceSum: 1, Softmax: 1 });
    const inits = new Map(after.graph!.initializer.map((t) => [t.name, t]));
    const split = after.graph!.node.find((n) => n.opType === 'Split')!;
    expect(split.attribute.map((a) => a.name)).toEqual(['axis']);
    expect(intData(inits.get(split.input[1]!)!)).toEqual([1, 3]);
    const unsq = after.graph!.node.find((n) => n.opType === 'Unsqueeze')!;
    expect(unsq.attribute).toEqual([]);
    expect(intData(inits.get(unsq.input[1]!)!)).toEqual([0]);

    const x = { type: 'float32' as const, data: randomValues(8, 7), dims: [2, 4] };
    const [ref] = await runAll(encodeModel(before), [{ x }]);
    const [out] = await runAll(encodeModel(after), [{ x }]);
    for (const name of ['a', 'r', 'sm']) expect(out![name]!.data).toEqual(ref![name]!.data);
  });

  it('leaves opset 13 models alone', () => {
    const model = build({
      nodes: [{ opType: 'Relu', input: ['x'], output: ['y'] }],
      inputs: [vi('x', [1])],
      outputs: [vi('y', [1])],
    });
    expect(normalizeModel(model)).toEqual({
      constantsToInitializers: 0,
      opsetBefore: 13,
      opsetAfter: 13,
      rewritten: {},
    });
  });
});
