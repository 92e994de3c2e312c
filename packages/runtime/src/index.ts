export { createRuntime, resolveThreads, Model, RUNTIME_DEFAULTS } from './main/index.js';
export type { LoadOptions, ModelCache, RunOptions, Runtime, RuntimeOptions } from './main/index.js';
export {
  AbortError,
  BackendError,
  DisposedError,
  DownloadError,
  InputError,
  IntegrityError,
  ModelFormatError,
  NotCachedError,
  OutpostError,
  ProtocolError,
  QuotaError,
  RunError,
  StorageError,
  WorkerError,
  PROTOCOL_VERSION,
} from '@outpost/core';
export type {
  BackendId,
  CachedModel,
  CacheUsage,
  Dim,
  ErrorCode,
  LoadProgress,
  LoadTimings,
  ModelFile,
  ModelSource,
  Tensor,
  TensorMap,
  TensorType,
  ValueInfo,
} from '@outpost/core';
