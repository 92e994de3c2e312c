import pg from 'pg';
import type { TelemetryBatch } from './otlp.js';
import type { IngestResult, RolloutDecision, StorageAdapter } from './storage.js';
import {
  batchRows,
  chunked,
  decisionParams,
  EVENT_COLUMNS,
  INSERT_DECISION,
  POINT_COLUMNS,
  POINTS_PER_STATEMENT,
  TelemetryReads,
  type QueryParams,
} from './relational.js';

/** Options of {@link openPostgresStorage}. */
export interface PostgresStorageOptions {
  /**
   * Connections in this server's pool.
   * @defaultValue 10
   */
  maxConnections?: number;
}

const SCHEMA_VERSION = 2;

/** Schema version 1: the SQLite schema's tables, in PostgreSQL's types (ms as BIGINT). */
export const SCHEMA_V1 = `
CREATE TABLE batches (
  kind TEXT NOT NULL, id TEXT NOT NULL, received_ms BIGINT NOT NULL, rows INTEGER NOT NULL,
  PRIMARY KEY (kind, id)
);
CREATE TABLE devices (
  device_id TEXT PRIMARY KEY, first_seen_ms BIGINT NOT NULL, last_seen_ms BIGINT NOT NULL, batches INTEGER NOT NULL,
  channel TEXT, runtime_version TEXT, browser TEXT, browser_major TEXT, cores DOUBLE PRECISION,
  memory_gb DOUBLE PRECISION, gpu_vendor TEXT
);
CREATE TABLE points (
  id BIGSERIAL PRIMARY KEY, batch_id TEXT NOT NULL, device_id TEXT NOT NULL, channel TEXT,
  metric TEXT NOT NULL, kind TEXT NOT NULL, temporality INTEGER NOT NULL, start_ms BIGINT NOT NULL,
  time_ms BIGINT NOT NULL, model TEXT, version TEXT, variant TEXT, backend TEXT, error_code TEXT, load_kind TEXT,
  tensor TEXT, value DOUBLE PRECISION, count DOUBLE PRECISION, sum DOUBLE PRECISION, bounds TEXT, buckets TEXT
);
CREATE INDEX points_metric_time ON points (metric, time_ms);
CREATE TABLE events (
  id BIGSERIAL PRIMARY KEY, batch_id TEXT NOT NULL, device_id TEXT NOT NULL, channel TEXT,
  name TEXT NOT NULL, time_ms BIGINT NOT NULL, model TEXT, version TEXT, variant TEXT, backend TEXT,
  update_kind TEXT, from_version TEXT, tensor TEXT, psi DOUBLE PRECISION, kl DOUBLE PRECISION, error_code TEXT,
  attributes TEXT NOT NULL
);
CREATE INDEX events_name_time ON events (name, time_ms);
CREATE TABLE device_models (
  device_id TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, channel TEXT, last_seen_ms BIGINT NOT NULL,
  PRIMARY KEY (device_id, model, version)
);
`;

/** Schema version 2: the rollout controller's decisions, with the figures behind each (JSON). */
const SCHEMA_V2 = `
CREATE TABLE decisions (
  id BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL, channel TEXT NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
  previous TEXT, action TEXT NOT NULL, from_bp INTEGER NOT NULL, to_bp INTEGER NOT NULL, reason TEXT NOT NULL,
  message TEXT NOT NULL, figures TEXT
);
CREATE INDEX decisions_rollout ON decisions (channel, model, time_ms);
`;

const UPSERT_DEVICE = `
INSERT INTO devices (device_id, first_seen_ms, last_seen_ms, batches, channel, runtime_version, browser,
  browser_major, cores, memory_gb, gpu_vendor)
VALUES (@deviceId, @seenMs, @seenMs, 1, @channel, @runtimeVersion, @browser, @browserMajor, @cores, @memoryGb,
  @gpuVendor)
ON CONFLICT (device_id) DO UPDATE SET
  first_seen_ms = LEAST(devices.first_seen_ms, excluded.first_seen_ms),
  last_seen_ms = GREATEST(devices.last_seen_ms, excluded.last_seen_ms),
  batches = devices.batches + 1,
  channel = COALESCE(excluded.channel, devices.channel),
  runtime_version = COALESCE(excluded.runtime_version, devices.runtime_version),
  browser = COALESCE(excluded.browser, devices.browser),
  browser_major = COALESCE(excluded.browser_major, devices.browser_major),
  cores = COALESCE(excluded.cores, devices.cores),
  memory_gb = COALESCE(excluded.memory_gb, devices.memory_gb),
  gpu_vendor = COALESCE(excluded.gpu_vendor, devices.gpu_vendor)`;

const UPSERT_DEVICE_MODEL = `
INSERT INTO device_models (device_id, model, version, channel, last_seen_ms) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (device_id, model, version) DO UPDATE SET
  last_seen_ms = GREATEST(device_models.last_seen_ms, excluded.last_seen_ms),
  channel = COALESCE(excluded.channel, device_models.channel)`;

