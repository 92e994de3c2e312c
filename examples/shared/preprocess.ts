/** Side of the model's input image, and of the box the digit is scaled into, as in MNIST. */
const SIZE = 28;
const DIGIT_BOX = 20;

/**
 * Turns a drawing (white strokes on black) into the model's input the way MNIST digits were
 * made: the digit's bounding box scaled to fit 20x20 with anti-aliasing, then placed in a 28x28
 * image so that its centre of mass is at the centre. Returns null for an empty pad.
 */
export function toModelInput(pad: HTMLCanvasElement): Float32Array | null {
  const ctx = pad.getContext('2d', { willReadFrequently: true })!;
  const { data, width, height } = ctx.getImageData(0, 0, pad.width, pad.height);
  let minX = width;
  let minY = height;
  let maxX = -1;
  let maxY = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[(y * width + x) * 4]! > 32) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
    }
  }
  if (maxX < 0) return null;
  const w = maxX - minX + 1;
  const h = maxY - minY + 1;
  const scale = DIGIT_BOX / Math.max(w, h);
  const box = document.createElement('canvas');
  box.width = SIZE;
  box.height = SIZE;
  const bctx = box.getContext('2d', { willReadFrequently: true })!;
  bctx.fillStyle = '#000';
  bctx.fillRect(0, 0, SIZE, SIZE);
  bctx.imageSmoothingQuality = 'high';
  const dw = w * scale;
  const dh = h * scale;
  bctx.drawImage(pad, minX, minY, w, h, (SIZE - dw) / 2, (SIZE - dh) / 2, dw, dh);
  const small = bctx.getImageData(0, 0, SIZE, SIZE).data;

  // Shift so the centre of mass sits at the centre (whole pixels, like the MNIST recipe).
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const v = small[(y * SIZE + x) * 4]!;
      mass += v;
      cx += x * v;
      cy += y * v;
    }
  }
  const dx = Math.round(SIZE / 2 - 0.5 - cx / mass);
  const dy = Math.round(SIZE / 2 - 0.5 - cy / mass);
  const out = new Float32Array(SIZE * SIZE);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const sx = x - dx;
      const sy = y - dy;
      if (sx >= 0 && sy >= 0 && sx < SIZE && sy < SIZE) out[y * SIZE + x] = small[(sy * SIZE + sx) * 4]! / 255;
    }
  }
  return out;
}
