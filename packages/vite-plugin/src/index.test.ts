import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, createLogger, createServer, preview, resolveConfig } from 'vite';
import type { InlineConfig, Logger } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outpost, outpostDefaults } from './index.js';

// Builds and servers take seconds each; 14-27 MB files are compared byte for byte.
const SLOW = { timeout: 60_000 };

const fixture = fileURLToPath(new URL('../test/fixture/', import.meta.url));
// The test finds ORT on its own (via Node's resolution of the package entry) so that a wrong
// lookup in the plugin cannot make both sides agree.
const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web'));
// This workspace has @outpost/backend-tfjs, so the plugin serves tfjs-backend-wasm's files too.
const tfjsDist =
  dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist';

const PLAIN = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
const ASYNCIFY = ['ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'];
const TFJS = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const ISOLATION = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'outpost-vite-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function capturingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const quiet = createLogger('silent');
  const push = (msg: string): void => {
    lines.push(msg);
  };
  return { lines, logger: { ...quiet, info: push, warn: push, warnOnce: push } };
}

function fixtureConfig(extra: InlineConfig): InlineConfig {
  return {
    root: fixture,
    configFile: false,
    // Keeps Vite's dep cache out of the package folder.
    cacheDir: join(tmp, 'vite-cache'),
    logLevel: 'silent',
    ...extra,
  };
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

async function jsIn(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of await filesIn(dir)) {
    if (name.endsWith('.js')) out.set(name, await readFile(join(dir, name), 'utf8'));
  }
  return out;
}

function expectIsolated(response: Response): void {
  for (const [name, value] of Object.entries(ISOLATION)) {
    expect(response.headers.get(name), `${name} on ${response.url}`).toBe(value);
  }
}

describe('config', () => {
  it('adds the extern-wasm condition to the client only, keeping Vite defaults', async () => {
    const config = await resolveConfig(fixtureConfig({ plugins: [outpost()] }), 'serve');
    const client = config.environments['client']?.resolve.conditions;
    expect(client).toEqual(expect.arrayContaining(['module', 'browser', 'onnxruntime-web-use-extern-wasm']));
    expect(config.environments['ssr']?.resolve.conditions).not.toContain('onnxruntime-web-use-extern-wasm');
    expect(config.worker.format).toBe('es');
    expect(config.optimizeDeps.exclude).toEqual(
      expect.arrayContaining(['onnxruntime-web', '@outpost/runtime', '@outpost/backend-onnx']),
    );
  });

  it('appends to conditions the user chose instead of restating the defaults', async () => {
    const config = await resolveConfig(
      fixtureConfig({ plugins: [outpost()], resolve: { conditions: ['custom'] } }),
      'build',
    );
    expect(config.environments['client']?.resolve.conditions).toEqual(['custom', 'onnxruntime-web-use-extern-wasm']);
  });

  it('keeps headers the user set and adds the missing ones to dev and preview', async () => {
    const config = await resolveConfig(
      fixtureConfig({
        plugins: [outpost()],
        server: { headers: { 'cross-origin-embedder-policy': 'credentialless', 'X-Extra': '1' } },
      }),
      'serve',
    );
    for (const headers of [config.server.headers, config.preview.headers]) {
      expect(headers).toMatchObject({
        'cross-origin-embedder-policy': 'credentialless',
        'X-Extra': '1',
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Resource-Policy': 'same-origin',
      });
      expect(headers).not.toHaveProperty('Cross-Origin-Embedder-Policy');
    }
  });

  it('defaults to shipping the WebGPU files', () => {
    expect(outpostDefaults.webgpu).toBe(true);
  });
});

