import { describe, expect, it } from 'vitest';
import { frameTensor } from './frames.js';

// Two pixels, RGBA: (255, 0, 51) and (0, 255, 102), alpha ignored.
const RGBA = [255, 0, 51, 7, 0, 255, 102, 9];

describe('frameTensor: a frame as the model input', () => {
  it('nchw by default: planes R, G, B, scaled to 0..1', () => {
    const t = frameTensor(RGBA, { input: 'x', width: 2, height: 1 });
    expect(t.dims).toEqual([1, 3, 1, 2]);
    expect(t.type).toBe('float32');
    expect([...(t.data as Float32Array)].map((v) => +v.toFixed(5))).toEqual([1, 0, 0, 1, 0.2, 0.4]);
  });

  it('nhwc interleaves channels per pixel', () => {
    const t = frameTensor(RGBA, { input: 'x', width: 2, height: 1, layout: 'nhwc', scale: 1 });
    expect(t.dims).toEqual([1, 1, 2, 3]);
    expect([...(t.data as Float32Array)]).toEqual([255, 0, 51, 0, 255, 102]);
  });

  it('applies (v * scale - mean) / std per channel, as ImageNet normalisation needs', () => {
    const mean = [0.485, 0.456, 0.406] as const;
    const std = [0.229, 0.224, 0.225] as const;
    const t = frameTensor(RGBA, { input: 'x', width: 2, height: 1, mean, std });
    const d = t.data as Float32Array;
    const want = [
      (1 - mean[0]) / std[0],
      (0 - mean[0]) / std[0],
      (0 - mean[1]) / std[1],
      (1 - mean[1]) / std[1],
      (0.2 - mean[2]) / std[2],
      (0.4 - mean[2]) / std[2],
    ];
    want.forEach((w, i) => expect(d[i]).toBeCloseTo(w, 5));
  });

  it('refuses pixels that do not match the size', () => {
    expect(() => frameTensor(RGBA, { input: 'x', width: 3, height: 1 })).toThrow(RangeError);
    expect(() => frameTensor(RGBA, { input: 'x', width: 2, height: 1, mean: [0.5] })).toThrow(/three values/);
  });
});
