import { EVENT, METRIC, SHADOW_METRIC_PREFIX } from '@outpost/protocol';
import type { DeviceInfo, TelemetryBatch } from './otlp.js';
import type {
  DecisionQuery,
  DeviceFigures,
  DeviceFiguresQuery,
  DeviceRow,
  DriftRow,
  HealthRow,
  LatencyRow,
  RolloutAction,
  RolloutDecision,
  RolloutFigures,
  TelemetryQuery,
  UpdateRow,
  VersionFigures,
  VersionRow,
} from './storage.js';
import { histogramQuantile } from './storage.js';

// What the SQL storage adapters (SQLite, PostgreSQL) share: the tables' columns, the rows a batch
// becomes, the dashboard's queries (named parameters, `@name`, in SQL both engines run), and how
// their rows become the API's answers. Each adapter keeps only its connection, DDL and upserts.

/** Columns of `points`, in the order {@link batchRows} fills them. */
export const POINT_COLUMNS = [
  'batch_id',
  'device_id',
  'channel',
  'metric',
  'kind',
  'temporality',
  'start_ms',
  'time_ms',
  'model',
  'version',
  'variant',
  'backend',
  'error_code',
  'load_kind',
  'tensor',
  'value',
  'count',
  'sum',
  'bounds',
  'buckets',
] as const;

/** Columns of `events`, in the order {@link batchRows} fills them. */
export const EVENT_COLUMNS = [
  'batch_id',
  'device_id',
  'channel',
  'name',
  'time_ms',
  'model',
  'version',
  'variant',
  'backend',
  'update_kind',
  'from_version',
  'tensor',
  'psi',
  'kl',
  'error_code',
  'attributes',
] as const;

/** Points per INSERT: per-statement overhead, not the database, dominated one row at a time. */
export const POINTS_PER_STATEMENT = 50;

/** A device's row as the upsert takes it (named parameters). */
export interface DeviceParams {
  deviceId: string;
  seenMs: number;
  channel: string | null;
  runtimeVersion: string | null;
  browser: string | null;
  browserMajor: string | null;
  cores: number | null;
  memoryGb: number | null;
  gpuVendor: string | null;
}

/** Everything one batch writes, as plain parameter rows. */
export interface BatchRows {
  devices: DeviceParams[];
  /** One array per point, in {@link POINT_COLUMNS} order. */
  points: unknown[][];
  /** One array per event, in {@link EVENT_COLUMNS} order. */
  events: unknown[][];
  /** [device_id, model, version, channel, last_seen_ms]: which version a device was seen running. */
  deviceModels: [string, string, string, string | null, number][];
}

/** The rows a batch becomes. */
export function batchRows(b: TelemetryBatch): BatchRows {
  const channels = new Map<string, string | null>();
  const seen = new Map<string, DeviceInfo>();
  for (const d of b.devices) {
    channels.set(d.deviceId, d.channel ?? null);
    seen.set(d.deviceId, d);
  }
  const devices = [...seen.values()].map((d) => ({
    deviceId: d.deviceId,
    seenMs: b.receivedAtMs,
    channel: d.channel ?? null,
    runtimeVersion: d.runtimeVersion ?? null,
    browser: d.browser ?? null,
    browserMajor: d.browserMajor ?? null,
    cores: d.cores ?? null,
    memoryGb: d.memoryGb ?? null,
    gpuVendor: d.gpuVendor ?? null,
  }));
  // Which version a device runs: the newest time any of its points or activations names it.
  const running = new Map<string, [string, string, string, number]>();
  const runs = (deviceId: string, model?: string, version?: string, timeMs = 0) => {
    if (!model || !version) return;
    const k = `${deviceId}\u0000${model}\u0000${version}`;
    const prev = running.get(k);
    if (!prev || prev[3] < timeMs) running.set(k, [deviceId, model, version, timeMs]);
  };
  const points = b.points.map((p) => {
    // A shadow's figures name the version a device tries, not the one it runs.
    if (!p.metric.startsWith(SHADOW_METRIC_PREFIX)) runs(p.deviceId, p.model, p.version, p.timeMs);
    return [
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
    ];
  });
  const events = b.events.map((e) => {
    if (e.name === EVENT.update && e.updateKind === 'activated') runs(e.deviceId, e.model, e.version, e.timeMs);
    return [
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
    ];
  });
  const deviceModels = [...running.values()].map(
    ([deviceId, model, version, timeMs]) =>
      [deviceId, model, version, channels.get(deviceId) ?? null, timeMs] as [
        string,
        string,
        string,
        string | null,
        number,
      ],
  );
  return { devices, points, events, deviceModels };
}

