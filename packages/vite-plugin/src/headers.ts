import type { OutgoingHttpHeaders } from 'node:http';

/**
 * Makes the page cross-origin isolated, which is what unlocks SharedArrayBuffer and so ORT's
 * threaded WebAssembly. COEP must also be on worker scripts: a dedicated worker whose response
 * lacks it is blocked when the page requires it. CORP costs nothing for same-origin files and
 * keeps them loadable if a page of another origin with COEP tries to embed them.
 */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
});

/**
 * The isolation headers that `existing` does not already set. Vite's config merge lets a
 * plugin's value override the user's, so a user's `credentialless` COEP (also isolating) would
 * be clobbered if the plugin returned all three blindly.
 */
export function missingIsolationHeaders(existing: OutgoingHttpHeaders | undefined): Record<string, string> {
  const present = new Set(Object.keys(existing ?? {}).map((k) => k.toLowerCase()));
  return Object.fromEntries(Object.entries(ISOLATION_HEADERS).filter(([name]) => !present.has(name.toLowerCase())));
}

/** What the production host must do that `vite preview` did for the app, printed after a build. */
export function hostingAdvice(ortPrefix: string): string {
  return [
    'outpost: production hosting must send these headers (vite preview does):',
    `  on HTML pages and JS (worker scripts, ${ortPrefix}*.mjs), or ONNX Runtime runs on one thread:`,
    ...Object.entries(ISOLATION_HEADERS).map(([name, value]) => `    ${name}: ${value}`),
    `  on *.wasm (${ortPrefix}*.wasm), or it compiles slower, without streaming:`,
    '    Content-Type: application/wasm',
  ].join('\n');
}
