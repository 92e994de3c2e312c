// Pages of text drawn with canvas fillText, normalised as PP-OCR det expects. Used in the bench
// page (bench/page/int8.js) and, through bench/lib/text-pages.mjs, in Node for the quantizer's
// calibration and the PP-OCR sensitivity script, so every page with a given seed is the same.

/** A seeded uniform [0, 1) generator (Park-Miller). */
function seeded(seed) {
  let s = seed;
  return () => (s = (s * 16807) % 2147483647) / 2147483647;
}

/** The side of the square pages, in pixels. */
export const TEXT_PAGE_SIZE = 320;

const WORDS = [
  'Outpost',
  'invoice',
  'total',
  '2026',
  'edge',
  'runtime',
  'quantize',
  'INT8',
  'page',
  'No. 4711',
  'receipt',
];

/**
 * The page for `seed` as RGBA bytes: light paper, a few lines of dark words in a few sizes and
 * fonts.
 */
export function textPageRgba(seed) {
  const OCR = TEXT_PAGE_SIZE;
  const rand = seeded(seed);
  const canvas = new OffscreenCanvas(OCR, OCR);
  const ctx = canvas.getContext('2d');
  const paper = 215 + Math.floor(rand() * 40);
  ctx.fillStyle = `rgb(${paper}, ${paper}, ${paper - 8})`;
  ctx.fillRect(0, 0, OCR, OCR);
  ctx.textBaseline = 'top';
  let y = 12 + rand() * 10;
  while (y < OCR - 30) {
    const size = 12 + Math.floor(rand() * 14);
    const ink = Math.floor(rand() * 70);
    ctx.fillStyle = `rgb(${ink}, ${ink}, ${ink + 20})`;
    ctx.font = `${rand() < 0.3 ? 'bold ' : ''}${size}px ${rand() < 0.5 ? 'sans-serif' : 'serif'}`;
    const line = Array.from({ length: 2 + Math.floor(rand() * 4) }, () => WORDS[Math.floor(rand() * WORDS.length)]);
    ctx.fillText(line.join(' '), 10 + rand() * 30, y, OCR - 20);
    y += size * (1.5 + rand());
  }
  return ctx.getImageData(0, 0, OCR, OCR).data;
}

/** RGBA bytes to PP-OCR det's input: (x/255 - mean) / std per channel, NCHW float32. */
export function ppocrInput(rgba, size = TEXT_PAGE_SIZE) {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const data = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < size * size; i++) data[c * size * size + i] = (rgba[i * 4 + c] / 255 - mean[c]) / std[c];
  }
  return { x: { type: 'float32', data, dims: [1, 3, size, size] } };
}

/** The PP-OCR det input for the page `seed`. */
export function textImage(seed) {
  return ppocrInput(textPageRgba(seed));
}
