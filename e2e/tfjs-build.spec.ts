import { createReadStream, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { outpost } from '@outpost/vite';
import { expect, test } from '@playwright/test';
import { build, preview, type Plugin } from 'vite';
import { MODEL_FILES } from './harness/fixtures.js';

// The dev server runs TF.js from Vite's esbuild pre-bundle; apps ship a minified production
// bundle, where tfjs-backend-wasm's threads once died ("e is not defined") and took the worker
// down. This builds the harness, previews it without the strict CSP (so nothing but our own
// choice keeps TF.js on one thread) and runs MoveNet with the default thread count.

const root = fileURLToPath(new URL('./harness/', import.meta.url));

/** Only the models, with no CSP: the harness's fixtures plugin would add its strict one. */
function models(): Plugin {
  return {
    name: 'models-only',
    configurePreviewServer(server) {
      server.middlewares.use((req, res, next) => {
        const name = req.url?.split('?')[0]?.replace(/^\/models\//, '');
        const file = name !== undefined && req.url?.startsWith('/models/') ? MODEL_FILES[name] : undefined;
        if (!file) return next();
        res.setHeader('content-type', 'application/octet-stream');
        res.setHeader('cross-origin-resource-policy', 'same-origin');
        res.setHeader('content-length', String(statSync(file).size));
        createReadStream(file).pipe(res);
      });
    },
  };
}

test('a production build runs MoveNet through @outpost/runtime/tfjs with default threads, no CSP', async ({ page }) => {
  test.setTimeout(180_000);
  const outDir = await mkdtemp(join(tmpdir(), 'outpost-tfjs-build-'));
  try {
    await build({
      root,
      configFile: false,
      logLevel: 'silent',
      plugins: [outpost()],
      build: { outDir, emptyOutDir: true, target: 'es2022' },
    });
    const server = await preview({
      root,
      configFile: false,
      logLevel: 'silent',
      plugins: [outpost(), models()],
      build: { outDir },
      preview: { port: 0, host: '127.0.0.1' },
    });
    try {
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
        if (/worker sent an error/i.test(m.text())) errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(server.resolvedUrls!.local[0]!);
      await page.waitForFunction(() => window.harnessReady === true);
      const r = await page.evaluate(async () => {
        const { createRuntime } = await window.loadOutpostTfjs();
        const rt = await createRuntime({ backends: ['wasm'] });
        const model = await rt.load({ name: 'movenet', version: '4', url: '/models/movenet-lightning.json' });
        const input = new Int32Array(192 * 192 * 3).map((_, i) => (i * 13) % 256);
        const out = await model.run({ input: { type: 'int32', data: input, dims: [1, 192, 192, 3] } });
        const result = {
          backend: model.backend,
          isolated: crossOriginIsolated,
          keypoints: Array.from(out['Identity']!.data as Float32Array),
        };
        await rt.close();
        return result;
      });
      expect(r.isolated).toBe(true); // threads would have been on offer
      expect(r.backend).toBe('wasm');
      expect(r.keypoints).toHaveLength(51);
      // 17 × (y, x, score): finite, with scores in [0, 1] (y and x may fall just outside).
      expect(r.keypoints.every((v) => Number.isFinite(v))).toBe(true);
      expect(r.keypoints.filter((_, i) => i % 3 === 2).every((s) => s >= 0 && s <= 1)).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await server.close();
    }
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});