/** Splits `rows` into runs of at most `size`. */
export function chunked<T>(rows: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size));
  return out;
}

/** Parameters every dashboard query takes. */
export interface QueryParams {
  sinceMs: number;
  model: string | null;
  [name: string]: unknown;
}

export const queryParams = (q: TelemetryQuery, extra: Record<string, unknown> = {}): QueryParams => ({
  sinceMs: q.sinceMs,
  model: q.model ?? null,
  ...extra,
});

/** `@model` matches any model when null. The cast types the parameter for PostgreSQL. */
const MODEL_FILTER = '(CAST(@model AS TEXT) IS NULL OR model = @model)';

/**
 * Cumulative series (temporality 2) report running totals: only the latest point of each series
 * counts. Delta points and gauges all count.
 */
const latest = (cols: string, where = '') => `
SELECT ${cols} FROM (
  SELECT *, CASE WHEN temporality = 2 THEN ROW_NUMBER() OVER (
    PARTITION BY device_id, metric, model, version, variant, backend, error_code, load_kind, tensor, start_ms
    ORDER BY time_ms DESC) ELSE 1 END AS rn
  FROM points WHERE metric = @metric AND time_ms >= @sinceMs AND ${MODEL_FILTER}${where}
) AS p WHERE rn = 1`;

/** One version's points (for the per-device reads). */
const OF_VERSION = ' AND version = @version';

/** The dashboard's queries, with named parameters. */
export const QUERIES = {
  devices: 'SELECT * FROM devices WHERE last_seen_ms >= @sinceMs ORDER BY last_seen_ms DESC LIMIT 10000',
  // Each device counts once per model, at the version it was last seen running.
  versions: `SELECT channel, model, version, COUNT(*) AS devices FROM (
      SELECT *, ROW_NUMBER() OVER (PARTITION BY device_id, model ORDER BY last_seen_ms DESC) AS rn
      FROM device_models WHERE last_seen_ms >= @sinceMs AND ${MODEL_FILTER}
    ) AS d WHERE rn = 1 GROUP BY channel, model, version ORDER BY channel, model, version`,
  latency: latest('model, version, backend, bounds, buckets, count, sum'),
  sums: `SELECT model, version, backend, error_code, SUM(value) AS total FROM (${latest('*')}) AS l
    GROUP BY model, version, backend, error_code`,
  // One version's figures per device: the A/B intervals resample devices, not runs.
  deviceSums: `SELECT device_id, SUM(value) AS total FROM (${latest('*', OF_VERSION)}) AS l GROUP BY device_id`,
  deviceLatency: latest('device_id, bounds, buckets, count', OF_VERSION),
  updates: `SELECT model, version, update_kind, COUNT(*) AS n, COUNT(DISTINCT device_id) AS devices FROM events
    WHERE name = @name AND time_ms >= @sinceMs AND ${MODEL_FILTER}
    GROUP BY model, version, update_kind ORDER BY model, version`,
  drift: `SELECT * FROM events WHERE name = @name AND time_ms >= @sinceMs AND ${MODEL_FILTER}
    ORDER BY time_ms DESC LIMIT 1000`,
  // Every closed drift window's PSI (the gauge), not only the windows that raised an alert.
  driftWindows: `SELECT model, version, COUNT(*) AS n, AVG(value) AS mean FROM points
    WHERE metric = @metric AND time_ms >= @sinceMs AND ${MODEL_FILTER} GROUP BY model, version`,
  batchCount: 'SELECT kind, COUNT(*) AS n FROM batches GROUP BY kind',
  decisions: `SELECT * FROM decisions WHERE time_ms >= @sinceMs
    AND (CAST(@channel AS TEXT) IS NULL OR channel = @channel) AND ${MODEL_FILTER}
    AND (CAST(@version AS TEXT) IS NULL OR version = @version)
    ORDER BY time_ms DESC, id DESC LIMIT @limit`,
} as const;

/** Schema version 2 adds this table (both engines): every rollout decision and its figures (JSON). */
export const DECISION_COLUMNS = [
  'time_ms',
  'channel',
  'model',
  'version',
  'previous',
  'action',
  'from_bp',
  'to_bp',
  'reason',
  'message',
  'figures',
] as const;

/** `INSERT INTO decisions` with named parameters (both engines). */
export const INSERT_DECISION = `INSERT INTO decisions (${DECISION_COLUMNS.join(', ')})
  VALUES (@timeMs, @channel, @model, @version, @previous, @action, @fromBp, @toBp, @reason, @message, @figures)`;

/** A decision as {@link INSERT_DECISION}'s parameters. */
export const decisionParams = (d: RolloutDecision) => ({
  ...d,
  figures: d.figures ? JSON.stringify(d.figures) : null,
});

