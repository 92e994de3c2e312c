import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openPostgresStorage } from '../postgres.js';
import { openSqliteStorage } from '../sqlite.js';
import type { StorageAdapter } from '../storage.js';
import { startPostgres, type PostgresForTests } from './postgres-cluster.js';

/** The storage engines the telemetry and rollout tests run against, each test once per engine. */
export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

/** Stores for the tests of one file: see {@link testStorages}. */
export interface TestStorages {
  /** A new, empty store: a SQLite file in `dir`, or a new database on the file's PostgreSQL server. */
  open(engine: Engine, dir: string): Promise<StorageAdapter>;
  /** A new, empty database on the file's PostgreSQL server, as a connection URL. */
  postgresDatabase(): Promise<string>;
}

/**
 * Call at the top level of a test file. Its PostgreSQL server (testing/postgres-cluster.ts) starts
 * with the first test that asks for it, so SQLite-only runs never start one, and is stopped after
 * the file's tests (the `afterAll` this registers).
 */
export function testStorages(): TestStorages {
  let postgres: Promise<PostgresForTests> | undefined;
  afterAll(async () => (await postgres)?.stop());
  const postgresDatabase = async () => (await (postgres ??= startPostgres())).createDatabase();
  return {
    async open(engine, dir) {
      if (engine === 'sqlite') return openSqliteStorage(join(dir, 'data/outpost.db'));
      return openPostgresStorage(await postgresDatabase());
    },
    postgresDatabase,
  };
}
