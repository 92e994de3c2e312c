export type { Tensor, TensorType, TensorDataMap, TensorMap } from './tensor.js';
export { TENSOR_TYPES, TENSOR_ARRAY_NAMES } from './tensor.js';
export type {
  BackendId,
  CachedModel,
  CacheUsage,
  Dim,
  LoadedModelInfo,
  LoadProgress,
  LoadTimings,
  GoldenCheck,
  ModelFile,
  ModelFormat,
  ModelSource,
  ModelVariant,
  VariantChoice,
  VariantTrial,
  ValueInfo,
} from './model.js';
export { BACKEND_IDS } from './model.js';
export type { Engine, EngineConfig, EngineSession, ModelBytes } from './engine.js';
export type { BackendAttempt, ErrorCode, MetadataErrorCode, SerializedError } from './errors.js';
export {
  AbortError,
  BackendError,
  DisposedError,
  DownloadError,
  InputError,
  IntegrityError,
  MetadataError,
  ModelFormatError,
  NotCachedError,
  OutpostError,
  ProtocolError,
  QuotaError,
  RunError,
  StorageError,
  TelemetryError,
  UpdateError,
  WorkerError,
  deserializeError,
  serializeError,
} from './errors.js';
export type {
  DownloadPolicy,
  FrameBitmap,
  FramePreprocess,
  FrameRequest,
  FrameResult,
  LoadRequest,
  NamedLoadRequest,
  RepositoryConfig,
  RunRequest,
  RunResult,
  TelemetryConfig,
  BackgroundFailure,
  TelemetryFlushReport,
  TelemetryUpdateEvent,
  UpdateCheck,
  UpdatePlan,
  WorkerApi,
  WorkerConfig,
} from './protocol.js';
export { PROTOCOL_VERSION } from './protocol.js';
