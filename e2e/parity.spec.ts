import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';

// Real third-party models give the same outputs through Outpost (in its worker) as through
// onnxruntime-web called directly on the page, with the same build, threads and inputs.

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test('PP-OCRv4 det 1x3x320x320: Outpost matches onnxruntime-web called directly (max abs diff <= 1e-4)', async ({
  page,
}) => {
  const r = await page.evaluate(async () => {
    const input = new Float32Array(3 * 320 * 320);
    // A deterministic image-like pattern: stripes and a gradient, so the map is not flat.
    for (let i = 0; i < input.length; i++)
      input[i] = ((i % 320) / 320) * 0.5 + (Math.floor(i / 320) % 16 < 8 ? 0.4 : -0.4);
    const dims = [1, 3, 320, 320];
    const ort = await window.loadOrt('wasm');
    ort.env.wasm.numThreads = 1;
    const direct = await ort.InferenceSession.create('/models/ppocr-det.onnx', { executionProviders: ['wasm'] });
    const d = await direct.run({ x: new ort.Tensor('float32', input.slice(), dims) });
    const ref = d[direct.outputNames[0]!]!;

    const rt = await window.outpost.createRuntime({ backends: ['wasm'], wasm: { numThreads: 1 } });
    const model = await rt.load({ name: 'ppocr-det', version: '4', url: '/models/ppocr-det.onnx' });
    const out = await model.run({ x: { type: 'float32', data: input, dims } });
    const got = Object.values(out)[0]!;
    const a = got.data as Float32Array;
    const b = ref.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    let mean = 0;
    for (const v of a) mean += v / a.length;
    await rt.close();
    return { maxDiff, mean, dims: got.dims, refDims: ref.dims, lengths: [a.length, b.length], backend: model.backend };
  });
  expect(r.backend).toBe('wasm');
  expect(r.dims).toEqual([1, 1, 320, 320]);
  expect(r.dims).toEqual(r.refDims);
  expect(r.lengths[0]).toBe(r.lengths[1]);
  expect(r.mean).toBeGreaterThan(0); // not an all-zero map
  expect(r.maxDiff).toBeLessThanOrEqual(1e-4);
});

test('Silero VAD v5 (int64 sr, unknown dims, recurrent state): Outpost matches onnxruntime-web over 20 frames', async ({
  page,
}) => {
  const r = await page.evaluate(async () => {
    const frames = 20;
    const frame = (k: number) => {
      const f = new Float32Array(512);
      for (let i = 0; i < 512; i++)
        f[i] = 0.3 * Math.sin((2 * Math.PI * 440 * (k * 512 + i)) / 16000) * (k % 4 === 0 ? 0 : 1);
      return f;
    };
    const ort = await window.loadOrt('wasm');
    ort.env.wasm.numThreads = 1;
    const direct = await ort.InferenceSession.create('/models/silero-vad-v5.onnx', { executionProviders: ['wasm'] });
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], wasm: { numThreads: 1 } });
    const model = await rt.load({ name: 'silero-vad', version: '5', url: '/models/silero-vad-v5.onnx' });
    let stateA: Float32Array = new Float32Array(256);
    let stateB: Float32Array = new Float32Array(256);
    let maxDiff = 0;
    const probs: number[] = [];
    for (let k = 0; k < frames; k++) {
      const d = await direct.run({
        input: new ort.Tensor('float32', frame(k), [1, 512]),
        state: new ort.Tensor('float32', stateA, [2, 1, 128]),
        sr: new ort.Tensor('int64', new BigInt64Array([16000n]), []),
      });
      const o = await model.run({
        input: { type: 'float32', data: frame(k), dims: [1, 512] },
        state: { type: 'float32', data: stateB, dims: [2, 1, 128] },
        sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
      });
      const pa = (d.output!.data as Float32Array)[0]!;
      const pb = (o.output!.data as Float32Array)[0]!;
      probs.push(pb);
      maxDiff = Math.max(maxDiff, Math.abs(pa - pb));
      stateA = d.stateN!.data as Float32Array;
      stateB = o.stateN!.data as Float32Array;
      for (let i = 0; i < 256; i++) maxDiff = Math.max(maxDiff, Math.abs(stateA[i]! - stateB[i]!));
    }
    await rt.close();
    return { maxDiff, probs, inputs: model.inputs };
  });
  expect(r.inputs).toEqual([
    { name: 'input', type: 'float32', dims: [null, null] },
    { name: 'state', type: 'float32', dims: [2, null, 128] },
    { name: 'sr', type: 'int64', dims: [] },
  ]);
  expect(r.probs.every((p) => p >= 0 && p <= 1)).toBe(true);
  expect(new Set(r.probs.map((p) => p.toFixed(4))).size).toBeGreaterThan(1);
  expect(r.maxDiff).toBeLessThanOrEqual(1e-4);
});
