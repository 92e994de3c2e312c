import { ModelFormatError, type ModelFile } from '@outpost/core';

/** The parts of a TF.js `model.json` Outpost reads (tfjs-core's `ModelJSON`, loosely typed). */
export interface TfjsModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: Record<string, unknown>;
  weightsManifest?: { paths: string[]; weights: unknown[] }[];
  [key: string]: unknown;
}

/** Which TF.js loader reads the model: `loadGraphModel` or `loadLayersModel`. */
export type TfjsModelKind = 'graph' | 'layers';

const OPEN_BRACE = 0x7b;
const decoder = new TextDecoder();

/** The first byte that is not JSON whitespace. */
function firstNonSpace(bytes: Uint8Array): number | undefined {
  for (const b of bytes)
    if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09 && b !== 0xef && b !== 0xbb && b !== 0xbf) return b;
  return undefined;
}

/**
 * Parses a TF.js `model.json`, or returns `undefined` when the bytes are not one. Anything that
 * does not start with `{` is rejected before decoding, so an ONNX protobuf costs one byte.
 */
export function parseModelJson(bytes: Uint8Array): TfjsModelJson | undefined {
  if (firstNonSpace(bytes.subarray(0, 64)) !== OPEN_BRACE) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const m = json as Partial<TfjsModelJson>;
  if (typeof m.modelTopology !== 'object' || m.modelTopology === null) return undefined;
  if (m.weightsManifest !== undefined && !Array.isArray(m.weightsManifest)) return undefined;
  return m as TfjsModelJson;
}

/** Whether the bytes are a TF.js `model.json` (JSON with `modelTopology`). */
export function looksLikeTfjs(bytes: Uint8Array): boolean {
  return parseModelJson(bytes) !== undefined;
}

/**
 * Graph model or layers model: the converter writes `format`, and older files without it are
 * told apart by their topology (a GraphDef has `node`, a Keras config `class_name`).
 */
export function modelKind(json: TfjsModelJson): TfjsModelKind {
  if (json.format === 'graph-model') return 'graph';
  if (json.format === 'layers-model') return 'layers';
  const topology = json.modelTopology;
  if (Array.isArray(topology['node'])) return 'graph';
  if ('class_name' in topology || 'model_config' in topology) return 'layers';
  throw new ModelFormatError(
    `model.json has format ${JSON.stringify(json.format)}, neither a graph nor a layers model`,
  );
}

/** The weight shard paths of a model.json, in manifest order, each once. */
export function shardPaths(json: TfjsModelJson): string[] {
  const paths: string[] = [];
  for (const group of json.weightsManifest ?? []) {
    if (!Array.isArray(group.paths)) throw new ModelFormatError('model.json weightsManifest group has no paths');
    for (const p of group.paths) {
      if (typeof p !== 'string' || p === '') throw new ModelFormatError('model.json lists an empty weight path');
      if (!paths.includes(p)) paths.push(p);
    }
  }
  return paths;
}

/** The weight shards a model.json names, as files to download beside it (URLs resolved against it). */
export function shardFiles(graph: Uint8Array, graphUrl: string): ModelFile[] {
  const json = parseModelJson(graph);
  if (!json) return [];
  return shardPaths(json).map((path) => ({ path, url: new URL(path, graphUrl).href }));
}

interface SignatureTensor {
  name?: string;
  tensorShape?: { dim?: { size?: string | number }[]; unknownRank?: boolean };
}

/**
 * The shape the converter's `signature` declares for a graph model's input or output (`name`
 * as TF.js reports it, without `:0`), with -1 for unknown sizes; `undefined` when not declared.
 */
export function signatureShape(json: TfjsModelJson, side: 'inputs' | 'outputs', name: string): number[] | undefined {
  const sig = json['signature'] as Record<string, Record<string, SignatureTensor> | undefined> | undefined;
  const entries = sig?.[side];
  if (!entries) return undefined;
  const entry =
    entries[name] ?? entries[`${name}:0`] ?? Object.values(entries).find((e) => e.name?.split(':')[0] === name);
  const shape = entry?.tensorShape;
  if (!shape || shape.unknownRank) return undefined;
  return (shape.dim ?? []).map((d) => Number(d.size ?? -1));
}
