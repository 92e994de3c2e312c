import type { VariantChoice } from '@outpost/core';
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';

/** The model store's IndexedDB database. */
export const DB_NAME = 'outpost-models';
export const DB_VERSION = 3;

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

/** Which version of a model (from a repository) is live on this device. */
export interface ActiveRecord {
  name: string;
  version: string;
  /** The version that was active before, kept for an instant switch back. */
  previous?: string;
  activatedAt: number;
}

/** A version that failed its health check here: never installed again. */
export interface BadRecord {
  name: string;
  version: string;
  reason: string;
  at: number;
}

/** Verified repository metadata (TUF's trusted set) per repository URL: the highest versions seen. */
export interface TrustRecord {
  url: string;
  /** Raw metadata text per role, re-verified on every read. */
  state: { root: string; timestamp?: string; snapshot?: string; targets?: string; channels?: string };
  savedAt: number;
}

/**
 * A download in progress, so it resumes with a Range request after a cut or a reload (U11).
 * Its bytes are `chunks` under blobId `partial:<sha256>`, one record per piece as it arrived.
 */
export interface PartialRecord {
  /** The signed SHA-256 of the whole file: the content address, and the key. */
  sha256: string;
  url: string;
  length: number;
  /** The server's ETag for the bytes so far; a different one means start again. */
  etag: string | null;
  received: number;
  pieces: number;
  updatedAt: number;
}

export interface ModelStoreSchema extends DBSchema {
  models: { key: [string, string, string]; value: ModelRecord };
  chunks: { key: [string, number]; value: ChunkRecord };
  choices: { key: [string, string]; value: ChoiceRecord };
  active: { key: string; value: ActiveRecord };
  bad: { key: [string, string]; value: BadRecord };
  trust: { key: string; value: TrustRecord };
  partials: { key: string; value: PartialRecord };
  /** Small device-local settings, such as the random rollout id. */
  meta: { key: string; value: { key: string; value: string } };
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

/**
 * v3: over-the-air updates: the active version per model, bad versions, trusted metadata,
 * downloads in progress.
 */
function upgradeToV3(db: ModelDB): void {
  db.createObjectStore('partials', { keyPath: 'sha256' });
  db.createObjectStore('active', { keyPath: 'name' });
  db.createObjectStore('bad', { keyPath: ['name', 'version'] });
  db.createObjectStore('trust', { keyPath: 'url' });
  db.createObjectStore('meta', { keyPath: 'key' });
}

/**
 * Opens (and creates or upgrades) the store's database. `onClose` is called when the connection
 * is lost (the browser closed it: site data cleared, the backend failed) or let go because
 * another context wants a newer version (S4); the caller opens afresh at its next use.
 */
export function openModelDB(onClose: () => void = () => undefined): Promise<ModelDB> {
  const db = openDB<ModelStoreSchema>(DB_NAME, DB_VERSION, {
    upgrade(db, version, _newVersion, tx) {
      // A database of the name created empty by other code (a bare `indexedDB.open`) starts from nothing.
      const oldVersion = db.objectStoreNames.contains('models') ? version : 0;
      if (oldVersion < 1) upgradeToV1(db);
      // idb does not wait for an async upgrade; the requests queue on the versionchange
      // transaction, and a failure aborts it, so the open fails and nothing is half-upgraded.
      if (oldVersion < 2) upgradeToV2(db, tx).catch(() => tx.abort());
      if (oldVersion < 3) upgradeToV3(db);
    },
    // Another tab opens a newer version: holding on would block its upgrade for good.
    blocking() {
      void db.then((d) => d.close());
      onClose();
    },
    terminated: onClose,
  });
  return db;
}