describe('build and preview', () => {
  const outDir = (): string => join(tmp, 'dist');
  let lines: string[] = [];

  beforeAll(async () => {
    const capture = capturingLogger();
    lines = capture.lines;
    await build(
      fixtureConfig({
        plugins: [outpost()],
        customLogger: capture.logger,
        logLevel: 'info',
        build: { outDir: outDir(), emptyOutDir: true },
      }),
    );
  }, SLOW.timeout);

  it(
    'emits the ORT files unhashed at outpost-ort/, byte-identical to node_modules, and no unused TF.js ones',
    SLOW,
    async () => {
      const emitted = await filesIn(join(outDir(), 'outpost-ort'));
      // The fixture page does not import @outpost/runtime/tfjs, so TF.js's files stay out.
      expect(emitted).toEqual([...ASYNCIFY, ...PLAIN].sort());
      for (const name of emitted) {
        const [built, source] = await Promise.all([
          readFile(join(outDir(), 'outpost-ort', name)),
          readFile(join(name.startsWith('tfjs') ? tfjsDist : ortDist, name)),
        ]);
        expect(built.equals(source), name).toBe(true);
      }
    },
  );

  it('bundles the extern ORT build, which loads its glue from wasmPaths', async () => {
    const assets = await filesIn(join(outDir(), 'assets'));
    const js = [...(await jsIn(join(outDir(), 'assets'))).values()].join('\n');
    // The default *.bundle.min.mjs embeds the Emscripten glue (it names its threads
    // "em-pthread") and pulls the .wasm in through new URL(), which Vite hashes into assets/.
    expect(js).toContain('ort-wasm-simd-threaded.mjs');
    expect(js).not.toContain('em-pthread');
    expect(assets.filter((f) => f.endsWith('.wasm'))).toEqual([]);
    expect(assets.some((f) => f.startsWith('ort.wasm.min-'))).toBe(true);
  });

  it('substitutes __OUTPOST_ORT_PATHS__ in page and worker code', async () => {
    const js = await jsIn(join(outDir(), 'assets'));
    const page = [...js].find(([name]) => name.startsWith('index-'))?.[1];
    const worker = [...js].find(([name]) => name.startsWith('w-'))?.[1];
    for (const code of [page, worker]) {
      expect(code).toMatch(/["'`]\/outpost-ort\/["'`]/);
      expect(code).not.toContain('__OUTPOST_ORT_PATHS__');
    }
  });

  it('prints the headers production hosting must send', () => {
    const printed = lines.join('\n');
    expect(printed).toContain('Cross-Origin-Opener-Policy: same-origin');
    expect(printed).toContain('Cross-Origin-Embedder-Policy: require-corp');
    expect(printed).toMatch(/\.wasm[^\n]*\n\s*Content-Type: application\/wasm/);
  });

  it(
    'leaves the asyncify files out with webgpu: false, ships TF.js with tfjs: true, and follows base',
    SLOW,
    async () => {
      const dir = join(tmp, 'dist-nowebgpu');
      await build(
        fixtureConfig({
          base: '/sub/',
          plugins: [outpost({ webgpu: false, tfjs: true })],
          build: { outDir: dir, emptyOutDir: true },
        }),
      );
      expect(await filesIn(join(dir, 'outpost-ort'))).toEqual([...PLAIN, ...TFJS].sort());
      for (const name of TFJS) {
        const built = await readFile(join(dir, 'outpost-ort', name));
        expect(built.equals(await readFile(join(tfjsDist, name))), name).toBe(true);
      }
      const page = [...(await jsIn(join(dir, 'assets')))].find(([name]) => name.startsWith('index-'))?.[1];
      expect(page).toMatch(/["'`]\/sub\/outpost-ort\/["'`]/);
    },
  );

  it('previews the page, the worker and the ORT files cross-origin isolated', SLOW, async () => {
    const server = await preview(
      fixtureConfig({ plugins: [outpost()], build: { outDir: outDir() }, preview: { port: 0 } }),
    );
    try {
      const origin = server.resolvedUrls?.local[0];
      expect(origin).toBeDefined();
      const at = (path: string): string => new URL(path, origin).href;

      const html = await fetch(at('/'));
      expect(html.status).toBe(200);
      expect(await html.text()).toContain('<pre id="result">');
      expectIsolated(html);

      const workerFile = (await filesIn(join(outDir(), 'assets'))).find((f) => /^w-.*\.js$/.test(f));
      expect(workerFile).toBeDefined();
      const worker = await fetch(at(`/assets/${workerFile}`));
      expect(worker.status).toBe(200);
      expect(worker.headers.get('content-type')).toMatch(/^text\/javascript/);
      await worker.arrayBuffer();
      expectIsolated(worker);

      const wasm = await fetch(at('/outpost-ort/ort-wasm-simd-threaded.wasm'));
      expect(wasm.status).toBe(200);
      expect(wasm.headers.get('content-type')).toBe('application/wasm');
      expectIsolated(wasm);
      const served = Buffer.from(await wasm.arrayBuffer());
      expect(served.equals(await readFile(join(ortDist, 'ort-wasm-simd-threaded.wasm')))).toBe(true);

      const glue = await fetch(at('/outpost-ort/ort-wasm-simd-threaded.mjs'));
      expect(glue.headers.get('content-type')).toMatch(/^text\/javascript/);
      await glue.arrayBuffer();
      expectIsolated(glue);
    } finally {
      await server.close();
    }
  });
});

describe('dev server', () => {
  it('serves the ORT files from node_modules untransformed, isolated, with their types', SLOW, async () => {
    const server = await createServer(fixtureConfig({ plugins: [outpost()], server: { port: 0 } }));
    try {
      await server.listen();
      const origin = server.resolvedUrls?.local[0];
      expect(origin).toBeDefined();
      const at = (path: string): string => new URL(path, origin).href;

      const wasm = await fetch(at('/outpost-ort/ort-wasm-simd-threaded.wasm'));
      expect(wasm.status).toBe(200);
      expect(wasm.headers.get('content-type')).toBe('application/wasm');
      expectIsolated(wasm);
      const served = Buffer.from(await wasm.arrayBuffer());
      expect(served.equals(await readFile(join(ortDist, 'ort-wasm-simd-threaded.wasm')))).toBe(true);

      const again = await fetch(at('/outpost-ort/ort-wasm-simd-threaded.wasm'), {
        headers: { 'If-None-Match': wasm.headers.get('etag') ?? '' },
      });
      expect(again.status).toBe(304);

      const glue = await fetch(at('/outpost-ort/ort-wasm-simd-threaded.mjs'));
      expect(glue.headers.get('content-type')).toBe('text/javascript');
      expectIsolated(glue);
      // Byte-identical: Vite's transform would rewrite the glue's import.meta.url uses.
      expect(await glue.text()).toBe(await readFile(join(ortDist, 'ort-wasm-simd-threaded.mjs'), 'utf8'));

      // Only the files production gets; the rest of ORT's dist is not reachable.
      const tfjs = await fetch(at('/outpost-ort/tfjs-backend-wasm-simd.wasm'));
      expect(tfjs.headers.get('content-type')).toBe('application/wasm');
      expect(
        Buffer.from(await tfjs.arrayBuffer()).equals(await readFile(join(tfjsDist, 'tfjs-backend-wasm-simd.wasm'))),
      ).toBe(true);

      const jsep = await fetch(at('/outpost-ort/ort-wasm-simd-threaded.jsep.wasm'));
      expect(jsep.status).toBe(404);
      await jsep.arrayBuffer();

      const html = await fetch(at('/'));
      expectIsolated(html);
      await html.arrayBuffer();
    } finally {
      await server.close();
    }
  });

  it('serves the worker as a module with the define and the extern, unbundled ORT', SLOW, async () => {
    const server = await createServer(fixtureConfig({ plugins: [outpost()], server: { port: 0 } }));
    try {
      await server.listen();
      const origin = server.resolvedUrls?.local[0];
      const at = (path: string): string => new URL(path, origin).href;

      // The URL main.js's new Worker(new URL('./w.js', import.meta.url)) becomes in dev.
      const page = await (await fetch(at('/main.js'))).text();
      expect(page).toContain('w.js?worker_file&type=module');

      const worker = await fetch(at('/w.js?worker_file&type=module'));
      expect(worker.status).toBe(200);
      expect(worker.headers.get('content-type')).toMatch(/^text\/javascript/);
      expectIsolated(worker);
      const code = await worker.text();
      // Dev does not substitute define in client code: /@vite/env sets it as a global, and
      // Vite imports that module into workers it recognises.
      const envUrl = /^import\s+["']([^"']*(?:@vite\/env|client\/env\.mjs))["']/.exec(code)?.[1];
      expect(envUrl, code.slice(0, 200)).toBeDefined();
      const ortImport = /import\(\s*["']([^"']*onnxruntime-web\/dist\/ort\.wasm\.min\.mjs[^"']*)["']/;
      const ortUrl = ortImport.exec(code)?.[1];
      expect(ortUrl, code.slice(0, 400)).toBeDefined();
      expect(ortUrl).not.toContain('.vite/deps');

      const ort = await fetch(at(ortUrl ?? ''));
      expect(ort.status).toBe(200);
      expectIsolated(ort);
      await ort.arrayBuffer();

      const env = await (await fetch(at(envUrl ?? ''))).text();
      expect(env).toMatch(/"__OUTPOST_ORT_PATHS__":\s*"\/outpost-ort\/"/);
    } finally {
      await server.close();
    }
  });
});
