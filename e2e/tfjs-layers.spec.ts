import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';

// TF.js layers models (Keras-style `layers-model` model.json) through `@outpost/runtime/tfjs`:
// the same outputs as tf.loadLayersModel on the page, with float32 weights and with the uint8,
// uint16 and float16 weights quantizeTfjs writes. The fixtures are generated deterministically
// by models/tiny-layers/make.mjs (seeded initializers, saved through a custom IOHandler).

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('a tiny layers model (Conv2D, MaxPool, Dense) with float32, uint8, uint16 and float16 weights: Outpost matches tf.loadLayersModel on the page (wasm, max abs diff <= 1e-4)', async ({
  page,
}) => {
  const r = await page.evaluate(async () => {
    const side = 8;
    const batch = 4;
    // Deterministic inputs in [0, 1).
    let s = 11;
    const input = Float32Array.from({ length: batch * side * side }, () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    });
    const dims = [batch, side, side, 1];
    const { tf, loadLayersModel } = await window.loadTfjs('wasm');
    const { createRuntime } = await window.loadOutpostTfjs();
    const rt = await createRuntime({ backends: ['wasm'], wasm: { numThreads: 1 } });
    const rows = [];
    for (const dtype of ['float32', 'uint8', 'uint16', 'float16']) {
      const url = `/tiny-layers/${dtype}/model.json`;
      const direct = await loadLayersModel(url);
      const x = tf.tensor(input, dims, 'float32');
      const y = direct.predict(x) as import('@tensorflow/tfjs-core').Tensor;
      const ref = Array.from((await y.data()) as Float32Array);
      tf.dispose([x, y]);
      direct.dispose();

      const model = await rt.load({ name: `tiny-layers-${dtype}`, version: '1', url, format: 'tfjs' });
      const name = model.inputs[0]!.name;
      const out = await model.run({ [name]: { type: 'float32', data: input, dims } });
      const output = Object.values(out)[0]!;
      const got = Array.from(output.data as Float32Array);
      rows.push({
        dtype,
        backend: model.backend,
        inputs: model.inputs,
        outputs: model.outputs,
        dims: output.dims,
        got,
        ref,
        cached: (await rt.cache.list()).find((e) => e.name === `tiny-layers-${dtype}`)?.bytes,
      });
      await model.dispose();
    }
    await rt.close();
    return rows;
  });

  const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
  const float32 = r.find((row) => row.dtype === 'float32')!;
  for (const row of r) {
    const diff = maxDiff(row.got, row.ref);
    const vsFloat32 = maxDiff(row.got, float32.got);
    console.log(
      `tiny layers ${row.dtype}: Outpost vs TF.js max abs diff ${diff.toExponential(2)}; vs float32 weights ${vsFloat32.toExponential(2)}; stored ${row.cached} B`,
    );
    expect(row.backend).toBe('wasm');
    expect(row.inputs).toEqual([{ name: row.inputs[0]!.name, type: 'float32', dims: [null, 8, 8, 1] }]);
    expect(row.dims).toEqual([4, 5]);
    expect(row.got).toHaveLength(20);
    expect(diff).toBeLessThanOrEqual(1e-4);
    // Softmax rows: the model really ran (not zeros, not NaN).
    for (let b = 0; b < 4; b++) expect(row.got.slice(b * 5, b * 5 + 5).reduce((p, q) => p + q, 0)).toBeCloseTo(1, 5);
  }
  // Quantized weights change the answers a little, not a lot, and not at all would mean the
  // quantized files were never used.
  const u8 = maxDiff(r.find((row) => row.dtype === 'uint8')!.got, float32.got);
  expect(u8).toBeGreaterThan(0);
  expect(u8).toBeLessThan(0.05);
  for (const dtype of ['uint16', 'float16']) {
    const d = maxDiff(r.find((row) => row.dtype === dtype)!.got, float32.got);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(1e-3);
  }
  // model.json plus its weights, stored together: float32 weights 4 bytes each, uint8 one.
  expect(float32.cached! - r.find((row) => row.dtype === 'uint8')!.cached!).toBeGreaterThan(9000);
});
