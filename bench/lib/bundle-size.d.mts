/** Types of bundle-size.mjs for TypeScript callers (e2e/tfjs.spec.ts). */
export declare function bundleSize(entry: string): Promise<{
  minBytes: number;
  gzipBytes: number;
  packages: string[];
  ids: string[];
}>;
