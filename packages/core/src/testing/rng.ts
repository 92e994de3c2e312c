// Test support, left out of the package's build: the seeded PRNG the fuzz tests share (the
// protocol's metadata fuzz, and the model mutations of packages/backend-onnx/src/testing).

/** A seeded PRNG (mulberry32): small, good enough to pick mutations, and a seed reproduces a run. */
export function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
export type Rng = ReturnType<typeof rng>;
