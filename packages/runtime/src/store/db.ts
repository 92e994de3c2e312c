import type { VariantChoice } from '@outpost/core';
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';

/** The model store's IndexedDB database. */
export const DB_NAME = 'outpost-models';
export const DB_VERSION = 2;

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
  /** The variant's id, or '' for a version that has no variants. */
  variant: string;
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

/** The variant chosen for a model version on this device, and what the choice is valid for. */
export interface ChoiceRecord {
  name: string;
  version: string;
  choice: VariantChoice;
}

export interface ModelStoreSchema extends DBSchema {
  models: { key: [string, string, string]; value: ModelRecord };
  chunks: { key: [string, number]; value: ChunkRecord };
  choices: { key: [string, string]; value: ChoiceRecord };
}

export type ModelDB = IDBPDatabase<ModelStoreSchema>;

type UpgradeTx = IDBPTransaction<ModelStoreSchema, StoreNames<ModelStoreSchema>[], 'versionchange'>;

function upgradeToV1(db: ModelDB): void {
  db.createObjectStore('models', { keyPath: ['name', 'version'] });
  db.createObjectStore('chunks', { keyPath: ['blobId', 'index'] });
}

/**
 * v2: a version may be stored as several variants, so the variant joins the key; the chosen
 * variant per version gets its own store. v1 records move over as variant ''.
 */
async function upgradeToV2(db: ModelDB, tx: UpgradeTx): Promise<void> {
  const old = (await tx.objectStore('models').getAll()) as Omit<ModelRecord, 'variant'>[];
  db.deleteObjectStore('models');
  const models = db.createObjectStore('models', { keyPath: ['name', 'version', 'variant'] });
  for (const r of old) await models.put({ ...r, variant: '' });
  db.createObjectStore('choices', { keyPath: ['name', 'version'] });
}

/** Opens (and creates or upgrades) the store's database. */
export function openModelDB(): Promise<ModelDB> {
  return openDB<ModelStoreSchema>(DB_NAME, DB_VERSION, {
    upgrade(db, oldVersion, _newVersion, tx) {
      if (oldVersion < 1) upgradeToV1(db);
      // idb does not wait for an async upgrade; the requests queue on the versionchange
      // transaction, and a failure aborts it, so the open fails and nothing is half-upgraded.
      if (oldVersion < 2) upgradeToV2(db, tx).catch(() => tx.abort());
    },
  });
}
