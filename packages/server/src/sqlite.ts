import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { TelemetryBatch } from './otlp.js';
import {
  batchRows,
  chunked,
  decisionParams,
  EVENT_COLUMNS,
  INSERT_DECISION,
  POINT_COLUMNS,
  POINTS_PER_STATEMENT,
  TelemetryReads,
} from './relational.js';
import type { IngestResult, RolloutDecision, StorageAdapter } from './storage.js';

/** Options of {@link openSqliteStorage}. */
export interface SqliteStorageOptions {
  /**
   * `normal` (WAL's usual setting) survives a killed server with every acknowledged batch; `full`
   * also survives power loss, at the cost of an fsync per batch.
   * @defaultValue 'normal'
   */
  synchronous?: 'normal' | 'full';
}

/** The default database file, relative to the working folder. */
export const DEFAULT_DATABASE = './outpost-data/outpost.db';

const SCHEMA_VERSION = 2;

/** Schema version 1. Points keep histogram buckets as JSON: merged per query, never per row. */
export const SCHEMA_V1 = `
CREATE TABLE batches (
  kind TEXT NOT NULL, id TEXT NOT NULL, received_ms INTEGER NOT NULL, rows INTEGER NOT NULL,
  PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE devices (
  device_id TEXT PRIMARY KEY, first_seen_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL, batches INTEGER NOT NULL,
  channel TEXT, runtime_version TEXT, browser TEXT, browser_major TEXT, cores REAL, memory_gb REAL, gpu_vendor TEXT
);
CREATE TABLE points (
  id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, device_id TEXT NOT NULL, channel TEXT,
  metric TEXT NOT NULL, kind TEXT NOT NULL, temporality INTEGER NOT NULL, start_ms INTEGER NOT NULL, time_ms INTEGER NOT NULL,
  model TEXT, version TEXT, variant TEXT, backend TEXT, error_code TEXT, load_kind TEXT, tensor TEXT,
  value REAL, count REAL, sum REAL, bounds TEXT, buckets TEXT
);
CREATE INDEX points_metric_time ON points (metric, time_ms);
CREATE TABLE events (
  id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, device_id TEXT NOT NULL, channel TEXT,
  name TEXT NOT NULL, time_ms INTEGER NOT NULL, model TEXT, version TEXT, variant TEXT, backend TEXT,
  update_kind TEXT, from_version TEXT, tensor TEXT, psi REAL, kl REAL, error_code TEXT, attributes TEXT NOT NULL
);
CREATE INDEX events_name_time ON events (name, time_ms);
CREATE TABLE device_models (
  device_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, channel TEXT, last_seen_ms INTEGER NOT NULL,
  PRIMARY KEY (device_id, model, version)
) WITHOUT ROWID;
`;

/** Schema version 2: the rollout controller's decisions, with the figures behind each (JSON). */
const SCHEMA_V2 = `
CREATE TABLE decisions (
  id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, channel TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
  previous TEXT, action TEXT NOT NULL, from_bp INTEGER NOT NULL, to_bp INTEGER NOT NULL, reason TEXT NOT NULL,
  message TEXT NOT NULL, figures TEXT
);
CREATE INDEX decisions_rollout ON decisions (channel, model, time_ms);
`;

/** The SQLite storage adapter (better-sqlite3, WAL, one transaction per batch). */
class SqliteStorage extends TelemetryReads implements StorageAdapter {
  readonly #db: Database.Database;
  readonly #insertBatch: Database.Statement;
  readonly #upsertDevice: Database.Statement;
  readonly #pointStatements = new Map<number, Database.Statement>();
  readonly #insertEvent: Database.Statement;
  readonly #upsertDeviceModel: Database.Statement;
  readonly #insertDecision: Database.Statement;
  readonly #ingest: (batch: TelemetryBatch) => boolean;

