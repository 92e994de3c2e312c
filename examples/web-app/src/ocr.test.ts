import { describe, expect, it } from 'vitest';
import { inputSize, textBoxes } from './ocr.js';

describe('PP-OCR det pre- and post-processing', () => {
  it('fits the picture in maxSide with sides in multiples of 32', () => {
    expect(inputSize(480, 320, 480)).toEqual({ width: 480, height: 320 });
    expect(inputSize(1920, 1080, 480)).toEqual({ width: 480, height: 256 });
    expect(inputSize(20, 10, 480)).toEqual({ width: 32, height: 32 });
  });

  it('finds one box per region above the threshold, grown by the unclip margin, and drops specks', () => {
    const w = 40;
    const h = 20;
    const prob = new Float32Array(w * h);
    // A 10×4 region at (5, 5) and a 2-pixel speck at (30, 15).
    for (let y = 5; y < 9; y++) for (let x = 5; x < 15; x++) prob[y * w + x] = 0.9;
    prob[15 * w + 30] = 0.8;
    prob[15 * w + 31] = 0.8;
    const boxes = textBoxes(prob, w, h, 0.3, 8);
    expect(boxes).toHaveLength(1);
    const grow = (10 * 4 * 1.5) / (2 * 14);
    expect(boxes[0]!.x).toBeCloseTo(5 - grow);
    expect(boxes[0]!.y).toBeCloseTo(5 - grow);
    expect(boxes[0]!.width).toBeCloseTo(10 + 2 * grow);
    expect(boxes[0]!.height).toBeCloseTo(4 + 2 * grow);
    expect(boxes[0]!.score).toBeCloseTo(0.9);
    expect(textBoxes(prob, w, h, 0.95)).toEqual([]);
  });
});
