import { openDB, type DBSchema, type IDBPDatabase } from 'idb';

/** The model store's IndexedDB database. */
export const DB_NAME = 'outpost-models';
export const DB_VERSION = 1;

/** One file of a stored model version. Its bytes live in `chunks` under `blobId`. */
export interface StoredFile {
  path: string;
  bytes: number;
  /** Lower-case hex SHA-256 of the whole file, checked on every read. */
  sha256: string;
  /** Key prefix of this file's chunks; fresh for every write, so a rewrite never mixes chunks. */
  blobId: string;
  chunks: number;
}

/** A stored model version. Written in the same transaction as all its chunks. */
export interface ModelRecord {
  name: string;
  version: string;
  files: StoredFile[];
  bytes: number;
  storedAt: number;
  lastUsedAt: number;
}

/** A slice of a file's bytes. */
export interface ChunkRecord {
  blobId: string;
  index: number;
  data: ArrayBuffer;
}

export interface ModelStoreSchema extends DBSchema {
  models: { key: [string, string]; value: ModelRecord };
  chunks: { key: [string, number]; value: ChunkRecord };
}

export type ModelDB = IDBPDatabase<ModelStoreSchema>;

function upgradeToV1(db: ModelDB): void {
  db.createObjectStore('models', { keyPath: ['name', 'version'] });
  db.createObjectStore('chunks', { keyPath: ['blobId', 'index'] });
}

/** Opens (and creates or upgrades) the store's database. */
export function openModelDB(): Promise<ModelDB> {
  return openDB<ModelStoreSchema>(DB_NAME, DB_VERSION, {
    upgrade(db, oldVersion) {
      if (oldVersion < 1) upgradeToV1(db);
    },
  });
}
