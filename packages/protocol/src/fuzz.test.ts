import { MetadataError, ModelFormatError, OutpostError } from '@outpost/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeBundle, encodeBundle } from './bundle.js';
import { fromUtf8, utf8 } from './encoding.js';
import { decodeGolden, encodeGolden } from './golden.js';
import type { RoleName } from './metadata.js';
import { parseMetadata } from './parse.js';
import { decideChannel, releaseOf } from './release.js';
import { addRelease, encodeEnvelope, setChannel } from './repository.js';
import { signMetadata } from './sign.js';
import { MemoryRepo } from './test-repo.js';
import { TrustedSet, refreshMetadata, type MetadataFetcher } from './trust.js';
import { rng, type Rng } from '../../core/src/testing/rng.js';

// Fuzzing of everything that reads untrusted repository bytes (RELIABILITY U3, U10, R1): a real
// repository written by this package's own functions, its files mutated thousands of times (bit
// flips, truncation, random bytes, JSON edits, and JSON edits re-signed with the right keys so
// they reach past the signature check). Every outcome must be success or a typed OutpostError
// with an expected code: never a TypeError, RangeError or hang. Each block runs for a time
// budget; FUZZ_SEED reproduces a run (the seed is in every failure message).

const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
/** Milliseconds per fuzz block; FUZZ_MS raises it for a longer local run. */
const BUDGET = Number(process.env.FUZZ_MS ?? 1500);
const T0 = Date.UTC(2026, 10, 1);

