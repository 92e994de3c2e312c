/**
 * The strict Content-Security-Policy the README publishes and Outpost is tested under: no
 * 'unsafe-eval' and no 'unsafe-inline'; WebAssembly compiles under 'wasm-unsafe-eval'; workers,
 * modules and fetches only from the page's own origin. The examples' server (`npm start`) sends
 * it with every response, and so does the e2e harness (e2e/harness/fixtures.ts): one policy for
 * both, so an example that needs more than the README promises fails its e2e spec.
 */
export const STRICT_CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "object-src 'none'",
  "base-uri 'self'",
].join('; ');
