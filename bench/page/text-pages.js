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

const DENSE_WORDS = [...WORDS, 'TOTAL DUE', 'qty: 3', '€128.50', 'Straße', '12/05/2026', 'VAT 19%', '#A-0042'];

/**
 * The page for `seed` as RGBA bytes. `clean` (the bench's pages): light uniform paper, a few
 * lines of dark words, 12-25 px, sans-serif or serif, some bold. `dense`: shaded paper with
 * pixel noise, one or two columns of lines 8-15 px (some up to 30 px) in three families, some
 * reddish ink, lines tilted by up to ±1.7°, as a photographed receipt or form might be.
 */
export function textPageRgba(seed, style = 'clean') {
  if (style === 'dense') return densePageRgba(seed);
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

function densePageRgba(seed) {
  const OCR = TEXT_PAGE_SIZE;
  const rand = seeded(seed);
  const canvas = new OffscreenCanvas(OCR, OCR);
  const ctx = canvas.getContext('2d');
  const paper = 190 + Math.floor(rand() * 60);
  const shade = ctx.createLinearGradient(0, 0, OCR, OCR);
  shade.addColorStop(0, `rgb(${paper}, ${paper}, ${paper - 10})`);
  shade.addColorStop(1, `rgb(${paper - 30}, ${paper - 25}, ${paper - 35})`);
  ctx.fillStyle = shade;
  ctx.fillRect(0, 0, OCR, OCR);
  ctx.textBaseline = 'top';
  const columns = rand() < 0.4 ? 2 : 1;
  for (let c = 0; c < columns; c++) {
    let y = 6 + rand() * 10;
    while (y < OCR - 14) {
      const size = 8 + Math.floor(rand() * (rand() < 0.2 ? 22 : 8));
      const ink = Math.floor(rand() * 90);
      ctx.fillStyle = rand() < 0.2 ? `rgb(${ink + 120}, ${ink}, ${ink})` : `rgb(${ink}, ${ink}, ${ink + 20})`;
      const family = ['sans-serif', 'serif', 'monospace'][Math.floor(rand() * 3)];
      ctx.font = `${rand() < 0.3 ? 'bold ' : ''}${size}px ${family}`;
      const words = Array.from(
        { length: 2 + Math.floor(rand() * 6) },
        () => DENSE_WORDS[Math.floor(rand() * DENSE_WORDS.length)],
      );
      ctx.save();
      ctx.translate(6 + (c * OCR) / columns + rand() * 10, y);
      ctx.rotate((rand() - 0.5) * 0.06);
      ctx.fillText(words.join(' '), 0, 0, OCR / columns - 14);
      ctx.restore();
      y += size * (1.2 + rand() * 0.8);
    }
  }
  const image = ctx.getImageData(0, 0, OCR, OCR);
  const px = image.data;
  for (let i = 0; i < px.length; i++) if (i % 4 !== 3) px[i] = Math.max(0, Math.min(255, px[i] + (rand() - 0.5) * 16));
  return px;
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