function mutateBytes(r: Rng, src: Uint8Array): Uint8Array {
  const b = new Uint8Array(src);
  switch (r.int(6)) {
    case 0: {
      const flips = 1 + r.int(8);
      for (let i = 0; i < flips; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
      return b;
    }
    case 1:
      return b.subarray(0, r.int(b.length));
    case 2: {
      const at = r.int(b.length);
      const junk = Uint8Array.from({ length: 1 + r.int(64) }, () => r.int(256));
      return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
    }
    case 3: {
      // Invalid UTF-8 (a lone continuation byte, an overlong form).
      b[r.int(b.length)] = r.pick([0x80, 0xc0, 0xff, 0xfe]);
      return b;
    }
    case 4:
      return r.next() < 0.5
        ? Uint8Array.from({ length: r.int(2048) }, () => r.int(256))
        : // Nesting deeper than any recursive walker's stack, inside otherwise valid JSON.
          utf8(`{"signed":${'['.repeat(50_000)}${']'.repeat(50_000)},"signatures":[]}`);
    default: {
      // A byte from JSON's own alphabet, so the result often still parses.
      b[r.int(b.length)] = r.pick([...utf8('{}[]":,0123456789-.eE truefalsn\\')]);
      return b;
    }
  }
}

const deep = (n: number, leaf: unknown = 0): unknown => {
  let v = leaf;
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

function randomValue(r: Rng): unknown {
  return r.pick<() => unknown>([
    () => null,
    () => true,
    () => 0,
    () => -1,
    () => 1.5,
    () => 2 ** 53,
    () => 1e308,
    () => -0,
    () => '',
    () => 'x'.repeat(1 + r.int(20_000)),
    () => '2026-13-45T99:99:99Z',
    () => '../../etc/passwd',
    () => '__proto__',
    () => [],
    () => ({}),
    () => ({ __proto__: { polluted: true } }),
    () => deep(1 + r.int(1000)),
    () => [randomValue(r), randomValue(r)],
    () => ({ [r.pick(['version', 'length', 'hashes', 'keyids', 'threshold', 'sha256', 'custom'])]: randomValue(r) }),
  ])();
}

/** Every path to a value in a JSON tree. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out);
  return out;
}

/** One structural edit of a JSON tree (a copy): delete, replace, add, rename, duplicate. */
function mutateJson(r: Rng, value: unknown): unknown {
  const root = structuredClone(value) as Record<string, unknown>;
  const all = paths(root).filter((p) => p.length > 0);
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits && all.length; e++) {
    const p = r.pick(all);
    let parent: any = root;
    for (const k of p.slice(0, -1)) parent = parent?.[k];
    if (!parent || typeof parent !== 'object') continue;
    const key = p[p.length - 1]!;
    // A path from before an earlier edit may now lead into an array by a name (an object's
    // `length` field under a value replaced by an array): setting that would be the generator's
    // RangeError, not a case.
    if (Array.isArray(parent) && typeof key !== 'number') continue;
    switch (r.int(5)) {
      case 0:
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete parent[key];
        break;
      case 1:
        parent[key] = randomValue(r);
        break;
      case 2:
        if (!Array.isArray(parent)) parent[`${String(key)}${r.pick(['_', 'x', ''])}${r.int(3)}`] = randomValue(r);
        else parent.push(randomValue(r));
        break;
      case 3:
        if (!Array.isArray(parent)) {
          parent[r.pick(['__proto__', 'constructor', 'toString', `${String(key)}2`])] = parent[key];
          delete parent[key];
        }
        break;
      default:
        if (typeof parent[key] === 'number') parent[key] = parent[key] + r.pick([1, -1, 1e9, -1e9]);
        else if (typeof parent[key] === 'string') parent[key] = parent[key] + r.pick(['a', '/', '\u0000', '']);
        else parent[key] = randomValue(r);
    }
  }
  return root;
}

/**
 * A JSON edit of `src` as bytes, or null when the edit itself cannot be serialised (a mutant past
 * V8's string limit): that is the generator's limit, not a case.
 */
function jsonMutant(r: Rng, src: Uint8Array): Uint8Array | null {
  try {
    return utf8(JSON.stringify(mutateJson(r, JSON.parse(fromUtf8(src)))));
  } catch {
    return null;
  }
}

/** Fails the test unless `err` is a typed OutpostError with one of `codes`. */
function expectTyped(err: unknown, codes: readonly string[], what: string) {
  if (err instanceof OutpostError && codes.includes(err.code)) return;
  const e = err as Error;
  expect.fail(
    `FUZZ_SEED=${SEED} ${what}: untyped or unexpected failure ${e?.name}: ${String(e?.message).slice(0, 300)}`,
  );
}

/** Runs `step` with a fresh case index until the budget is spent; returns how many cases ran. */
async function forBudget(step: (i: number) => Promise<void> | void): Promise<number> {
  const end = performance.now() + BUDGET;
  let i = 0;
  while (performance.now() < end) await step(i++);
  return i;
}

const METADATA_CODES = [
  'METADATA_FORMAT',
  'METADATA_SIGNATURE',
  'METADATA_ROLLBACK',
  'METADATA_EXPIRED',
  'METADATA_MISMATCH',
] as const;

let repo: MemoryRepo;
/** The repository's current metadata files by name, as a client fetches them. */
let files: Map<string, Uint8Array>;
const counts: Record<string, number> = {};

beforeAll(async () => {
  repo = await MemoryRepo.create(T0);
  const golden = encodeGolden({
    inputs: { x: { type: 'float32', dims: [1, 3], data: Float32Array.of(1, 2, 3) } },
    outputs: { y: { type: 'int64', dims: [2], data: BigInt64Array.of(7n, -1n) } },
    tolerance: 1e-3,
  });
  for (const version of ['1.0.0', '1.1.0']) {
    repo.apply(
      await addRelease(
        repo.state,
        {
          model: 'digits',
          version,
          files: [
            {
              variant: 'fp32',
              file: 'digits.onnx',
              format: 'onnx',
              primary: true,
              bytes: Uint8Array.from({ length: 3000 }, (_, i) => i & 255),
            },
          ],
          golden,
        },
        repo.signers,
        T0,
      ),
    );
  }
  repo.apply(
    await setChannel(
      repo.state,
      { channel: 'stable', model: 'digits', version: '1.1.0', rolloutBp: 5000, previous: '1.0.0' },
      repo.signers,
      T0,
    ),
  );
  files = new Map(
    [...repo.files].filter(([k]) => k.startsWith('metadata/')).map(([k, v]) => [k.slice('metadata/'.length), v]),
  );
  return () => console.log(`protocol fuzz (FUZZ_SEED=${SEED}, ${BUDGET} ms per block): ${JSON.stringify(counts)}`);
});

const roleOf = (file: string): RoleName => file.replace(/^\d+\./, '').replace('.json', '') as RoleName;
/** The files a fresh client reads in one cycle (what an honest refresh fetches, 404s left out). */
async function current(): Promise<string[]> {
  const asked: string[] = [];
  const set = await TrustedSet.fromRoot(repo.rootText());
  await refreshMetadata(
    set,
    async (file) => {
      if (files.has(file)) asked.push(file);
      return files.get(file) ?? null;
    },
    T0,
  );
  return [...asked, '1.root.json'];
}
/** Text of possibly invalid UTF-8, as a store edited behind the client's back could hold. */
const loose = (b: Uint8Array) => new TextDecoder().decode(b);

const fetcherWith =
  (name: string, bytes: Uint8Array): MetadataFetcher =>
  async (file) =>
    file === name ? bytes : (files.get(file) ?? null);

describe('fuzz: repository metadata', () => {
  it('parseMetadata: mutated bytes and JSON of every role are parsed or a METADATA_FORMAT error', async () => {
    const r = rng(SEED);
    const names = await current();
    counts.parse = await forBudget(() => {
      const name = r.pick(names);
      const src = files.get(name)!;
      const bytes = r.next() < 0.5 ? mutateBytes(r, src) : jsonMutant(r, src);
      if (!bytes) return;
      try {
        parseMetadata(roleOf(name), bytes);
      } catch (e) {
        expectTyped(e, ['METADATA_FORMAT'], `parseMetadata(${name})`);
      }
    });
    expect(counts.parse).toBeGreaterThan(100);
  });

  it('refreshMetadata: one mutated file per update cycle is refused with a typed error, and the next honest cycle succeeds', async () => {
    const r = rng(SEED + 1);
    const names = await current();
    const root = repo.rootText();
    let refused = 0;
    counts.refresh = await forBudget(async (i) => {
      const name = r.pick(names);
      const src = files.get(name)!;
      const bytes = r.next() < 0.5 ? mutateBytes(r, src) : jsonMutant(r, src);
      if (!bytes) return;
      const set = await TrustedSet.fromRoot(root);
      try {
        await refreshMetadata(set, fetcherWith(name, bytes), T0);
      } catch (e) {
        refused++;
        expectTyped(e, METADATA_CODES, `refresh with mutated ${name}`);
      }
      // A refused cycle never leaves the set unable to take the honest repository.
      if (i % 8 === 0) {
        await refreshMetadata(set, fetcherWith('', new Uint8Array()), T0);
        expect(set.channels).toBeDefined();
      }
    });
    counts.refreshRefused = refused;
    expect(refused).toBeGreaterThan(0);
  });

  it('re-signed JSON edits of timestamp and root reach past the signatures: typed errors only, and what verifies still resolves a channel', async () => {
    const r = rng(SEED + 2);
    const root = repo.rootText();
    let accepted = 0;
    counts.resigned = await forBudget(async () => {
      const isRoot = r.next() < 0.4;
      const name = isRoot ? '2.root.json' : 'timestamp.json';
      const srcEnv = JSON.parse(fromUtf8(isRoot ? files.get('1.root.json')! : files.get('timestamp.json')!));
      const signed = mutateJson(r, srcEnv.signed) as Record<string, unknown>;
      if (isRoot) signed.version = 2;
      let bytes: Uint8Array;
      try {
        bytes = encodeEnvelope(await signMetadata(signed, isRoot ? repo.keys.root : repo.keys.timestamp));
      } catch {
        return; // Not canonical JSON (a float): a repository cannot sign it, so no client sees it.
      }
      const set = await TrustedSet.fromRoot(root);
      try {
        await refreshMetadata(set, fetcherWith(name, bytes), T0);
        accepted++;
        const d = await decideChannel(set.targets!, set.channels, 'stable', 'digits', 'device-1');
        if (d) releaseOf(set.targets!, 'digits', d.version);
      } catch (e) {
        expectTyped(e, METADATA_CODES, `refresh with re-signed ${name}`);
      }
    });
    expect(accepted).toBeGreaterThan(0);
  });

  it('TrustedSet.restore: a persisted state edited behind the client never throws, and keeps only what verifies', async () => {
    const r = rng(SEED + 3);
    const root = repo.rootText();
    const honest = await TrustedSet.fromRoot(root);
    await refreshMetadata(honest, fetcherWith('', new Uint8Array()), T0);
    const state = honest.state();
    counts.restore = await forBudget(async () => {
      const key = r.pick(['root', 'timestamp', 'snapshot', 'targets', 'channels'] as const);
      const edited = { ...state, [key]: loose(mutateBytes(r, utf8(state[key]!))) };
      try {
        const set = await TrustedSet.restore(root, edited);
        expect(set.root.version).toBe(1);
      } catch (e) {
        // Only a broken shipped root may throw, and that is not what is fuzzed here.
        expectTyped(e, [], `restore with edited ${key}`);
      }
    });
  });
});

describe('fuzz: offline bundles and golden files', () => {
  it('decodeBundle: mutated bundles decode or are a ModelFormatError', async () => {
    const r = rng(SEED + 4);
    const metadata = Object.fromEntries([...files].filter(([k]) => !k.includes('root')));
    const bundle = encodeBundle({
      model: 'digits',
      version: '1.1.0',
      variant: 'fp32',
      metadata,
      files: { 'digits.onnx': Uint8Array.from({ length: 3000 }, (_, i) => i & 255) },
    });
    const headerAt = 'OUTPOST-BUNDLE-1\n'.length;
    counts.bundle = await forBudget(() => {
      let bytes: Uint8Array;
      if (r.next() < 0.3) {
        // The header length field: absurd, negative-looking, just past the end.
        bytes = new Uint8Array(bundle);
        new DataView(bytes.buffer).setUint32(
          headerAt,
          r.pick([0xffffffff, 0x7fffffff, bytes.length, r.int(400)]),
          true,
        );
      } else if (r.next() < 0.5) {
        const len = new DataView(bundle.buffer).getUint32(headerAt, true);
        const header = JSON.parse(fromUtf8(bundle.subarray(headerAt + 4, headerAt + 4 + len)));
        const head = utf8(JSON.stringify(mutateJson(r, header)));
        bytes = new Uint8Array(headerAt + 4 + head.length + bundle.length - (headerAt + 4 + len));
        bytes.set(bundle.subarray(0, headerAt));
        new DataView(bytes.buffer).setUint32(headerAt, head.length, true);
        bytes.set(head, headerAt + 4);
        bytes.set(bundle.subarray(headerAt + 4 + len), headerAt + 4 + head.length);
      } else bytes = mutateBytes(r, bundle);
      try {
        const b = decodeBundle(bytes);
        // What decodes is plain data: a hostile header's `__proto__` or `constructor` entry is an
        // entry like any other, never a prototype, and no name is found that the header lacks.
        for (const map of [b.metadata, b.files]) {
          expect(Object.getPrototypeOf(map)).toBe(null);
          expect(map['constructor']).toBeUndefined();
        }
      } catch (e) {
        expectTyped(e, ['MODEL_FORMAT'], 'decodeBundle');
      }
    });
  });

  it('decodeGolden: mutated golden files decode or are a ModelFormatError', async () => {
    const r = rng(SEED + 5);
    const src = encodeGolden({
      inputs: { x: { type: 'float32', dims: [1, 1, 2, 2], data: Float32Array.of(1, 2, 3, 4) } },
      outputs: { logits: { type: 'float32', dims: [1, 2], data: Float32Array.of(0.5, -0.5) } },
      tolerance: 1e-3,
    });
    counts.golden = await forBudget(() => {
      const bytes = r.next() < 0.6 ? jsonMutant(r, src) : mutateBytes(r, src);
      if (!bytes) return;
      try {
        decodeGolden(bytes);
      } catch (e) {
        expectTyped(e, ['MODEL_FORMAT'], 'decodeGolden');
      }
    });
  });
});

// One deterministic case for each bug the fuzzing above found, so they stay fixed whatever the seed.
describe('fuzz findings, pinned', () => {
  it('a float in an unknown field of timestamp.json is METADATA_FORMAT, not a TypeError from canonical JSON', async () => {
    const env = JSON.parse(fromUtf8(files.get('timestamp.json')!));
    env.signed.x_note = 1.5;
    const bytes = utf8(JSON.stringify(env));
    expect(() => parseMetadata('timestamp', bytes)).toThrow(MetadataError);
    const set = await TrustedSet.fromRoot(repo.rootText());
    await expect(refreshMetadata(set, fetcherWith('timestamp.json', bytes), T0)).rejects.toMatchObject({
      code: 'METADATA_FORMAT',
    });
  });

  it('a signed root v2 whose keys no longer list the timestamp key is taken as a rotation, not a TypeError', async () => {
    const env = JSON.parse(fromUtf8(files.get('1.root.json')!));
    const signed = env.signed;
    signed.version = 2;
    for (const id of signed.roles.timestamp.keyids as string[]) delete signed.keys[id];
    const bytes = encodeEnvelope(await signMetadata(signed, repo.keys.root));
    const set = await TrustedSet.fromRoot(repo.rootText());
    // The timestamp can no longer be verified (its key is gone): a typed refusal.
    await expect(refreshMetadata(set, fetcherWith('2.root.json', bytes), T0)).rejects.toMatchObject({
      code: 'METADATA_SIGNATURE',
    });
    expect(set.root.version).toBe(2);
  });

  it('a bundle header naming a file __proto__ decodes it as an entry, never as the map prototype', () => {
    const head = utf8(
      JSON.stringify({ model: 'digits', version: '1', variant: 'fp32', metadata: [['__proto__', 2]], files: [] }),
    );
    const magic = utf8('OUTPOST-BUNDLE-1\n');
    const bytes = new Uint8Array(magic.length + 4 + head.length + 2);
    bytes.set(magic);
    new DataView(bytes.buffer).setUint32(magic.length, head.length, true);
    bytes.set(head, magic.length + 4);
    bytes.set([1, 2], magic.length + 4 + head.length);
    const b = decodeBundle(bytes);
    expect(Object.getPrototypeOf(b.metadata)).toBe(null);
    expect([...Object.keys(b.metadata)]).toEqual(['__proto__']);
    expect([...b.metadata['__proto__']!]).toEqual([1, 2]);
  });

  it('golden files that are not JSON, or have a null tensor, non-array dims or no base64, are ModelFormatError', () => {
    for (const text of [
      '{"inputs":',
      '{"inputs":{"x":null},"outputs":{},"tolerance":0}',
      '{"inputs":{"x":{"type":"float32","dims":"2","base64":"AAAA"}},"outputs":{},"tolerance":0}',
      '{"inputs":{"x":{"type":"float32","dims":[1]}},"outputs":{},"tolerance":0}',
      '{"inputs":{},"outputs":null,"tolerance":0}',
      'null',
    ]) {
      expect(() => decodeGolden(utf8(text)), text).toThrow(ModelFormatError);
    }
  });
});
