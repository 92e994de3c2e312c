/** Types of make.mjs for TypeScript callers (tests). */
export declare const SIDE: number;
export declare function makeTinyLayers(): Promise<{
  modelJson: { format: string; modelTopology: unknown; weightsManifest: { paths: string[]; weights: unknown[] }[] };
  weights: Uint8Array;
}>;
export declare function tinyInputs(count: number, seed?: number): Float32Array[];
