// Builds the INT8 bench's MatMul-heavy model: an MLP digit classifier, 784 → 1024 → 1024 → 10
// (ReLU), trained here on the digits split (models/digits/data.mjs) and exported to ONNX as
// Gemm + Relu, the graph exporters write for a dense layer on a [batch, features] input.
//
//   node models/digits-mlp/train.mjs [--out file.onnx]
//
// The bench (bench/lib/int8-models.mjs) calls trainDigitsMlp() and caches the model in
// bench/.cache/ under this file's hash, so only the first run pays (about a minute here).
// Trained with pure-JS @tensorflow/tfjs on its WebAssembly backend (XNNPACK; tfjs-node does not
// install here): MatMul-only training runs there several times faster than on the CPU backend.
// Every random stream (init, batch order, shifts) is seeded; nothing uses Math.random.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-web/wasm';
import { SEED, loadSplit, mulberry32, shuffleInPlace } from '../digits/data.mjs';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');

/** The recipe; part of the bench's cache key through this file's hash. */
export const CONFIG = {
  hidden: [1024, 1024],
  epochs: 8,
  batchSize: 64,
  learningRate: 1e-3,
  lrDecay: 0.7, // per epoch
  maxShift: 2, // random translation of each training digit, pixels
};
const SIZE = 28;
const PIXELS = SIZE * SIZE;
const CLASSES = 10;

/** Copies `img` into `out` at `offset`, translated by (dx, dy) and zero-filled. */
function shiftInto(out, offset, img, dx, dy) {
  for (let y = 0; y < SIZE; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= SIZE) continue;
    for (let x = 0; x < SIZE; x++) {
      const sx = x - dx;
      if (sx >= 0 && sx < SIZE) out[offset + y * SIZE + x] = img[sy * SIZE + sx];
    }
  }
}

/**
 * x·W + b whose gradients transpose explicitly: tfjs-backend-wasm's matMul with a transposed
 * operand (what the stock gradient asks for) runs ~7x slower than a plain one here.
 */
const dense = tf.customGrad((x, w, b, save) => {
  save([x, w]);
  return {
    value: tf.add(tf.matMul(x, w), b),
    gradFunc: (dy, [sx, sw]) => [tf.matMul(dy, tf.transpose(sw)), tf.matMul(tf.transpose(sx), dy), tf.sum(dy, 0)],
  };
});

/** Layers as `{ name, w, b, relu }`, He-normal (ReLU layers) / Glorot-uniform init, zero biases, seeded. */
function buildModel() {
  const widths = [PIXELS, ...CONFIG.hidden, CLASSES];
  return widths.slice(1).map((out, i) => {
    const last = i === widths.length - 2;
    const init = last
      ? tf.initializers.glorotUniform({ seed: SEED + 10 })
      : tf.initializers.heNormal({ seed: SEED + 1 + i });
    return {
      name: last ? 'logits' : `fc${i + 1}`,
      w: tf.variable(init.apply([widths[i], out])),
      b: tf.variable(tf.zeros([out])),
      relu: !last,
    };
  });
}

function forward(layers, x) {
  return layers.reduce((h, l) => {
    const y = dense(h, l.w, l.b);
    return l.relu ? tf.relu(y) : y;
  }, x);
}