  constructor(file: string, options: SqliteStorageOptions) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    super(async <R>(sql: string, params: object) => db.prepare(sql).all(params) as R[]);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`${file}: schema version ${version} is newer than this server's`);
    // One transaction per upgrade: a database is at version 1 or 2, never half-way.
    if (version < SCHEMA_VERSION) {
      db.transaction(() => {
        if (version < 1) db.exec(SCHEMA_V1);
        if (version < 2) db.exec(SCHEMA_V2);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      })();
    }
    this.#insertBatch = db.prepare(
      'INSERT INTO batches (kind, id, received_ms, rows) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#upsertDevice = db.prepare(`
      INSERT INTO devices (device_id, first_seen_ms, last_seen_ms, batches, channel, runtime_version, browser,
        browser_major, cores, memory_gb, gpu_vendor)
      VALUES (@deviceId, @seenMs, @seenMs, 1, @channel, @runtimeVersion, @browser, @browserMajor, @cores, @memoryGb,
        @gpuVendor)
      ON CONFLICT (device_id) DO UPDATE SET
        first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
        last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
        batches = batches + 1,
        channel = coalesce(excluded.channel, channel),
        runtime_version = coalesce(excluded.runtime_version, runtime_version),
        browser = coalesce(excluded.browser, browser),
        browser_major = coalesce(excluded.browser_major, browser_major),
        cores = coalesce(excluded.cores, cores),
        memory_gb = coalesce(excluded.memory_gb, memory_gb),
        gpu_vendor = coalesce(excluded.gpu_vendor, gpu_vendor)`);
    this.#insertEvent = db.prepare(
      `INSERT INTO events (${EVENT_COLUMNS.join(', ')}) VALUES (${EVENT_COLUMNS.map(() => '?').join(', ')})`,
    );
    this.#upsertDeviceModel = db.prepare(`
      INSERT INTO device_models (device_id, model, version, channel, last_seen_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (device_id, model, version) DO UPDATE SET
        last_seen_ms = max(last_seen_ms, excluded.last_seen_ms), channel = coalesce(excluded.channel, channel)`);
    this.#insertDecision = db.prepare(INSERT_DECISION);
    this.#ingest = db.transaction((batch: TelemetryBatch) => this.#write(batch));
  }

  /** `INSERT INTO points` of `rows` rows (prepared once per row count). */
  #pointsStatement(rows: number): Database.Statement {
    let st = this.#pointStatements.get(rows);
    if (!st) {
      const one = `(${POINT_COLUMNS.map(() => '?').join(', ')})`;
      st = this.#db.prepare(
        `INSERT INTO points (${POINT_COLUMNS.join(', ')}) VALUES ${new Array<string>(rows).fill(one).join(', ')}`,
      );
      this.#pointStatements.set(rows, st);
    }
    return st;
  }

  /** Inside the batch's transaction: false (and nothing written) for a batch id seen before. */
  #write(b: TelemetryBatch): boolean {
    const rows = batchRows(b);
    if (this.#insertBatch.run(b.kind, b.id, b.receivedAtMs, b.points.length + b.events.length).changes === 0) {
      return false;
    }
    for (const d of rows.devices) this.#upsertDevice.run(d);
    for (const chunk of chunked(rows.points, POINTS_PER_STATEMENT)) {
      this.#pointsStatement(chunk.length).run(chunk.flat());
    }
    for (const e of rows.events) this.#insertEvent.run(e);
    for (const m of rows.deviceModels) this.#upsertDeviceModel.run(m);
    return true;
  }

  async ingest(batch: TelemetryBatch): Promise<IngestResult> {
    return { stored: this.#ingest(batch) };
  }

  async addDecision(d: RolloutDecision): Promise<void> {
    this.#insertDecision.run(decisionParams(d));
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close();
  }
}

/**
 * Opens (creating the file, its folder and the schema on first use) a SQLite telemetry store.
 * WAL lets the dashboard read while batches are written; each batch is one transaction.
 */
export function openSqliteStorage(file: string = DEFAULT_DATABASE, options: SqliteStorageOptions = {}): StorageAdapter {
  return new SqliteStorage(file, options);
}
