export { tfjsEngine } from './engine.js';
export { fromTfOutput, toDims, toTensorType, toTfInput } from './tensors.js';
export type { TfDataType } from './tensors.js';
export { looksLikeTfjs, modelKind, parseModelJson, shardFiles, shardPaths } from './tfjs-format.js';
export type { TfjsModelJson, TfjsModelKind } from './tfjs-format.js';
