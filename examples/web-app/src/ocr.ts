/**
 * PP-OCRv4 text detection around the model: the picture scaled to fit `maxSide` (sides rounded
 * down to multiples of 32, as the network needs), normalised with ImageNet's mean and standard
 * deviation into NCHW; and the probability map it returns turned into boxes, as PaddleOCR's DB
 * post-processing does in spirit: regions above a threshold, each grown back by the margin the
 * network was trained to shrink text by.
 */

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** A box in the coordinates of the picture given to {@link ocrInput}. */
export interface TextBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Mean probability inside the region. */
  score: number;
}

/** The network's input size for a picture: fits in `maxSide`, multiples of 32, at least 32. */
export function inputSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const round = (v: number) => Math.max(32, Math.floor((v * scale) / 32) * 32);
  return { width: round(width), height: round(height) };
}

/** The picture as the model's input `x`: [1, 3, h, w] float32. */
export function ocrInput(
  image: CanvasImageSource & { width: number; height: number },
  maxSide = 480,
): { data: Float32Array; dims: [1, 3, number, number]; scaleX: number; scaleY: number } {
  const { width, height } = inputSize(image.width, image.height, maxSide);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(image, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) data[c * plane + i] = (rgba[i * 4 + c]! / 255 - MEAN[c]!) / STD[c]!;
  }
  return { data, dims: [1, 3, height, width], scaleX: image.width / width, scaleY: image.height / height };
}

/**
 * Boxes of the regions of `prob` (a `width` × `height` map) above `threshold`, 4-connected,
 * dropping regions under `minPixels`; each grown by DB's unclip margin (area × 1.5 / perimeter).
 */
export function textBoxes(
  prob: ArrayLike<number>,
  width: number,
  height: number,
  threshold = 0.3,
  minPixels = 8,
): TextBox[] {
  const seen = new Uint8Array(width * height);
  const stack: number[] = [];
  const boxes: TextBox[] = [];
  for (let start = 0; start < width * height; start++) {
    if (seen[start] || prob[start]! <= threshold) continue;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    let n = 0;
    let sum = 0;
    seen[start] = 1;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      const x = i % width;
      const y = (i - x) / width;
      n++;
      sum += prob[i]!;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      const next = [
        x > 0 ? i - 1 : -1,
        x < width - 1 ? i + 1 : -1,
        y > 0 ? i - width : -1,
        y < height - 1 ? i + width : -1,
      ];
      for (const j of next) {
        if (j >= 0 && !seen[j] && prob[j]! > threshold) {
          seen[j] = 1;
          stack.push(j);
        }
      }
    }
    if (n < minPixels) continue;
    const w = x1 - x0 + 1;
    const h = y1 - y0 + 1;
    const grow = (w * h * 1.5) / (2 * (w + h));
    const bx = Math.max(0, x0 - grow);
    const by = Math.max(0, y0 - grow);
    boxes.push({
      x: bx,
      y: by,
      width: Math.min(width, x1 + 1 + grow) - bx,
      height: Math.min(height, y1 + 1 + grow) - by,
      score: sum / n,
    });
  }
  return boxes;
}

/** A picture with a few lines of text, for trying the detector without a file at hand. */
export function samplePicture(): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = 480;
  canvas.height = 320;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fdfbf5';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#1b1b1b';
  ctx.font = 'bold 30px sans-serif';
  ctx.fillText('Platform 4', 32, 64);
  ctx.font = '22px sans-serif';
  ctx.fillText('Next train 10:42 to Lyon', 32, 128);
  ctx.fillText('Models run at the edge,', 32, 184);
  ctx.fillText('offline, updated over the air', 32, 224);
  ctx.font = '16px monospace';
  ctx.fillText('outpost 1.0.0', 300, 292);
  return canvas;
}
