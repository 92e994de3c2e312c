/** Types of data.mjs for TypeScript callers (the quantizer's tests). */
export interface DigitSet {
  /** 784 pixel values in [0, 1] per digit, row-major, white on black. */
  images: number[][];
  labels: number[];
}
export declare const SEED: number;
export declare const N_TRAIN: number;
export declare const N_TEST: number;
export declare function mulberry32(seed: number): () => number;
export declare function shuffleInPlace<T>(arr: T[], rand: () => number): T[];
export declare function loadSplit(): { train: DigitSet; test: DigitSet };