/** `INSERT INTO <table> (<columns>) VALUES ($1, …), (…)` for `rows` rows. */
function insertRows(table: string, columns: readonly string[], rows: number): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) {
    tuples.push(`(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`);
  }
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`;
}

/** A query with `@name` parameters as PostgreSQL's `$n` ones and their values. */
export function positional(sql: string, params: object): { text: string; values: unknown[] } {
  const names = new Map<string, number>();
  const values: unknown[] = [];
  const text = sql.replace(/@([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
    let n = names.get(name);
    if (n === undefined) {
      if (!(name in params)) throw new Error(`query parameter @${name} has no value`);
      values.push((params as Record<string, unknown>)[name]);
      n = values.length;
      names.set(name, n);
    }
    return `$${n}`;
  });
  return { text, values };
}

/** Deadlock and serialization failures: the transaction is safe to run again. */
const RETRYABLE = new Set(['40P01', '40001']);
const ATTEMPTS = 3;

/** PostgreSQL's type id of BIGINT (pg.types.builtins.INT8). */
const INT8_OID = 20;

/** BIGINT (ms, counts) as numbers: they stay far below 2^53. Every other type as node-postgres parses it. */
function getTypeParser(oid: number, format: 'text' | 'binary' = 'text'): (value: string) => unknown {
  if (oid === INT8_OID) return Number;
  return pg.types.getTypeParser(oid, format) as (value: string) => unknown;
}
const types = { getTypeParser };

/** The PostgreSQL storage adapter: several servers behind a load balancer share one database. */
class PostgresStorage extends TelemetryReads implements StorageAdapter {
  readonly #pool: pg.Pool;

  constructor(pool: pg.Pool) {
    super(async <R>(sql: string, params: QueryParams | Record<string, never>) => {
      const { text, values } = positional(sql, params);
      return (await pool.query(text, values)).rows as R[];
    });
    this.#pool = pool;
  }

  /**
   * Creates the schema, or upgrades it, once, whichever of the servers starting together gets
   * there first; each upgrade commits whole or not at all.
   */
  async migrate(): Promise<void> {
    await this.#transaction(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtext('outpost-schema'))");
      await c.query('CREATE TABLE IF NOT EXISTS outpost_schema (version INTEGER NOT NULL)');
      const found = (await c.query<{ version: number }>('SELECT version FROM outpost_schema')).rows[0]?.version ?? 0;
      if (found > SCHEMA_VERSION) throw new Error(`schema version ${found} is newer than this server's`);
      if (found < SCHEMA_VERSION) {
        if (found < 1) await c.query(SCHEMA_V1);
        if (found < 2) await c.query(SCHEMA_V2);
        await c.query('DELETE FROM outpost_schema');
        await c.query('INSERT INTO outpost_schema (version) VALUES ($1)', [SCHEMA_VERSION]);
      }
    });
  }

  async #transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.#pool.connect();
      try {
        await c.query('BEGIN');
        const result = await fn(c);
        await c.query('COMMIT');
        return result;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        const code = (err as { code?: string }).code;
        if (attempt < ATTEMPTS && code !== undefined && RETRYABLE.has(code)) continue;
        throw err;
      } finally {
        c.release();
      }
    }
  }

  async ingest(b: TelemetryBatch): Promise<IngestResult> {
    const rows = batchRows(b);
    // Rows are locked in key order, so two batches touching the same devices cannot deadlock.
    rows.devices.sort((x, y) => (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : 0));
    rows.deviceModels.sort((x, y) => (x.join('\u0000') < y.join('\u0000') ? -1 : 1));
    const stored = await this.#transaction(async (c) => {
      // A concurrent insert of the same batch (a retry that reached another server) waits here
      // for the first to commit, then inserts nothing.
      const claimed = await c.query(
        'INSERT INTO batches (kind, id, received_ms, rows) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [b.kind, b.id, b.receivedAtMs, b.points.length + b.events.length],
      );
      if (claimed.rowCount === 0) return false;
      for (const d of rows.devices) {
        const { text, values } = positional(UPSERT_DEVICE, d);
        await c.query(text, values);
      }
      for (const chunk of chunked(rows.points, POINTS_PER_STATEMENT)) {
        await c.query(insertRows('points', POINT_COLUMNS, chunk.length), chunk.flat());
      }
      for (const chunk of chunked(rows.events, POINTS_PER_STATEMENT)) {
        await c.query(insertRows('events', EVENT_COLUMNS, chunk.length), chunk.flat());
      }
      for (const m of rows.deviceModels) await c.query(UPSERT_DEVICE_MODEL, m);
      return true;
    });
    return { stored };
  }

  async addDecision(d: RolloutDecision): Promise<void> {
    const { text, values } = positional(INSERT_DECISION, decisionParams(d));
    await this.#pool.query(text, values);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

/**
 * Connects to PostgreSQL (a `postgres://` URL or node-postgres pool settings) and creates the
 * schema on first use. Each batch is one transaction, so servers behind a load balancer can take
 * retries of one batch at once and store it once.
 */
export async function openPostgresStorage(
  connection: string | pg.PoolConfig,
  options: PostgresStorageOptions = {},
): Promise<StorageAdapter> {
  const config: pg.PoolConfig = typeof connection === 'string' ? { connectionString: connection } : connection;
  const pool = new pg.Pool({ max: options.maxConnections ?? 10, ...config, types });
  // An idle connection the database dropped: the pool replaces it at the next query.
  pool.on('error', () => undefined);
  const storage = new PostgresStorage(pool);
  try {
    await storage.migrate();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  return storage;
}
