import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
// Vite 8 bundles with rolldown; using it directly (it comes with vite) measures what an app's
// production build would ship, without Vite's worker and asset handling getting in the way.
import { rolldown } from 'rolldown';

const dist = fileURLToPath(new URL('../../packages/runtime/dist/', import.meta.url));

/**
 * The two halves of @outpost/runtime, as an app's bundle holds them. onnxruntime-web is left
 * out (external): it is the cost of inference itself, the same for any wrapper.
 */
export const BUNDLES = {
  page: { entry: `${dist}index.js`, what: 'index.js and its imports' },
  worker: { entry: `${dist}worker/index.js`, what: 'worker/index.js and its imports' },
};

/** Minified and gzipped size of everything `entry` pulls in, as one ES module (chunks summed). */
export async function bundleSize(entry) {
  const build = await rolldown({
    input: entry,
    external: (id) => id === 'onnxruntime-web' || id.startsWith('onnxruntime-web/'),
    platform: 'browser',
    logLevel: 'silent',
  });
  try {
    const { output } = await build.generate({ format: 'es', minify: true });
    const chunks = output.filter((o) => o.type === 'chunk');
    const code = chunks.map((c) => c.code).join('\n');
    return {
      minBytes: Buffer.byteLength(code),
      gzipBytes: gzipSync(code, { level: 9 }).length,
      // Which packages ended up inside, so a size jump can be traced to what was pulled in.
      packages: packagesIn(chunks),
      // Every module bundled (the e2e check that the default runtime holds no TF.js reads them).
      ids: chunks.flatMap((c) => Object.keys(c.modules)),
    };
  } finally {
    await build.close();
  }
}

function packagesIn(chunks) {
  const names = new Set();
  for (const chunk of chunks) {
    for (const id of Object.keys(chunk.modules)) {
      const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(id) ?? /packages\/([^/]+)\//.exec(id);
      if (m) names.add(m[1]);
    }
  }
  return [...names].sort();
}

/** Sizes of both halves. */
export async function measureBundles() {
  const out = {};
  for (const [name, { entry, what }] of Object.entries(BUNDLES)) out[name] = { what, ...(await bundleSize(entry)) };
  return out;
}
