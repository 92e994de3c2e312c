export { ModelStore, CHUNK_BYTES, MODEL_STORE_DEFAULTS } from './store.js';
export type { FileToStore, ModelStoreOptions, ReadTimings, StoredBytes } from './store.js';
export { PartialDownloads } from './partials.js';
export { UpdateState } from './update-state.js';
export { DB_NAME, DB_VERSION, openModelDB } from './db.js';
export type {
  ActiveRecord,
  BadRecord,
  ChunkRecord,
  ModelDB,
  ModelRecord,
  ModelStoreSchema,
  PartialRecord,
  StoredFile,
  TrustRecord,
} from './db.js';
export { sha256Hex } from './hash.js';
export { TELEMETRY_DB_NAME, TelemetryQueue, openTelemetryDB, utf8Length } from './telemetry-queue.js';
export type { AsideBatch, QueuedBatch, TelemetryDB, TelemetrySchema, TelemetrySignal } from './telemetry-queue.js';
