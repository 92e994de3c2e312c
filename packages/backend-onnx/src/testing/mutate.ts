// Mutations of a real model file for fuzzing (RELIABILITY R1), used by the Node fuzz test
// (../fuzz.test.ts) and the browser smoke (e2e/fuzz.spec.ts): bit flips, truncation, a protobuf
// varint or length rewritten absurd, nested down to tensors and nodes. Test support: left out
// of the package's build.

import type { Rng } from '../../../core/src/testing/rng.js';

export { rng, type Rng } from '../../../core/src/testing/rng.js';

/** A protobuf field: where the varint holding its value (wire 0) or length (wire 2) is. */
export interface Field {
  wire: number;
  at: number;
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

/** Every varint and length field of a message, descending into payloads that parse as messages. */
export function fieldsOf(b: Uint8Array, start = 0, end = b.length, depth = 6, out: Field[] = []): Field[] | null {
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

/** One mutated copy of `src` and what was done to it. */
export function mutateModel(r: Rng, src: Uint8Array, fields: Field[]): { bytes: Uint8Array; how: string } {
  switch (r.int(4)) {
    case 0: {
      const b = new Uint8Array(src);
      const flips = 1 + r.int(16);
      for (let i = 0; i < flips; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
      return { bytes: b, how: `${flips} bit flips` };
    }
    case 1: {
      const cut = r.int(src.length);
      return { bytes: src.slice(0, cut), how: `truncated at ${cut}` };
    }
    default: {
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
