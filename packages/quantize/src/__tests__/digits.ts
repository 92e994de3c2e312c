// The digits reference model and its data, split by the same code models/digits/train.mjs uses.
// Derived at test time so no data set is kept in git.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadSplit, type DigitSet } from '../../../../models/digits/data.mjs';
import type { Feeds } from '../runtime.js';

export type { DigitSet };

const PIXELS = 784;

export const DIGITS_MODEL = fileURLToPath(new URL('../../../../models/digits/digits.onnx', import.meta.url));

export function digitsModel(): Uint8Array {
  return new Uint8Array(readFileSync(DIGITS_MODEL));
}

/** The reference model's own split (models/digits/data.mjs), so accuracy is on its test digits. */
export function digitsSplit(): { train: DigitSet; test: DigitSet } {
  return loadSplit();
}

/** Feeds of `batch` digits each (input `x`, [batch, 1, 28, 28]). */
export function digitFeeds(set: DigitSet, batch: number, count = set.images.length): Feeds[] {
  const feeds: Feeds[] = [];
  for (let start = 0; start < count; start += batch) {
    const imgs = set.images.slice(start, Math.min(start + batch, count));
    const data = new Float32Array(imgs.length * PIXELS);
    imgs.forEach((img, i) => data.set(img, i * PIXELS));
    feeds.push({ x: { type: 'float32', data, dims: [imgs.length, 1, 28, 28] } });
  }
  return feeds;
}
