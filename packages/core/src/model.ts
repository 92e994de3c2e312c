import type { TensorMap, TensorType } from './tensor.js';

/** One file of a model: the graph itself or an ONNX external-data file. */
export interface ModelFile {
  /** Path the graph refers to this file by (for external data), or the graph's own name. */
  path: string;
  /** Where to download it from (absolute, or relative to the page). */
  url: string;
  /** Lower-case hex SHA-256 of the whole file; checked after download when given. */
  sha256?: string;
  /** Declared length in bytes; a download that goes past it is cut off at once (U2). */
  bytes?: number;
  /**
   * SHA-256 of each `size`-byte slice, from signed repository metadata. With it (and `bytes`
   * and `sha256`), the download is checked slice by slice as it arrives, persisted as it goes,
   * and resumed with a Range request after a cut or a reload.
   */
  chunks?: { size: number; sha256: string[] };
}

/** Model file formats the runtime's engines read. */
export type ModelFormat = 'onnx' | 'tfjs';

/**
 * Where a model comes from. Either one `url` (a single-file model, or a TF.js `model.json` whose
 * weight shards the engine finds itself) or `files`, whose first entry is the graph and the rest
 * its external data or weight shards.
 */
export interface ModelSource {
  name: string;
  version: string;
  url?: string;
  sha256?: string;
  files?: ModelFile[];
  /**
   * The file format. Engines recognise their own files, so this is only a hint.
   * @defaultValue found from the bytes
   */
  format?: ModelFormat;
  /**
   * Alternative builds of this version (fp32, INT8 QDQ for WASM, weight-only INT8 for WebGPU…).
   * When given, the runtime picks the one that is fastest and correct on this device; `url` and
   * `files` are then not used.
   */
  variants?: ModelVariant[];
  /** Known-good inputs and outputs: a variant whose outputs differ by more than `tolerance` loses. */
  golden?: GoldenCheck;
}

/** One build of a model version. */
export interface ModelVariant {
  /** Stable name, e.g. `onnx-int8-qdq`. */
  id: string;
  /** The graph first, then its external data or weight shards. */
  files: ModelFile[];
  format?: ModelFormat;
  /**
   * Backends this build is meant for.
   * @defaultValue every backend
   */
  backends?: BackendId[];
  /** WebGPU adapter features it needs (`shader-f16`); such a variant runs only on WebGPU. */
  requires?: string[];
}

/** Inputs with their expected outputs, compared element-wise by max absolute difference. */
export interface GoldenCheck {
  inputs: TensorMap;
  outputs: TensorMap;
  tolerance: number;
}

/** How one variant fared on one backend when the runtime chose among variants. */
export interface VariantTrial {
  variant: string;
  backend: BackendId;
  /** Median of the timed runs, when it got that far. */
  medianMs?: number;
  /** Largest absolute difference from the golden outputs, when a golden check ran. */
  maxAbsDiff?: number;
  ok: boolean;
  /** Why it lost or was not tried. */
  reason?: string;
}

/** The variant the runtime chose for this device, and the figures behind the choice. */
export interface VariantChoice {
  variant: string;
  backend: BackendId;
  trials: VariantTrial[];
  /** What the choice is valid for: browser major version, GPU adapter, engine versions. */
  deviceKey: string;
  /** Epoch milliseconds. */
  decidedAt: number;
  /** True when this load reused a choice made earlier on this device. */
  cached: boolean;
}

/** A dimension: a fixed size, a symbolic name, or `null` when the model leaves it unknown. */
export type Dim = number | string | null;

/** A model input or output as the model declares it. */
export interface ValueInfo {
  name: string;
  type: TensorType;
  dims: Dim[];
}

/** A backend: where the tensors are computed. */
export type BackendId = 'webgpu' | 'wasm';

/** Every backend id, in default preference order. */
export const BACKEND_IDS: readonly BackendId[] = ['webgpu', 'wasm'];

/** What the worker reports once a model is loaded. */
export interface LoadedModelInfo {
  /** Handle the worker uses for this session. */
  id: number;
  name: string;
  version: string;
  backend: BackendId;
  /** Why a preferred backend was not used, when one was passed over. */
  fallbackReason?: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Where the bytes came from. */
  source: 'network' | 'cache';
  /** Milliseconds spent in each step of the load. */
  timings: LoadTimings;
  /** The variant in use, when the source listed variants. */
  variant?: string;
  /** How the variant was chosen. */
  choice?: VariantChoice;
}

/** Milliseconds spent in each step of `load`. Steps that did not happen are absent. */
export interface LoadTimings {
  download?: number;
  read?: number;
  verify?: number;
  write?: number;
  backendInit?: number;
  sessionCreate?: number;
  probe?: number;
  total: number;
}

/** A stored model version, as `cache.list()` reports it. */
export interface CachedModel {
  name: string;
  version: string;
  /** The variant stored, for versions loaded from a list of variants. */
  variant?: string;
  bytes: number;
  /** SHA-256 of the graph file (the first file). */
  sha256: string;
  /** Epoch milliseconds. */
  storedAt: number;
  /** Epoch milliseconds. */
  lastUsedAt: number;
}

/** Storage used by the model store and the origin's quota. */
export interface CacheUsage {
  bytes: number;
  quota: number | null;
}

/** Download progress of a load, in bytes over all files. */
export interface LoadProgress {
  loaded: number;
  total: number | null;
}
