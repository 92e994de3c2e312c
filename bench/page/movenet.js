// MoveNet's rows of the INT8 section, in the page: the float16 source and its quantized TF.js
// variants, each loaded into one Outpost TF.js runtime (`@outpost/runtime/tfjs`, tfjs wasm
// backend, one thread as the harness's CSP allows), keypoints compared with the source's on
// figures no variant was calibrated on, then called interleaved.
import { figure } from '../../models/movenet/figures.mjs';
import { interleave } from './timing.js';

const SIDE = 192;
/** A keypoint score at or above this counts as found (MoveNet's demos draw from 0.3). */
const CONFIDENT = 0.3;
const feedOf = (index) => ({ input: { type: 'int32', data: figure(index), dims: [1, SIDE, SIDE, 3] } });

/** MoveNet's one output, [1, 1, 17, 3] as (y, x, score) per keypoint. */
async function keypoints(model, feeds) {
  return Object.values(await model.run(feeds))[0].data;
}

/**
 * @param {{ variants: { name: string, url: string }[], warmup: number, runs: number, evaluation: { first: number, count: number } }} args
 * @returns per variant: keypoint coordinate error against the source (max and mean |diff| over
 *   every coordinate of every figure; max over the keypoints the source scores >= 0.3; max per
 *   figure), the largest score difference, and ms per call.
 */
export async function movenetSpeed({ variants, warmup, runs, evaluation }) {
  const { createRuntime } = await window.loadOutpostTfjs();
  const runtime = await createRuntime({ backends: ['wasm'], wasm: { numThreads: 1 } });
  try {
    const loaded = [];
    for (const v of variants) {
      const model = await runtime.load({ name: `bench-movenet-${v.name}`, version: '1', url: v.url, format: 'tfjs' });
      if (model.backend !== 'wasm') throw new Error(`MoveNet ${v.name} ran on ${model.backend}, not wasm`);
      loaded.push({ name: v.name, model });
    }
    const [source] = loaded;
    const errors = Object.fromEntries(
      loaded.map((l) => [l.name, { coordMax: 0, confidentMax: 0, coordSum: 0, scoreMax: 0, n: 0, perFigure: [] }]),
    );
    for (let k = 0; k < evaluation.count; k++) {
      const feeds = feedOf(evaluation.first + k);
      const ref = await keypoints(source.model, feeds);
      for (const { name, model } of loaded) {
        const got = await keypoints(model, feeds);
        const e = errors[name];
        let figureMax = 0;
        for (let i = 0; i < ref.length; i++) {
          const d = Math.abs(got[i] - ref[i]);
          if (i % 3 === 2) e.scoreMax = Math.max(e.scoreMax, d);
          else {
            const err = Number.isNaN(d) ? Infinity : d;
            e.coordMax = Math.max(e.coordMax, err);
            figureMax = Math.max(figureMax, err);
            // The keypoints an app draws: those the source itself is confident about.
            if (ref[i - (i % 3) + 2] >= CONFIDENT) e.confidentMax = Math.max(e.confidentMax, err);
            e.coordSum += err;
            e.n++;
          }
        }
        e.perFigure.push(figureMax);
      }
    }
    const feeds = feedOf(evaluation.first + evaluation.count);
    const peers = loaded.map(({ name, model }) => ({ name, prepare: () => feeds, run: (f) => model.run(f) }));
    const times = await interleave(peers, { warmup, runs });
    await Promise.all(loaded.map((l) => l.model.dispose()));
    return {
      times,
      errors: Object.fromEntries(
        Object.entries(errors).map(([name, e]) => [
          name,
          {
            coordMax: e.coordMax,
            confidentMax: e.confidentMax,
            coordMean: e.coordSum / e.n,
            scoreMax: e.scoreMax,
            perFigure: e.perFigure,
          },
        ]),
      ),
    };
  } finally {
    await runtime.close();
  }
}