/** Runs one of {@link QUERIES}: what an adapter provides. */
export type Query = <R>(sql: string, params: QueryParams | Record<string, never>) => Promise<R[]>;

const orUndef = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

const subjectKey = (r: { model: string | null; version: string | null; backend: string | null }) =>
  `${r.model ?? ''}\u0000${r.version ?? ''}\u0000${r.backend ?? ''}`;

/**
 * The dashboard's reads over any SQL engine that runs {@link QUERIES}. Each SQL adapter extends
 * it, passing how its connection runs a query, and adds its own writes (`ingest`, `addDecision`)
 * and `close`.
 */
export abstract class TelemetryReads {
  readonly #query: Query;

  constructor(query: Query) {
    this.#query = query;
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
    const rows = await this.#query<Row>(QUERIES.devices, queryParams(q));
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

  versions(q: TelemetryQuery): Promise<VersionRow[]> {
    return this.#query<VersionRow>(QUERIES.versions, queryParams(q));
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
    const rows = await this.#query<Row>(QUERIES.latency, queryParams(q, { metric: METRIC.runDuration }));
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
    const sums = (metric: string) => this.#query<Row>(QUERIES.sums, queryParams(q, { metric }));
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
    for (const r of await sums(METRIC.runs)) row(r).runs += r.total;
    for (const r of await sums(METRIC.errors)) {
      const h = row(r);
      h.errors += r.total;
      const code = r.error_code ?? 'UNKNOWN';
      h.errorsByCode[code] = (h.errorsByCode[code] ?? 0) + r.total;
    }
    for (const r of await sums(METRIC.fallbacks)) row(r).fallbacks += r.total;
    for (const h of out.values()) h.errorRate = h.runs + h.errors > 0 ? h.errors / (h.runs + h.errors) : null;
    return [...out.values()];
  }

  async updates(q: TelemetryQuery): Promise<UpdateRow[]> {
    type Row = { model: string | null; version: string | null; update_kind: string | null; n: number; devices: number };
    const rows = await this.#query<Row>(QUERIES.updates, queryParams(q, { name: EVENT.update }));
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
    const rows = await this.#query<Row>(QUERIES.drift, queryParams(q, { name: EVENT.drift }));
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

  async versionFigures(q: TelemetryQuery): Promise<VersionFigures[]> {
    const out = new Map<string, VersionFigures>();
    const row = (model: string | null | undefined, version: string | null | undefined) => {
      const key = `${model ?? ''}\u0000${version ?? ''}`;
      let f = out.get(key);
      if (!f) {
        f = {
          model: model ?? '',
          version: version ?? '',
          runs: 0,
          errors: 0,
          timedRuns: 0,
          p95: null,
          driftWindows: 0,
          driftPsiMean: null,
          runHistogram: null,
          shadowRuns: 0,
          shadowAgreementMean: null,
          shadowRatioMean: null,
        };
        out.set(key, f);
      }
      return f;
    };
    for (const h of await this.health(q)) {
      const f = row(h.model, h.version);
      f.runs += h.runs;
      f.errors += h.errors;
    }
    type Hist = { model: string | null; version: string | null; bounds: string | null; buckets: string | null };
    const hists = await this.#query<Hist & { count: number | null }>(
      QUERIES.latency,
      queryParams(q, { metric: METRIC.runDuration }),
    );
    // Backends merged: per version, the histograms sharing the bounds of the most runs.
    const merged = new Map<string, { model: string | null; version: string | null; buckets: number[]; n: number }>();
    for (const r of hists) {
      const key = `${r.model ?? ''}\u0000${r.version ?? ''}\u0000${r.bounds ?? ''}`;
      let m = merged.get(key);
      if (!m) merged.set(key, (m = { model: r.model, version: r.version, buckets: [], n: 0 }));
      (JSON.parse(r.buckets ?? '[]') as number[]).forEach((c, i) => (m.buckets[i] = (m.buckets[i] ?? 0) + c));
      m.n += r.count ?? 0;
    }
    for (const [key, m] of merged) {
      const f = row(m.model, m.version);
      if (m.n <= f.timedRuns) continue;
      f.timedRuns = m.n;
      const bounds = JSON.parse(key.split('\u0000')[2] || '[]') as number[];
      f.p95 = histogramQuantile(bounds, m.buckets, 0.95);
      f.runHistogram = { bounds, buckets: m.buckets };
    }
    // Shadow runs: the mean of each histogram is sum / count, whatever its bounds.
    type Shadow = { model: string | null; version: string | null; count: number | null; sum: number | null };
    const shadowMeans = async (metric: string) => {
      const acc = new Map<string, { model: string | null; version: string | null; n: number; sum: number }>();
      for (const r of await this.#query<Shadow>(QUERIES.latency, queryParams(q, { metric }))) {
        const key = `${r.model ?? ''}\u0000${r.version ?? ''}`;
        const a = acc.get(key) ?? { model: r.model, version: r.version, n: 0, sum: 0 };
        a.n += Number(r.count ?? 0);
        a.sum += Number(r.sum ?? 0);
        acc.set(key, a);
      }
      return [...acc.values()];
    };
    for (const a of await shadowMeans(METRIC.shadowAgreement)) {
      const f = row(a.model, a.version);
      f.shadowRuns = a.n;
      f.shadowAgreementMean = a.n > 0 ? a.sum / a.n : null;
    }
    for (const a of await shadowMeans(METRIC.shadowLatencyRatio)) {
      row(a.model, a.version).shadowRatioMean = a.n > 0 ? a.sum / a.n : null;
    }
    type Drift = { model: string | null; version: string | null; n: number; mean: number | null };
    for (const d of await this.#query<Drift>(QUERIES.driftWindows, queryParams(q, { metric: METRIC.driftPsi }))) {
      const f = row(d.model, d.version);
      f.driftWindows = Number(d.n);
      f.driftPsiMean = d.mean;
    }
    return [...out.values()].filter((f) => f.model !== '' && f.version !== '');
  }

  async deviceFigures(q: DeviceFiguresQuery): Promise<DeviceFigures[]> {
    type Sum = { device_id: string; total: number | null };
    type Hist = { device_id: string; bounds: string | null; buckets: string | null; count: number | null };
    const params = (metric: string) => queryParams(q, { metric, version: q.version });
    const [runs, errors, hists] = await Promise.all([
      this.#query<Sum>(QUERIES.deviceSums, params(METRIC.runs)),
      this.#query<Sum>(QUERIES.deviceSums, params(METRIC.errors)),
      this.#query<Hist>(QUERIES.deviceLatency, params(METRIC.runDuration)),
    ]);
    const out = new Map<string, DeviceFigures>();
    const row = (deviceId: string) => {
      let d = out.get(deviceId);
      if (!d) out.set(deviceId, (d = { deviceId, runs: 0, errors: 0, runHistogram: null }));
      return d;
    };
    for (const r of runs) row(r.device_id).runs += Number(r.total ?? 0);
    for (const r of errors) row(r.device_id).errors += Number(r.total ?? 0);
    // As versionFigures: only the histograms in the bounds of the most timed runs add up.
    const timed = new Map<string, number>();
    for (const r of hists) timed.set(r.bounds ?? '', (timed.get(r.bounds ?? '') ?? 0) + Number(r.count ?? 0));
    const [top] = [...timed].sort(([b1, n1], [b2, n2]) => n2 - n1 || (b1 < b2 ? -1 : 1)).map(([b]) => b);
    const bounds = JSON.parse(top || '[]') as number[];
    for (const r of hists) {
      if ((r.bounds ?? '') !== top) continue;
      const d = row(r.device_id);
      const h = (d.runHistogram ??= { bounds, buckets: new Array<number>(bounds.length + 1).fill(0) });
      (JSON.parse(r.buckets ?? '[]') as number[]).forEach((c, i) => (h.buckets[i] = (h.buckets[i] ?? 0) + c));
    }
    return [...out.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  }

  async decisions(q: DecisionQuery): Promise<RolloutDecision[]> {
    type Row = {
      time_ms: number;
      channel: string;
      model: string;
      version: string;
      previous: string | null;
      action: RolloutAction;
      from_bp: number;
      to_bp: number;
      reason: string;
      message: string;
      figures: string | null;
    };
    const rows = await this.#query<Row>(QUERIES.decisions, {
      sinceMs: q.sinceMs ?? 0,
      channel: q.channel ?? null,
      model: q.model ?? null,
      version: q.version ?? null,
      limit: q.limit ?? 100,
    });
    return rows.map((r) => ({
      timeMs: r.time_ms,
      channel: r.channel,
      model: r.model,
      version: r.version,
      previous: r.previous,
      action: r.action,
      fromBp: r.from_bp,
      toBp: r.to_bp,
      reason: r.reason,
      message: r.message,
      figures: r.figures ? (JSON.parse(r.figures) as RolloutFigures) : null,
    }));
  }

  async batchCount(): Promise<{ metrics: number; logs: number }> {
    const rows = await this.#query<{ kind: string; n: number }>(QUERIES.batchCount, {});
    const n = (k: string) => rows.find((r) => r.kind === k)?.n ?? 0;
    return { metrics: n('metrics'), logs: n('logs') };
  }
}
