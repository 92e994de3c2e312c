import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';
import { bundleSize } from '../bench/lib/bundle-size.mjs';
import { clearRequests, clearStore, openHarness, serverRequests } from './helpers.js';

// TF.js models through `@outpost/runtime/tfjs`: the same answers as TF.js called directly on the
// page (same tfjs backend, same single WASM thread), stored in IndexedDB with the weight shards,
// and kept out of the default `@outpost/runtime` bundle.

const SIDE = 192;

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('MoveNet Lightning (TF.js graph model, float16 weights): Outpost matches TF.js on the page (wasm, max abs diff <= 1e-4), then loads from IndexedDB with no requests', async ({
  page,
}) => {
  await clearRequests(page);
  const first = await page.evaluate(async (side) => {
    // An image-like int32 RGB pattern: a bright figure-sized blob on a gradient.
    const input = new Int32Array(side * side * 3);
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        for (let c = 0; c < 3; c++) {
          const inBlob = Math.abs(x - side / 2) < side / 6 && y > side / 8 && y < (7 * side) / 8;
          input[(y * side + x) * 3 + c] = inBlob ? 200 - c * 30 : Math.floor((x + y) / 3) % 256;
        }
    const dims = [1, side, side, 3];

    const { tf, loadGraphModel } = await window.loadTfjs('wasm');
    const t0 = performance.now();
    const direct = await loadGraphModel('/models/movenet-lightning.json');
    const directLoadMs = performance.now() - t0;
    const x = tf.tensor(input, dims, 'int32');
    const y = direct.execute(x) as import('@tensorflow/tfjs-core').Tensor;
    const ref = (await y.data()) as Float32Array;
    tf.dispose([x, y]);
    direct.dispose();

    const { createRuntime } = await window.loadOutpostTfjs();
    const rt = await createRuntime({ backends: ['wasm'], wasm: { numThreads: 1 } });
    const t1 = performance.now();
    const model = await rt.load({
      name: 'movenet-lightning',
      version: '4',
      url: '/models/movenet-lightning.json',
      format: 'tfjs',
    });
    const outpostLoadMs = performance.now() - t1;
    const out = await model.run({ input: { type: 'int32', data: input, dims } });
    const got = out['Identity']!;
    const a = got.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - ref[i]!));
    const info = { backend: model.backend, inputs: model.inputs, outputs: model.outputs };
    const cached = await rt.cache.list();
    await model.dispose();
    await rt.close();
    return {
      maxDiff,
      info,
      dims: got.dims,
      lengths: [a.length, ref.length],
      scores: Array.from({ length: 17 }, (_, k) => a[k * 3 + 2]!),
      keypoints: Array.from(a),
      directLoadMs,
      outpostLoadMs,
      cached,
    };
  }, SIDE);
  console.log(
    `MoveNet wasm: max abs diff ${first.maxDiff.toExponential(2)}; first load: TF.js direct ${first.directLoadMs.toFixed(0)} ms (HTTP), Outpost ${first.outpostLoadMs.toFixed(0)} ms (download + store + open)`,
  );
  expect(first.info).toEqual({
    backend: 'wasm',
    inputs: [{ name: 'input', type: 'int32', dims: [1, SIDE, SIDE, 3] }],
    outputs: [{ name: 'Identity', type: 'float32', dims: [1, 1, 17, 3] }],
  });
  expect(first.dims).toEqual([1, 1, 17, 3]);
  expect(first.lengths).toEqual([51, 51]);
  expect(first.scores.every((s) => s >= 0 && s <= 1)).toBe(true);
  expect(first.maxDiff).toBeLessThanOrEqual(1e-4);
  // The model.json and its shard are stored together, as one model.
  expect(first.cached).toHaveLength(1);
  expect(first.cached[0]!.bytes).toBe(161_813 + 4_650_216);
  expect(await serverRequests(page)).toEqual([
    // TF.js called directly, then Outpost: model.json first, then the shard it names.
    '/models/movenet-lightning.json',
    '/models/movenet-lightning.bin',
    '/models/movenet-lightning.json',
    '/models/movenet-lightning.bin',
  ]);

  await clearRequests(page);
  await page.reload();
  await page.waitForFunction(() => window.harnessReady === true);
  const second = await page.evaluate(async (side) => {
    const input = new Int32Array(side * side * 3);
    for (let y = 0; y < side; y++)
      for (let x = 0; x < side; x++)
        for (let c = 0; c < 3; c++) {
          const inBlob = Math.abs(x - side / 2) < side / 6 && y > side / 8 && y < (7 * side) / 8;
          input[(y * side + x) * 3 + c] = inBlob ? 200 - c * 30 : Math.floor((x + y) / 3) % 256;
        }
    const { createRuntime } = await window.loadOutpostTfjs();
    // Default threads this time (2 on this cross-origin isolated page): TF.js must still start,
    // on one thread, rather than wait for blob: workers the strict CSP forbids.
    const rt = await createRuntime({ backends: ['wasm'] });
    const t0 = performance.now();
    const model = await rt.load({
      name: 'movenet-lightning',
      version: '4',
      url: '/models/movenet-lightning.json',
      format: 'tfjs',
    });
    const loadMs = performance.now() - t0;
    const out = await model.run({ input: { type: 'int32', data: input, dims: [1, side, side, 3] } });
    const runs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await model.run({ input: { type: 'int32', data: input, dims: [1, side, side, 3] } });
      runs.push(performance.now() - t);
    }
    runs.sort((p, q) => p - q);
    const info = { source: model.source, backend: model.backend, timings: model.timings };
    await model.dispose();
    await rt.close();
    return { info, loadMs, medianRunMs: runs[2]!, keypoints: Array.from(out['Identity']!.data as Float32Array) };
  }, SIDE);
  console.log(
    `MoveNet from IndexedDB: load ${second.loadMs.toFixed(0)} ms (${JSON.stringify(second.info.timings)}), median run ${second.medianRunMs.toFixed(1)} ms`,
  );
  expect(second.info.source).toBe('cache');
  expect(second.info.backend).toBe('wasm');
  expect(await serverRequests(page)).toEqual([]);
  expect(second.keypoints).toEqual(first.keypoints);
});