/** Mini-batches made here (model.fit shuffles with Math.random). */
async function train(layers, data, log) {
  const { epochs, batchSize, learningRate, lrDecay, maxShift } = CONFIG;
  const n = data.images.length;
  const rand = mulberry32(SEED + 200);
  const optimizer = tf.train.adam(learningRate);
  const bx = new Float32Array(batchSize * PIXELS);
  const by = new Float32Array(batchSize * CLASSES);
  for (let epoch = 0; epoch < epochs; epoch++) {
    optimizer.learningRate = learningRate * lrDecay ** epoch;
    const t0 = performance.now();
    const order = shuffleInPlace(
      Array.from({ length: n }, (_, i) => i),
      rand,
    );
    let loss = 0;
    let batches = 0;
    for (let start = 0; start < n; start += batchSize) {
      const idx = order.slice(start, start + batchSize);
      bx.fill(0);
      by.fill(0);
      idx.forEach((k, j) => {
        const dx = Math.round((2 * rand() - 1) * maxShift);
        const dy = Math.round((2 * rand() - 1) * maxShift);
        shiftInto(bx, j * PIXELS, data.images[k], dx, dy);
        by[j * CLASSES + data.labels[k]] = 1;
      });
      const xb = tf.tensor2d(bx.subarray(0, idx.length * PIXELS), [idx.length, PIXELS]);
      const yb = tf.tensor2d(by.subarray(0, idx.length * CLASSES), [idx.length, CLASSES]);
      const cost = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(yb, forward(layers, xb)), true);
      loss += (await cost.data())[0];
      batches++;
      tf.dispose([xb, yb, cost]);
    }
    log(
      `epoch ${epoch + 1}/${epochs}  loss ${(loss / batches).toFixed(4)}  (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    );
  }
  optimizer.dispose();
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function tensorProto(name, tensor) {
  const f32 = Float32Array.from(tensor.dataSync());
  return { name, dims: tensor.shape, dataType: FLOAT, rawData: new Uint8Array(f32.buffer) };
}

const valueInfo = (name, dims) => ({
  name,
  type: {
    tensorType: {
      elemType: FLOAT,
      shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) },
    },
  },
});

/** Dense layers as Gemm (the [in, out] weight is Gemm's B with transB = 0) and Relu. */
function exportOnnx(layers) {
  const node = [];
  const initializer = [];
  let cur = 'x';
  for (const { name, w, b, relu } of layers) {
    initializer.push(tensorProto(`${name}.weight`, w), tensorProto(`${name}.bias`, b));
    const out = relu ? `${name}/gemm` : name;
    node.push({ opType: 'Gemm', name, input: [cur, `${name}.weight`, `${name}.bias`], output: [out] });
    if (relu) node.push({ opType: 'Relu', name: `${name}/relu`, input: [out], output: [`${name}/relu`] });
    cur = relu ? `${name}/relu` : name;
  }
  const proto = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'outpost models/digits-mlp/train.mjs',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'digits-mlp',
      node,
      initializer,
      input: [valueInfo('x', ['batch', PIXELS])],
      output: [valueInfo(cur, ['batch', CLASSES])],
    },
  });
  const err = onnx.ModelProto.verify(proto);
  if (err) throw new Error(`ONNX model does not verify: ${err}`);
  return onnx.ModelProto.encode(proto).finish();
}

/** Test images as [n, 784] float32 and their labels. */
export function flatten(images) {
  const data = new Float32Array(images.length * PIXELS);
  images.forEach((img, i) => data.set(img, i * PIXELS));
  return data;
}

const argmaxAccuracy = (logits, labels) =>
  labels.filter((label, i) => {
    const row = logits.subarray(i * CLASSES, (i + 1) * CLASSES);
    return row.indexOf(Math.max(...row)) === label;
  }).length / labels.length;

/**
 * Trains the MLP and returns its ONNX bytes with what was measured: test accuracy in tfjs and in
 * onnxruntime-web (WASM, same digits), and the largest logit difference between the two.
 * @param {{ log?: (line: string) => void }} [options]
 */
export async function trainDigitsMlp({ log = () => {} } = {}) {
  const t0 = performance.now();
  await tf.setBackend('wasm');
  await tf.ready();
  const { train: trainSet, test } = loadSplit();
  const layers = buildModel();
  await train(layers, trainSet, log);
  const x = flatten(test.images);
  const tfLogits = tf.tidy(() => forward(layers, tf.tensor2d(x, [test.labels.length, PIXELS])).dataSync());
  const bytes = exportOnnx(layers);
  tf.dispose(layers.flatMap((l) => [l.w, l.b]));

  ort.env.wasm.numThreads = 1;
  ort.env.logLevel = 'error';
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const out = await session.run({ x: new ort.Tensor('float32', x, [test.labels.length, PIXELS]) });
  const onnxLogits = out[session.outputNames[0]].data;
  await session.release();
  let maxDiff = 0;
  for (let i = 0; i < onnxLogits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(onnxLogits[i] - tfLogits[i]));
  const report = {
    config: CONFIG,
    accuracy: { tfjs: argmaxAccuracy(tfLogits, test.labels), onnx: argmaxAccuracy(onnxLogits, test.labels) },
    maxLogitDiff: maxDiff,
    seconds: (performance.now() - t0) / 1000,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  };
  if (report.accuracy.onnx < 0.95 || maxDiff > 1e-3) {
    throw new Error(
      `digits-mlp: accuracy ${report.accuracy.onnx}, tfjs/ONNX logit diff ${maxDiff}: not a usable model`,
    );
  }
  return { bytes, report };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const { bytes, report } = await trainDigitsMlp({ log: console.log });
  if (values.out) writeFileSync(values.out, bytes);
  console.log(JSON.stringify({ ...report, bytes: bytes.length }, null, 2));
}
