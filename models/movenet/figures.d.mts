/** Types of figures.mjs for TypeScript callers (the quantizer's tests and CLI tests). */
export declare const SIDE: number;
export declare function mulberry32(seed: number): () => number;
export declare function figure(index: number): Int32Array;
