export { ModelStore, CHUNK_BYTES } from './store.js';
export type { FileToStore, ReadTimings, StoredBytes } from './store.js';
export { DB_NAME, DB_VERSION, openModelDB } from './db.js';
export type { ChunkRecord, ModelDB, ModelRecord, ModelStoreSchema, StoredFile } from './db.js';
export { sha256Hex } from './hash.js';
