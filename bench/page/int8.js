// The INT8 section's in-page half: fp32 and quantized variants of one model, each loaded into
// the same Outpost runtime (the worker, WASM), called interleaved; and PP-OCR det's text masks
// on canvas-rendered text, fp32 against each variant.
import { modelById } from './models.js';
import { startOutpost } from './peers.js';
import { textImage } from './text-pages.js';
import { interleave } from './timing.js';

/**
 * The input a comparison is timed on. PP-OCR det gets a page of rendered text rather than the
 * bench's stripes, on which its probability map is near zero and a relative error means nothing.
 */
function feedsFor({ kind, dims, data }) {
  if (kind === 'given') return { x: { type: 'float32', data: Float32Array.from(data), dims } };
  if (kind === 'digit') return modelById('digits').feeds();
  if (kind === 'ocr') return textImage(99);
  throw new Error(`unknown feed kind ${kind}`);
}

/** Loads every variant of a comparison into `runtime`, under names of the bench's own. */
async function loadVariants(runtime, id, variants) {
  const loaded = [];
  for (const v of variants) {
    const model = await runtime.load({
      name: `bench-int8-${id}-${v.name}`,
      version: '1',
      url: v.url,
      sha256: v.sha256,
    });
    if (model.backend !== 'wasm') throw new Error(`${id} ${v.name} ran on ${model.backend}, not wasm`);
    loaded.push({ name: v.name, model });
  }
  return loaded;
}

/**
 * ms per call of each variant of each comparison, variants interleaved call by call, all on one
 * Outpost runtime with `threads` WASM threads.
 * @param {{ threads: number, comparisons: { id: string, feed: object, variants: { name: string, url: string, sha256: string }[], warmup: number, runs: number }[] }} args
 */
export async function int8Speed({ threads, comparisons }) {
  const runtime = await startOutpost(threads);
  const results = {};
  const errors = {};
  try {
    for (const { id, feed, variants, warmup, runs } of comparisons) {
      const feeds = feedsFor(feed);
      const loaded = await loadVariants(runtime, id, variants);
      errors[id] = await relativeErrors(loaded, feeds);
      const peers = loaded.map(({ name, model }) => ({
        name,
        prepare: () => feeds,
        run: (f) => model.run(f),
        close: () => model.dispose(),
      }));
      results[id] = await interleave(peers, { warmup, runs });
      await Promise.all(peers.map((p) => p.close()));
    }
  } finally {
    await runtime.close();
  }
  return { crossOriginIsolated, results, errors };
}

/**
 * Each variant's relative error against fp32 (the first loaded) on the timed input: mean |variant
 * - fp32| / mean |fp32| of the first output, the quantizer's own measure, here as Outpost runs it.
 */
async function relativeErrors(loaded, feeds) {
  const outputs = [];
  for (const { model } of loaded) outputs.push(Object.values(await model.run(feeds))[0].data);
  const [ref] = outputs;
  const refAbs = ref.reduce((n, v) => n + Math.abs(v), 0);
  return Object.fromEntries(
    loaded.map(({ name }, k) => [name, outputs[k].reduce((n, v, i) => n + Math.abs(v - ref[i]), 0) / refAbs]),
  );
}

/** The probability map, the det model's one output. */
async function probMap(model, feeds) {
  const outputs = await model.run(feeds);
  return Object.values(outputs)[0].data;
}

/**
 * PP-OCR det's text mask (probability > `threshold`) from each variant against fp32's, on
 * `images` canvas-rendered text pages: IoU per image, the share of pixels fp32 marks as text,
 * and the mean absolute difference of the probability maps.
 */
export async function int8Masks({ threads, variants, images, threshold }) {
  const runtime = await startOutpost(threads);
  try {
    const loaded = await loadVariants(runtime, 'ppocr-det', variants);
    const [fp32, ...quantized] = loaded;
    const out = {
      textShare: [],
      variants: Object.fromEntries(quantized.map((q) => [q.name, { iou: [], meanAbs: [] }])),
    };
    for (let k = 0; k < images; k++) {
      const feeds = textImage(k + 1);
      const ref = await probMap(fp32.model, feeds);
      let textPixels = 0;
      for (const p of ref) if (p > threshold) textPixels++;
      out.textShare.push(textPixels / ref.length);
      for (const q of quantized) {
        const map = await probMap(q.model, feeds);
        let both = 0;
        let either = 0;
        let abs = 0;
        for (let i = 0; i < ref.length; i++) {
          const a = ref[i] > threshold;
          const b = map[i] > threshold;
          if (a && b) both++;
          if (a || b) either++;
          abs += Math.abs(ref[i] - map[i]);
        }
        out.variants[q.name].iou.push(either ? both / either : NaN);
        out.variants[q.name].meanAbs.push(abs / ref.length);
      }
    }
    await Promise.all(loaded.map((l) => l.model.dispose()));
    return out;
  } finally {
    await runtime.close();
  }
}