test('MoveNet on tfjs-backend-webgpu (SwiftShader adapter): Outpost matches TF.js webgpu on the page, with nothing refused by the strict CSP', async ({
  page,
}) => {
  const console_: string[] = [];
  page.on('console', (m) => console_.push(`${m.type()}: ${m.text()}`));
  const r = await page.evaluate(async (side) => {
    const input = new Int32Array(side * side * 3).map((_, i) => (i * 37) % 256);
    const dims = [1, side, side, 3];
    const { tf, loadGraphModel } = await window.loadTfjs('webgpu');
    const direct = await loadGraphModel('/models/movenet-lightning.json');
    const x = tf.tensor(input, dims, 'int32');
    const y = direct.execute(x) as import('@tensorflow/tfjs-core').Tensor;
    const ref = (await y.data()) as Float32Array;
    tf.dispose([x, y]);
    direct.dispose();

    const { createRuntime } = await window.loadOutpostTfjs();
    const rt = await createRuntime({ backends: ['webgpu', 'wasm'] });
    const model = await rt.load({ name: 'movenet', version: '4', url: '/models/movenet-lightning.json' });
    const out = await model.run({ input: { type: 'int32', data: input, dims } });
    const a = out['Identity']!.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - ref[i]!));
    const info = { backend: model.backend, fallbackReason: model.fallbackReason };
    await model.dispose();
    await rt.close();
    return { maxDiff, info };
  }, SIDE);
  console.log(`MoveNet webgpu: max abs diff ${r.maxDiff.toExponential(2)} (${JSON.stringify(r.info)})`);
  expect(r.info.backend).toBe('webgpu');
  expect(r.maxDiff).toBeLessThanOrEqual(1e-4);
  // TF.js needs no eval under the strict CSP; nothing was refused.
  expect(console_.filter((l) => /Content Security Policy|Refused/i.test(l))).toEqual([]);
});

test('the default @outpost/runtime bundle holds no TF.js; @outpost/runtime/tfjs does', async () => {
  const dist = fileURLToPath(new URL('../packages/runtime/dist/', import.meta.url));
  // The bench measures bundles the same way (onnxruntime-web external, minified).
  const bundle = bundleSize;
  const tfjsIds = (ids: string[]) => ids.filter((id) => /@tensorflow|backend-tfjs/.test(id));
  const page = await bundle(`${dist}index.js`);
  const worker = await bundle(`${dist}worker/index.js`);
  const tfjsPage = await bundle(`${dist}tfjs/index.js`);
  const tfjsWorker = await bundle(`${dist}worker/index-tfjs.js`);
  console.log(
    `worker bundle (min/gzip, ORT external): default ${worker.minBytes}/${worker.gzipBytes} B, ` +
      `with TF.js ${tfjsWorker.minBytes}/${tfjsWorker.gzipBytes} B; page: default ${page.minBytes} B, tfjs entry ${tfjsPage.minBytes} B`,
  );
  expect(tfjsIds(page.ids)).toEqual([]);
  expect(tfjsIds(worker.ids)).toEqual([]);
  // The tfjs page entry is the default one with another worker URL: still no TF.js on the page.
  expect(tfjsIds(tfjsPage.ids)).toEqual([]);
  expect(tfjsIds(tfjsWorker.ids).some((id) => id.includes('@tensorflow/tfjs-core'))).toBe(true);
});
