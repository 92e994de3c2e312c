// PP-OCR det's pre- and post-processing shapes, shared by the web app and the kiosk.

/** A text box, in the coordinates of the probability map it was found in. */
export interface TextBox {
  x: number;
  y: number;
  width: number;
  height: number;
  /** Mean probability inside the region. */
  score: number;
}

/**
 * PP-OCR det's probability map as boxes: 4-connected regions above `threshold`, regions
 * smaller than `minPixels` left out, each grown by the margin DB shrinks text by in training
 * (area × 1.5 / perimeter), clipped to the map. A fixed-size pixel stack, no recursion: one
 * pass over a 320×320 map takes about a millisecond on the page.
 */
export function textBoxes(
  prob: ArrayLike<number>,
  width: number,
  height: number,
  threshold = 0.3,
  minPixels = 10,
): TextBox[] {
  const n = width * height;
  if (prob.length < n) throw new RangeError(`The map holds ${prob.length} values, not ${width}x${height}`);
  const seen = new Uint8Array(n);
  const stack = new Int32Array(n);
  const boxes: TextBox[] = [];
  for (let start = 0; start < n; start++) {
    if (seen[start] || !(prob[start]! > threshold)) continue;
    let top = 0;
    const visit = (j: number) => {
      if (!seen[j] && prob[j]! > threshold) {
        seen[j] = 1;
        stack[top++] = j;
      }
    };
    stack[top++] = start;
    seen[start] = 1;
    let x0 = width;
    let y0 = height;
    let x1 = -1;
    let y1 = -1;
    let count = 0;
    let sum = 0;
    while (top > 0) {
      const i = stack[--top]!;
      const x = i % width;
      const y = (i - x) / width;
      count++;
      sum += prob[i]!;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      if (x > 0) visit(i - 1);
      if (x < width - 1) visit(i + 1);
      if (y > 0) visit(i - width);
      if (y < height - 1) visit(i + width);
    }
    if (count < minPixels) continue;
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
      score: sum / count,
    });
  }
  return boxes;
}

/**
 * The model's input size for a `width` × `height` camera: the long side at most `maxSide`,
 * the aspect ratio kept, both sides multiples of 32 (PP-OCR det downsamples by 32).
 */
export function inputSize(width: number, height: number, maxSide = 320): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const most = Math.max(32, Math.floor(maxSide / 32) * 32);
  const round = (v: number) => Math.min(most, Math.max(32, Math.round((v * scale) / 32) * 32));
  return { width: round(width), height: round(height) };
}
