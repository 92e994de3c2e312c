// Fixed-method benchmark: an MLP of 512x512 MatMuls (random weights), fp32 vs static QDQ INT8,
// onnxruntime-web WASM, 1 thread, CPU time per run (p25 of interleaved runs), both measured here.
//   npx tsc -b && [BATCH=16] node packages/quantize/scripts/bench-matmul.mjs
import onnxProto from 'onnx-proto';
import {
  Session,
  collectRanges,
  timeInterleaved,
  decodeModel,
  encodeModel,
  insertQdq,
  qdqCandidates,
  qdqTensors,
  quantizeWeights,
} from '../dist/index.js';

const { onnx } = onnxProto;
const LAYERS = 4;
const WIDTH = 512;
const BATCH = Number(process.env.BATCH ?? 16);
const RUNS = 20;

let seed = 42;
const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
const tensor = (name, dims, scale) => {
  const f = Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => rand() * scale);
  return { name, dims, dataType: 1, rawData: new Uint8Array(f.buffer) };
};
const vi = (name, dims) => ({
  name,
  type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
});

const nodes = [];
const inits = [];
let cur = 'x';
for (let l = 0; l < LAYERS; l++) {
  inits.push(tensor(`w${l}`, [WIDTH, WIDTH], Math.sqrt(3 / WIDTH)), tensor(`b${l}`, [WIDTH], 0.1));
  nodes.push({ opType: 'MatMul', name: `mm${l}`, input: [cur, `w${l}`], output: [`mm${l}`] });
  nodes.push({ opType: 'Add', name: `add${l}`, input: [`mm${l}`, `b${l}`], output: [`add${l}`] });
  nodes.push({ opType: 'Relu', name: `relu${l}`, input: [`add${l}`], output: [(cur = `h${l}`)] });
}
const bytes = onnx.ModelProto.encode(
  onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'mlp',
      node: nodes,
      initializer: inits,
      input: [vi('x', [BATCH, WIDTH])],
      output: [vi(cur, [BATCH, WIDTH])],
    },
  }),
).finish();

const feed = () => ({
  x: { type: 'float32', data: Float32Array.from({ length: BATCH * WIDTH }, rand), dims: [BATCH, WIDTH] },
});
const calibration = Array.from({ length: 8 }, feed);
const evaluation = Array.from({ length: 8 }, feed);

const model = decodeModel(bytes);
const weights = quantizeWeights(model, 'all');
const candidates = qdqCandidates(model, weights);
const ranges = await collectRanges(decodeModel(bytes), qdqTensors(candidates), calibration, { kind: 'minmax' });
insertQdq(model, { nodes: new Set(candidates.map((n) => n.name)), ranges, weights });
const int8 = encodeModel(model);

const fp32s = await Session.open(bytes);
const int8s = await Session.open(int8);
let maxAbs = 0;
let sumAbs = 0;
let refMax = 0;
let n = 0;
for (const f of evaluation) {
  const a = (await fp32s.run(f))[cur].data;
  const b = (await int8s.run(f))[cur].data;
  a.forEach((v, i) => {
    maxAbs = Math.max(maxAbs, Math.abs(v - b[i]));
    sumAbs += Math.abs(v - b[i]);
    refMax = Math.max(refMax, Math.abs(v));
    n++;
  });
}
await fp32s.release();
await int8s.release();
// Runs alternate between the two models, so other load on the machine hits both alike.
// Rounds of interleaved runs; the fastest round's medians are reported (interference only
// ever slows a round down).
const rounds = [];
for (let r = 0; r < 5; r++) rounds.push(await timeInterleaved(bytes, int8, evaluation[0], RUNS, 5));
const fp32Ms = Math.min(...rounds.map((r) => r[0]));
const int8Ms = Math.min(...rounds.map((r) => r[1]));
console.log(`rounds (fp32/int8 ms): ${rounds.map(([a, b]) => `${a.toFixed(2)}/${b.toFixed(2)}`).join(' ')}`);
console.log(
  `MLP ${LAYERS}x MatMul ${WIDTH}x${WIDTH}, batch ${BATCH}, ORT-web WASM 1 thread, best of 5 rounds of ${RUNS} interleaved runs (p25 CPU time per round)`,
);
console.log(`size: fp32 ${bytes.length} B, int8 ${int8.length} B (${(int8.length / bytes.length).toFixed(3)}x)`);
console.log(
  `time: fp32 ${fp32Ms.toFixed(3)} ms, int8 QDQ ${int8Ms.toFixed(3)} ms, speed-up ${(fp32Ms / int8Ms).toFixed(2)}x`,
);
console.log(
  `error: max abs ${maxAbs.toExponential(2)}, mean abs ${(sumAbs / n).toExponential(2)} (max |y| ${refMax.toFixed(3)})`,
);
