import { describe, expect, it } from 'vitest';
import { inputSize, textBoxes } from './text-boxes.js';

/** A w×h map, 0 everywhere but the given rectangles (x, y, w, h, value). */
function map(w: number, h: number, rects: [number, number, number, number, number][]): Float32Array {
  const m = new Float32Array(w * h);
  for (const [x0, y0, rw, rh, v] of rects) {
    for (let y = y0; y < y0 + rh; y++) for (let x = x0; x < x0 + rw; x++) m[y * w + x] = v;
  }
  return m;
}

describe('textBoxes: PP-OCR det probability map to boxes', () => {
  it('one box per region above the threshold, grown by the DB margin, with its mean score', () => {
    const m = map(64, 32, [
      [4, 4, 20, 6, 0.9],
      [40, 20, 16, 6, 0.6],
    ]);
    const boxes = textBoxes(m, 64, 32).sort((a, b) => a.x - b.x);
    expect(boxes).toHaveLength(2);
    const grow = (20 * 6 * 1.5) / (2 * 26);
    expect(boxes[0]!.x).toBeCloseTo(4 - grow, 5);
    expect(boxes[0]!.width).toBeCloseTo(20 + 2 * grow, 5);
    expect(boxes[0]!.score).toBeCloseTo(0.9, 5);
    expect(boxes[1]!.score).toBeCloseTo(0.6, 5);
  });

  it('leaves out regions under the threshold and specks under minPixels', () => {
    const m = map(32, 32, [
      [2, 2, 10, 4, 0.25],
      [20, 20, 3, 3, 0.9],
    ]);
    expect(textBoxes(m, 32, 32)).toEqual([]);
    expect(textBoxes(m, 32, 32, 0.3, 9)).toHaveLength(1);
  });

  it('regions touching only at a corner are two boxes (4-connected), and boxes stay inside the map', () => {
    const m = map(16, 16, [
      [0, 0, 4, 4, 0.8],
      [4, 4, 4, 4, 0.8],
    ]);
    const boxes = textBoxes(m, 16, 16, 0.3, 4);
    expect(boxes).toHaveLength(2);
    for (const b of boxes) {
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.y).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width).toBeLessThanOrEqual(16);
      expect(b.y + b.height).toBeLessThanOrEqual(16);
    }
  });

  it('a region as large as the map (no recursion limit)', () => {
    const m = new Float32Array(320 * 320).fill(0.99);
    expect(textBoxes(m, 320, 320)).toHaveLength(1);
  });
});

describe('inputSize', () => {
  it('keeps the aspect ratio in multiples of 32, long side at most maxSide', () => {
    expect(inputSize(640, 480)).toEqual({ width: 320, height: 256 });
    expect(inputSize(1280, 720)).toEqual({ width: 320, height: 192 });
    expect(inputSize(100, 40)).toEqual({ width: 96, height: 32 });
    // The web app's pictures: up to 480 on the long side, never past it.
    expect(inputSize(480, 320, 480)).toEqual({ width: 480, height: 320 });
    expect(inputSize(1920, 1080, 480)).toEqual({ width: 480, height: 256 });
    expect(inputSize(470, 20, 480)).toEqual({ width: 480, height: 32 });
    expect(inputSize(20, 10, 480)).toEqual({ width: 32, height: 32 });
  });
});
