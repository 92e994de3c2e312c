import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { EVENT, METRIC } from '@outpost/protocol';
import type { DeviceInfo, TelemetryBatch } from './otlp.js';
import type {
  DeviceRow,
  DriftRow,
  HealthRow,
  IngestResult,
  LatencyRow,
  StorageAdapter,
  TelemetryQuery,
  UpdateRow,
  VersionRow,
} from './storage.js';
import { histogramQuantile } from './storage.js';

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

const SCHEMA_VERSION = 1;
const POINT_COLUMNS = 20;
const POINTS_PER_STATEMENT = 50;

/** Schema version 1. Points keep histogram buckets as JSON: merged per query, never per row. */
const SCHEMA_V1 = `
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

/**
 * Cumulative series (temporality 2) report running totals: only the latest point of each series
 * counts. Delta points and gauges all count.
 */
const LATEST = (cols: string) => `
SELECT ${cols} FROM (
  SELECT *, CASE WHEN temporality = 2 THEN ROW_NUMBER() OVER (
    PARTITION BY device_id, metric, model, version, variant, backend, error_code, load_kind, tensor, start_ms
    ORDER BY time_ms DESC) ELSE 1 END AS rn
  FROM points WHERE metric = @metric AND time_ms >= @sinceMs AND (@model IS NULL OR model = @model)
) WHERE rn = 1`;

const subjectKey = (r: { model: string | null; version: string | null; backend: string | null }) =>
  `${r.model ?? ''}\u0000${r.version ?? ''}\u0000${r.backend ?? ''}`;

const orUndef = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/** The SQLite storage adapter (better-sqlite3, WAL, one transaction per batch). */
class SqliteStorage implements StorageAdapter {
  readonly #db: Database.Database;
  readonly #insertBatch: Database.Statement;
  readonly #upsertDevice: Database.Statement;
  readonly #pointStatements = new Map<number, Database.Statement>();
  readonly #insertEvent: Database.Statement;
  readonly #upsertDeviceModel: Database.Statement;
  readonly #ingest: (batch: TelemetryBatch) => boolean;

  constructor(file: string, options: SqliteStorageOptions) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const db = new Database(file);
    this.#db = db;
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`${file}: schema version ${version} is newer than this server's`);
    if (version < 1) {
      db.transaction(() => {
        db.exec(SCHEMA_V1);
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
    this.#insertEvent = db.prepare(`
      INSERT INTO events (batch_id, device_id, channel, name, time_ms, model, version, variant, backend, update_kind,
        from_version, tensor, psi, kl, error_code, attributes)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#upsertDeviceModel = db.prepare(`
      INSERT INTO device_models (device_id, model, version, channel, last_seen_ms) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT (device_id, model, version) DO UPDATE SET
        last_seen_ms = max(last_seen_ms, excluded.last_seen_ms), channel = coalesce(excluded.channel, channel)`);
    this.#ingest = db.transaction((batch: TelemetryBatch) => this.#write(batch));
  }

  /** `INSERT INTO points` of `rows` rows (prepared once per row count). */
  #pointsStatement(rows: number): Database.Statement {
    let st = this.#pointStatements.get(rows);
    if (!st) {
      const one = `(${new Array<string>(POINT_COLUMNS).fill('?').join(', ')})`;
      st = this.#db.prepare(
        `INSERT INTO points (batch_id, device_id, channel, metric, kind, temporality, start_ms, time_ms, model, version,
          variant, backend, error_code, load_kind, tensor, value, count, sum, bounds, buckets)
         VALUES ${new Array<string>(rows).fill(one).join(', ')}`,
      );
      this.#pointStatements.set(rows, st);
    }
    return st;
  }

  /** Inside the batch's transaction: false (and nothing written) for a batch id seen before. */
  #write(b: TelemetryBatch): boolean {
    const rows = b.points.length + b.events.length;
    if (this.#insertBatch.run(b.kind, b.id, b.receivedAtMs, rows).changes === 0) return false;
    const channels = new Map<string, string | null>();
    const seen = new Map<string, { device: DeviceInfo; seenMs: number }>();
    for (const d of b.devices) {
      channels.set(d.deviceId, d.channel ?? null);
      seen.set(d.deviceId, { device: d, seenMs: b.receivedAtMs });
    }
    for (const { device: d, seenMs } of seen.values()) {
      this.#upsertDevice.run({
        deviceId: d.deviceId,
        seenMs,
        channel: d.channel ?? null,
        runtimeVersion: d.runtimeVersion ?? null,
        browser: d.browser ?? null,
        browserMajor: d.browserMajor ?? null,
        cores: d.cores ?? null,
        memoryGb: d.memoryGb ?? null,
        gpuVendor: d.gpuVendor ?? null,
      });
    }
    // Which version a device runs: the newest time any of its points or activations names it.
    const running = new Map<string, [string, string, string, number]>();
    const runs = (deviceId: string, model?: string, version?: string, timeMs = 0) => {
      if (!model || !version) return;
      const k = `${deviceId}\u0000${model}\u0000${version}`;
      const prev = running.get(k);
      if (!prev || prev[3] < timeMs) running.set(k, [deviceId, model, version, timeMs]);
    };
    // Many rows a statement: per-statement overhead, not SQLite, dominated one row at a time.
    const params: unknown[] = [];
    const flush = () => {
      if (params.length) this.#pointsStatement(params.length / POINT_COLUMNS).run(params);
      params.length = 0;
    };
    for (const p of b.points) {
      params.push(
        b.id,
        p.deviceId,
        channels.get(p.deviceId) ?? null,
        p.metric,
        p.kind,
        p.temporality,
        p.startMs,
        p.timeMs,
        p.model ?? null,
        p.version ?? null,
        p.variant ?? null,
        p.backend ?? null,
        p.errorCode ?? null,
        p.loadKind ?? null,
        p.tensor ?? null,
        p.value ?? null,
        p.count ?? null,
        p.sum ?? null,
        p.bounds ? JSON.stringify(p.bounds) : null,
        p.buckets ? JSON.stringify(p.buckets) : null,
      );
      if (params.length >= POINT_COLUMNS * POINTS_PER_STATEMENT) flush();
      runs(p.deviceId, p.model, p.version, p.timeMs);
    }
    flush();
    for (const e of b.events) {
      this.#insertEvent.run(
        b.id,
        e.deviceId,
        channels.get(e.deviceId) ?? null,
        e.name,
        e.timeMs,
        e.model ?? null,
        e.version ?? null,
        e.variant ?? null,
        e.backend ?? null,
        e.updateKind ?? null,
        e.fromVersion ?? null,
        e.tensor ?? null,
        e.psi ?? null,
        e.kl ?? null,
        e.errorCode ?? null,
        JSON.stringify(e.attributes),
      );
      if (e.name === EVENT.update && e.updateKind === 'activated') runs(e.deviceId, e.model, e.version, e.timeMs);
    }
    for (const [deviceId, model, version, timeMs] of running.values()) {
      this.#upsertDeviceModel.run(deviceId, model, version, channels.get(deviceId) ?? null, timeMs);
    }
    return true;
  }

  async ingest(batch: TelemetryBatch): Promise<IngestResult> {
    return { stored: this.#ingest(batch) };
  }

  async devices(q: TelemetryQuery): Promise<DeviceRow[]> {
    type Row = {
      device_id: string;
      first_seen_ms: number;
      last_seen_ms: number;
      batches: number;
      channel: string | null;
      runtime_version: string | null;
      browser: string | null;
      browser_major: string | null;
      cores: number | null;
      memory_gb: number | null;
      gpu_vendor: string | null;
    };
    const rows = this.#db
      .prepare('SELECT * FROM devices WHERE last_seen_ms >= ? ORDER BY last_seen_ms DESC LIMIT 10000')
      .all(q.sinceMs) as Row[];
    return rows.map((r) => ({
      deviceId: r.device_id,
      firstSeenMs: r.first_seen_ms,
      lastSeenMs: r.last_seen_ms,
      batches: r.batches,
      channel: orUndef(r.channel),
      runtimeVersion: orUndef(r.runtime_version),
      browser: orUndef(r.browser),
      browserMajor: orUndef(r.browser_major),
      cores: orUndef(r.cores),
      memoryGb: orUndef(r.memory_gb),
      gpuVendor: orUndef(r.gpu_vendor),
    }));
  }

  async versions(q: TelemetryQuery): Promise<VersionRow[]> {
    // Each device counts once per model, at the version it was last seen running.
    return this.#db
      .prepare(
        `SELECT channel, model, version, COUNT(*) AS devices FROM (
           SELECT *, ROW_NUMBER() OVER (PARTITION BY device_id, model ORDER BY last_seen_ms DESC) AS rn
           FROM device_models WHERE last_seen_ms >= @sinceMs AND (@model IS NULL OR model = @model)
         ) WHERE rn = 1 GROUP BY channel, model, version ORDER BY channel, model, version`,
      )
      .all({ sinceMs: q.sinceMs, model: q.model ?? null }) as VersionRow[];
  }

  async latency(q: TelemetryQuery): Promise<LatencyRow[]> {
    type Row = {
      model: string | null;
      version: string | null;
      backend: string | null;
      bounds: string | null;
      buckets: string | null;
      count: number | null;
      sum: number | null;
    };
    const rows = this.#db
      .prepare(LATEST('model, version, backend, bounds, buckets, count, sum'))
      .all({ metric: METRIC.runDuration, sinceMs: q.sinceMs, model: q.model ?? null }) as Row[];
    const groups = new Map<string, { row: Row; bounds: number[]; buckets: number[]; count: number; sum: number }>();
    for (const r of rows) {
      const bounds = JSON.parse(r.bounds ?? '[]') as number[];
      const buckets = JSON.parse(r.buckets ?? '[]') as number[];
      // Points with other bounds than their group's first are a different histogram: their own row.
      const key = `${subjectKey(r)}\u0000${r.bounds ?? ''}`;
      const g = groups.get(key);
      if (!g) {
        groups.set(key, { row: r, bounds, buckets: [...buckets], count: r.count ?? 0, sum: r.sum ?? 0 });
        continue;
      }
      buckets.forEach((c, i) => (g.buckets[i] = (g.buckets[i] ?? 0) + c));
      g.count += r.count ?? 0;
      g.sum += r.sum ?? 0;
    }
    return [...groups.values()].map((g) => ({
      model: orUndef(g.row.model),
      version: orUndef(g.row.version),
      backend: orUndef(g.row.backend),
      runs: g.count,
      p50: histogramQuantile(g.bounds, g.buckets, 0.5),
      p95: histogramQuantile(g.bounds, g.buckets, 0.95),
      p99: histogramQuantile(g.bounds, g.buckets, 0.99),
      mean: g.count > 0 ? g.sum / g.count : null,
    }));
  }

  async health(q: TelemetryQuery): Promise<HealthRow[]> {
    type Row = {
      model: string | null;
      version: string | null;
      backend: string | null;
      error_code: string | null;
      total: number;
    };
    const sums = (metric: string) =>
      this.#db
        .prepare(
          `SELECT model, version, backend, error_code, SUM(value) AS total FROM (${LATEST('*')})
           GROUP BY model, version, backend, error_code`,
        )
        .all({ metric, sinceMs: q.sinceMs, model: q.model ?? null }) as Row[];
    const out = new Map<string, HealthRow>();
    const row = (r: Row) => {
      const key = subjectKey(r);
      let h = out.get(key);
      if (!h) {
        h = {
          model: orUndef(r.model),
          version: orUndef(r.version),
          backend: orUndef(r.backend),
          runs: 0,
          errors: 0,
          errorRate: null,
          errorsByCode: {},
          fallbacks: 0,
        };
        out.set(key, h);
      }
      return h;
    };
    for (const r of sums(METRIC.runs)) row(r).runs += r.total;
    for (const r of sums(METRIC.errors)) {
      const h = row(r);
      h.errors += r.total;
      const code = r.error_code ?? 'UNKNOWN';
      h.errorsByCode[code] = (h.errorsByCode[code] ?? 0) + r.total;
    }
    for (const r of sums(METRIC.fallbacks)) row(r).fallbacks += r.total;
    for (const h of out.values()) h.errorRate = h.runs + h.errors > 0 ? h.errors / (h.runs + h.errors) : null;
    return [...out.values()];
  }

  async updates(q: TelemetryQuery): Promise<UpdateRow[]> {
    type Row = { model: string | null; version: string | null; update_kind: string | null; n: number; devices: number };
    const rows = this.#db
      .prepare(
        `SELECT model, version, update_kind, COUNT(*) AS n, COUNT(DISTINCT device_id) AS devices FROM events
         WHERE name = @name AND time_ms >= @sinceMs AND (@model IS NULL OR model = @model)
         GROUP BY model, version, update_kind ORDER BY model, version`,
      )
      .all({ name: EVENT.update, sinceMs: q.sinceMs, model: q.model ?? null }) as Row[];
    const out = new Map<string, UpdateRow>();
    for (const r of rows) {
      const key = `${r.model ?? ''}\u0000${r.version ?? ''}`;
      let u = out.get(key);
      if (!u) {
        u = { model: r.model, version: r.version, events: {}, devices: 0, rollbackRate: null };
        out.set(key, u);
      }
      u.events[r.update_kind ?? 'unknown'] = r.n;
      u.devices = Math.max(u.devices, r.devices);
    }
    for (const u of out.values()) {
      const activated = u.events['activated'] ?? 0;
      u.rollbackRate = activated > 0 ? (u.events['rolled-back'] ?? 0) / activated : null;
    }
    return [...out.values()];
  }

  async drift(q: TelemetryQuery): Promise<DriftRow[]> {
    type Row = {
      device_id: string;
      time_ms: number;
      model: string | null;
      version: string | null;
      variant: string | null;
      backend: string | null;
      tensor: string | null;
      psi: number | null;
      kl: number | null;
      attributes: string;
    };
    const rows = this.#db
      .prepare(
        `SELECT * FROM events WHERE name = @name AND time_ms >= @sinceMs AND (@model IS NULL OR model = @model)
         ORDER BY time_ms DESC LIMIT 1000`,
      )
      .all({ name: EVENT.drift, sinceMs: q.sinceMs, model: q.model ?? null }) as Row[];
    return rows.map((r) => ({
      deviceId: r.device_id,
      timeMs: r.time_ms,
      model: orUndef(r.model),
      version: orUndef(r.version),
      variant: orUndef(r.variant),
      backend: orUndef(r.backend),
      tensor: r.tensor,
      psi: r.psi,
      kl: r.kl,
      attributes: JSON.parse(r.attributes) as DriftRow['attributes'],
    }));
  }

  async batchCount(): Promise<{ metrics: number; logs: number }> {
    const rows = this.#db.prepare('SELECT kind, COUNT(*) AS n FROM batches GROUP BY kind').all() as {
      kind: string;
      n: number;
    }[];
    const n = (k: string) => rows.find((r) => r.kind === k)?.n ?? 0;
    return { metrics: n('metrics'), logs: n('logs') };
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
