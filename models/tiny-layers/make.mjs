// A tiny TF.js layers model with seeded weights, made with @tensorflow/tfjs in Node and saved
// through a custom IOHandler: Conv2D -> MaxPool -> Flatten -> Dense(relu) -> Dense(softmax) on
// 8x8x1 inputs (~3.5K weights). Tests use it to check that layers models (float32, and uint8 /
// uint16 / float16 weights from quantizeTfjs) run through Outpost as TF.js runs them directly.
//
// `node models/tiny-layers/make.mjs` (after `npm run build`) writes the fixtures the e2e spec
// serves: e2e/harness/public/tiny-layers/{float32,uint8,float16}/model.json and weights.

import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';

/** Side of the square single-channel input. */
export const SIDE = 8;

/**
 * The model as TF.js saves it: `modelJson` (format layers-model, one weight group naming
 * `weights.bin`) and the bytes of `weights.bin`. Deterministic: every initializer is seeded.
 */
export async function makeTinyLayers() {
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({
        inputShape: [SIDE, SIDE, 1],
        filters: 6,
        kernelSize: 3,
        padding: 'same',
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
        biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 2 }),
      }),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      tf.layers.flatten(),
      tf.layers.dense({
        units: 32,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }),
        biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: 4 }),
      }),
      tf.layers.dense({
        units: 5,
        activation: 'softmax',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 5 }),
        biasInitializer: tf.initializers.zeros(),
      }),
    ],
  });
  let saved;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(0), modelTopologyType: 'JSON' } };
    }),
  );
  model.dispose();
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version.tfjs}`,
    convertedBy: null,
    modelTopology: saved.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: saved.weightSpecs }],
  };
  const data = saved.weightData;
  return { modelJson, weights: new Uint8Array(Array.isArray(data) ? data[0] : data) };
}

/** Deterministic inputs in [0, 1): `count` images of SIDE x SIDE x 1 from a fixed LCG. */
export function tinyInputs(count, seed = 7) {
  let s = seed;
  return Array.from({ length: count }, () =>
    Float32Array.from({ length: SIDE * SIDE }, () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { quantizeTfjs } = await import('../../packages/quantize/dist/index.js');
  const out = fileURLToPath(new URL('../../e2e/harness/public/tiny-layers/', import.meta.url));
  const { modelJson, weights } = await makeTinyLayers();
  const write = (sub, json, files) => {
    mkdirSync(out + sub, { recursive: true });
    writeFileSync(`${out}${sub}/model.json`, JSON.stringify(json));
    for (const [path, bytes] of files) writeFileSync(`${out}${sub}/${path}`, bytes);
  };
  write('float32', modelJson, [['weights.bin', weights]]);
  for (const dtype of ['uint8', 'uint16', 'float16']) {
    const r = await quantizeTfjs(modelJson, () => weights, { dtype, shardPrefix: 'weights' });
    write(
      dtype,
      r.modelJson,
      r.shards.map((s) => [s.path, s.data]),
    );
    console.log(`${dtype}: ${r.report.size.input} -> ${r.report.size.output} bytes`);
  }
}
