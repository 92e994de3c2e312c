import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { clearStore, openHarness } from './helpers.js';
import { SAMPLE } from './support/ota.js';
import { fieldsOf, mutateModel, rng } from '../packages/backend-onnx/src/testing/mutate.js';

// R1 fuzzed in Chromium: mutated copies of digits.onnx (bit flips, truncation, protobuf lengths
// and varints set absurd), served by a route handler, go through rt.load in one page next to a
// loaded digits model. Each load settles within a bound (the worker never hangs), the page never
// crashes, every failure is an OutpostError with a stable code, a mutant that loads either runs
// or fails typed, and afterwards the model loaded before and a fresh load of the real file still
// classify every sample right. FUZZ_SEED reproduces a run, FUZZ_CASES sets the number of loads.

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CASES = Number(process.env.FUZZ_CASES ?? 500);
/** A load of a 110 KB model settles in well under a second here; 10 s means a hang. */
const SETTLE_MS = 10_000;
const DIGITS = new Uint8Array(await readFile(join(resolve(import.meta.dirname, '..'), 'models/digits/digits.onnx')));
/** What a malformed model may fail a load with: the model's fault, or no backend could take it. */
const LOAD_CODES = ['MODEL_FORMAT', 'BACKEND_UNAVAILABLE'];

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

test(`R1 fuzzed: ${CASES} mutated digits models load or fail typed, never hang, and the real model still runs`, async ({
  page,
}) => {
  test.setTimeout(120_000);
  const r = rng(SEED);
  const fields = fieldsOf(DIGITS)!;
  expect(fields.length).toBeGreaterThan(20);
  const cases = Array.from({ length: CASES }, () => mutateModel(r, DIGITS, fields));
  let crashed = false;
  page.on('crash', () => (crashed = true));
  await page.route('**/fuzz/*.onnx', (route) => {
    const i = Number(/\/fuzz\/(\d+)\.onnx/.exec(route.request().url())![1]);
    return route.fulfill({
      status: 200,
      contentType: 'application/octet-stream',
      headers: { 'cross-origin-resource-policy': 'same-origin' },
      body: Buffer.from(cases[i]!.bytes),
    });
  });
  const started = performance.now();
  const res = await page.evaluate(
    async ({ n, settleMs, samples }) => {
      const { OutpostError } = window.outpost;
      const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
      const before = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
      const feeds = (input: number[]) => ({
        x: { type: 'float32' as const, data: Float32Array.from(input), dims: [1, 1, 28, 28] },
      });
      const outcomes: {
        i: number;
        stage: 'load' | 'run';
        ok: boolean;
        code?: string;
        typed?: boolean;
        what?: string;
        ms: number;
      }[] = [];
      const settle = <T>(p: Promise<T>) =>
        Promise.race([p, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), settleMs))]);
      const failure = (e: unknown) => {
        const err = e as Error & { code?: string };
        return {
          code: err.code,
          typed: e instanceof OutpostError,
          what: `${err.name}: ${String(err.message).slice(0, 200)}`,
        };
      };
      for (let i = 0; i < n; i++) {
        let t = performance.now();
        let model;
        try {
          const m = await settle(rt.load({ name: 'fuzz', version: String(i), url: `/fuzz/${i}.onnx` }));
          if (m === 'hung') {
            outcomes.push({ i, stage: 'load', ok: false, what: 'hung', ms: performance.now() - t });
            break;
          }
          model = m;
          outcomes.push({ i, stage: 'load', ok: true, ms: performance.now() - t });
        } catch (e) {
          outcomes.push({ i, stage: 'load', ok: false, ...failure(e), ms: performance.now() - t });
          continue;
        }
        // A mutant that loads (a flipped weight, a doc string) runs, or fails typed.
        t = performance.now();
        try {
          const out = await settle(model.run(feeds(samples[0]!.input)));
          if (out === 'hung') {
            outcomes.push({ i, stage: 'run', ok: false, what: 'hung', ms: performance.now() - t });
            break;
          }
          outcomes.push({ i, stage: 'run', ok: true, ms: performance.now() - t });
        } catch (e) {
          outcomes.push({ i, stage: 'run', ok: false, ...failure(e), ms: performance.now() - t });
        }
        await model.dispose();
        await rt.cache.delete('fuzz', String(i));
      }
      const right = async (m: typeof before) => {
        let ok = 0;
        for (const s of samples) {
          const l = Array.from((await m.run(feeds(s.input))).logits!.data as Float32Array);
          if (l.indexOf(Math.max(...l)) === s.label) ok++;
        }
        return ok;
      };
      const after = await rt.load({ name: 'digits-again', version: '1.0.0', url: '/models/digits.onnx' });
      const result = {
        outcomes,
        before: await right(before),
        after: await right(after),
        stored: (await rt.cache.list()).map((m) => m.name).sort(),
      };
      await rt.close();
      return result;
    },
    { n: CASES, settleMs: SETTLE_MS, samples: SAMPLE.samples },
  );
  const seconds = (performance.now() - started) / 1000;
  const loads = res.outcomes.filter((o) => o.stage === 'load');
  const codes: Record<string, number> = {};
  for (const o of res.outcomes)
    if (!o.ok) codes[`${o.stage} ${o.code ?? o.what}`] = (codes[`${o.stage} ${o.code ?? o.what}`] ?? 0) + 1;
  const slowest = Math.max(...res.outcomes.map((o) => o.ms));
  console.log(
    `R1 browser fuzz (FUZZ_SEED=${SEED}): ${loads.length} loads in ${seconds.toFixed(1)} s, ${loads.filter((o) => o.ok).length} loaded; failures ${JSON.stringify(codes)}; slowest call ${slowest.toFixed(0)} ms`,
  );
  const bad = res.outcomes.filter(
    (o) =>
      !o.ok && (!o.typed || (o.stage === 'load' && !LOAD_CODES.includes(o.code!)) || !/^[A-Z_]+$/.test(o.code ?? '')),
  );
  expect(bad.map((o) => `FUZZ_SEED=${SEED} case ${o.i} (${cases[o.i]!.how}) ${o.stage}: ${o.code} ${o.what}`)).toEqual(
    [],
  );
  expect(loads).toHaveLength(CASES);
  expect(crashed).toBe(false);
  expect(res.before).toBe(SAMPLE.samples.length);
  expect(res.after).toBe(SAMPLE.samples.length);
  // No mutant is left in the store.
  expect(res.stored).toEqual(['digits', 'digits-again']);
});
