// Test support, left out of the package's build: the seeded picks the fuzz tests share (the
// protocol's metadata fuzz, and the model mutations of packages/backend-onnx/src/testing), on the
// package's own mulberry32.

import { mulberry32 } from '../random.js';

/** A seeded PRNG (mulberry32): small, good enough to pick mutations, and a seed reproduces a run. */
export function rng(seed: number) {
  const next = mulberry32(seed);
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
export type Rng = ReturnType<typeof rng>;
