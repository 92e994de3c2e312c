import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IDEMPOTENCY_HEADER, OTLP_PATHS, RESOURCE } from '@outpost/protocol';
import { dashboardRoutes } from './dashboard.js';
import type { LogsRequest, MetricsRequest, TelemetryBatch } from './otlp.js';
import {
  eventRows,
  logsRequestSchema,
  metricRows,
  metricsRequestSchema,
  resourceBatchId,
  sharedSchemas,
} from './otlp.js';
import { loadRepoState } from './repo-fs.js';
import { rolloutStatuses, type RolloutController } from './rollout.js';
import type { StorageAdapter, TelemetryQuery } from './storage.js';
import { abFigures } from './strategies.js';

/** Seconds a device waits before resending a batch the storage could not take. */
const STORAGE_RETRY_AFTER_S = 5;

/** Telemetry options of `createServer`: ingest, storage, auth, limits, forwarding. */
export interface TelemetryOptions {
  /** Where batches are stored (`openSqliteStorage()` for the default SQLite file). */
  storage: StorageAdapter;
  /** Device tokens accepted on `POST /v1/metrics` and `/v1/logs` (one per fleet); at least one. */
  deviceTokens: readonly string[];
  /** The admin token of the read-only API under `/api/`; without one the API answers 401 to all. */
  adminToken?: string;
  /**
   * The largest request body, bytes: larger ones get 413.
   * @defaultValue 1048576
   */
  bodyLimit?: number;
  /**
   * Batches a device (device token and `outpost.device.id`) may send per window; more get 429
   * with Retry-After. `false` turns the limit off.
   * @defaultValue `{ max: 600, timeWindowMs: 60000 }`
   */
  rateLimit?: { max: number; timeWindowMs: number } | false;
  /** An OTLP/HTTP endpoint (a Collector's base URL): each stored batch is passed on to it. */
  forward?: string;
}

/** Defaults of {@link TelemetryOptions}. */
export const TELEMETRY_DEFAULTS = {
  bodyLimit: 1 << 20,
  rateLimit: { max: 600, timeWindowMs: 60_000 },
  /** The dashboard's window when a query names none. */
  windowMs: 7 * 24 * 3600_000,
} as const;

/** What a batch id may look like (a UUID in practice). */
const BATCH_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Constant-time membership test of a bearer token among the accepted ones. */
function tokenChecker(tokens: readonly string[]): (header: string | undefined) => string | null {
  const accepted = tokens.filter((t) => t.length > 0).map((t) => ({ token: t, hash: digest(t) }));
  return (header) => {
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header ?? '');
    if (!m) return null;
    const hash = digest(m[1]!);
    let found: string | null = null;
    for (const a of accepted) if (timingSafeEqual(a.hash, hash)) found = a.token;
    return found;
  };
}

function unauthorized(reply: FastifyReply, realm: string) {
  return reply
    .code(401)
    .header('WWW-Authenticate', `Bearer realm="${realm}"`)
    .send({ code: 16, message: 'a valid bearer token is required' });
}

/** Counters of the forwarder, shown by `/api/status`. */
interface ForwardStats {
  forwarded: number;
  failed: number;
  pending: number;
}

/**
 * Passes stored batches on to an OTLP endpoint, a few at a time with retries. A batch that still
 * fails is counted in `failed` (and logged): it is stored here in any case, and acknowledged.
 */
function forwarder(base: string, log: FastifyInstance['log']) {
  const stats: ForwardStats = { forwarded: 0, failed: 0, pending: 0 };
  const queue: { path: string; body: string; id: string }[] = [];
  let active = 0;
  const MAX_QUEUE = 10_000;
  const send = async (job: { path: string; body: string; id: string }) => {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        const res = await fetch(new URL(job.path.slice(1), base.endsWith('/') ? base : `${base}/`), {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', [IDEMPOTENCY_HEADER]: job.id },
          body: job.body,
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        if (res.ok) return true;
        if (res.status < 500 && res.status !== 429) return false;
      } catch {
        // network error: retry
      }
      await new Promise((r) => setTimeout(r, 200 * 2 ** attempt * (0.5 + Math.random())));
    }
    return false;
  };
  const pump = () => {
    while (active < 4 && queue.length > 0) {
      const job = queue.shift()!;
      active++;
      void send(job).then((ok) => {
        active--;
        stats.pending--;
        if (ok) stats.forwarded++;
        else {
          stats.failed++;
          log.warn({ batch: job.id, forward: base }, 'telemetry batch not forwarded');
        }
        pump();
      });
    }
  };
  return {
    stats,
    enqueue(path: string, body: string, id: string) {
      if (queue.length >= MAX_QUEUE) {
        stats.failed++;
        log.warn({ batch: id, forward: base }, 'forward queue full: batch not forwarded');
        return;
      }
      stats.pending++;
      queue.push({ path, body, id });
      pump();
    },
  };
}

/**
 * Registers OTLP/HTTP JSON ingest (`POST /v1/metrics`, `POST /v1/logs`: device token, schema
 * validation, body cap, per-device rate limit, idempotent by batch id) and the read-only admin
 * API (`GET /api/*`). Call inside its own `app.register` so its hooks stay in that scope.
 */
export async function telemetryRoutes(
  app: FastifyInstance,
  options: TelemetryOptions,
  rollouts: { repo: string; controller?: RolloutController },
): Promise<void> {
  const { storage } = options;
  if (!options.deviceTokens.some((t) => t.length > 0)) throw new Error('telemetry needs at least one device token');
  const isDevice = tokenChecker(options.deviceTokens);
  const isAdmin = tokenChecker(options.adminToken ? [options.adminToken] : []);
  const bodyLimit = options.bodyLimit ?? TELEMETRY_DEFAULTS.bodyLimit;
  const limits = options.rateLimit === undefined ? TELEMETRY_DEFAULTS.rateLimit : options.rateLimit;
  const forward = options.forward ? forwarder(options.forward, app.log) : null;

  for (const s of sharedSchemas) app.addSchema(s);
  await app.register(rateLimit, { global: false });

  const tokenOf = new WeakMap<FastifyRequest, string>();
  // Before the body is read: a request without a device token costs no parsing.
  const deviceAuth = async (req: FastifyRequest, reply: FastifyReply) => {
    const token = isDevice(req.headers.authorization);
    if (!token) return unauthorized(reply, 'telemetry');
    tokenOf.set(req, token);
  };

  const ingest =
    (kind: 'metrics' | 'logs') =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      const header = req.headers[IDEMPOTENCY_HEADER.toLowerCase()];
      const body = req.body as MetricsRequest & LogsRequest;
      const resources = (kind === 'metrics' ? body.resourceMetrics : body.resourceLogs)?.map((r) => r.resource) ?? [];
      const claimed = typeof header === 'string' ? header : resourceBatchId(resources);
      if (claimed !== undefined && !BATCH_ID.test(claimed)) {
        return reply.code(400).send({ code: 3, message: `${IDEMPOTENCY_HEADER} must match ${BATCH_ID.source}` });
      }
      const now = Date.now();
      const rows =
        kind === 'metrics' ? { ...metricRows(body, now), events: [] } : { ...eventRows(body, now), points: [] };
      // Without any batch id nothing can be deduplicated: the batch is stored under a fresh one.
      const batch: TelemetryBatch = { id: claimed ?? randomUUID(), kind, receivedAtMs: now, ...rows };
      let stored: boolean;
      try {
        ({ stored } = await storage.ingest(batch));
      } catch (err) {
        // The database is unreachable or failed the transaction: nothing of the batch was kept,
        // and the device keeps it queued and sends it again (OTLP: 503 is retryable).
        req.log.error({ err, batch: batch.id }, 'telemetry storage failed');
        return reply
          .code(503)
          .header('Retry-After', String(STORAGE_RETRY_AFTER_S))
          .send({ code: 14, message: 'telemetry storage unavailable; retry later' });
      }
      if (stored && forward) forward.enqueue(OTLP_PATHS[kind], JSON.stringify(req.body), batch.id);
      return reply.code(200).send({});
    };

  const rateLimitConfig =
    limits === false
      ? false
      : {
          max: limits.max,
          timeWindow: limits.timeWindowMs,
          hook: 'preHandler' as const,
          // A fleet shares its token, so the limit is per device within it (the IP without a device id).
          keyGenerator: (req: FastifyRequest) => {
            const body = req.body as MetricsRequest & LogsRequest;
            const res = body?.resourceMetrics?.[0]?.resource ?? body?.resourceLogs?.[0]?.resource;
            const device = res?.attributes?.find((a) => a.key === RESOURCE.deviceId)?.value?.stringValue;
            return `${digest(tokenOf.get(req) ?? '').toString('base64url')}:${device ?? req.ip}`;
          },
        };

  for (const kind of ['metrics', 'logs'] as const) {
    app.post(OTLP_PATHS[kind], {
      bodyLimit,
      schema: { body: kind === 'metrics' ? metricsRequestSchema : logsRequestSchema },
      onRequest: deviceAuth,
      config: { rateLimit: rateLimitConfig },
      handler: ingest(kind),
    });
  }

  // The read-only API of the dashboard.
  const adminAuth = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!isAdmin(req.headers.authorization)) return unauthorized(reply, 'admin');
  };
  const querySchema = {
    type: 'object',
    properties: { since: { type: 'integer', minimum: 0 }, model: { type: 'string', maxLength: 256 } },
  } as const;
  const query = (req: FastifyRequest): TelemetryQuery => {
    const q = req.query as { since?: number; model?: string };
    return { sinceMs: q.since ?? Date.now() - TELEMETRY_DEFAULTS.windowMs, model: q.model };
  };
  const api = {
    devices: (q: TelemetryQuery) => storage.devices(q),
    versions: (q: TelemetryQuery) => storage.versions(q),
    latency: (q: TelemetryQuery) => storage.latency(q),
    health: (q: TelemetryQuery) => storage.health(q),
    updates: (q: TelemetryQuery) => storage.updates(q),
    drift: (q: TelemetryQuery) => storage.drift(q),
  };
  for (const [name, fn] of Object.entries(api)) {
    app.get(`/api/${name}`, { onRequest: adminAuth, schema: { querystring: querySchema } }, async (req) =>
      fn(query(req)),
    );
  }
  app.get('/api/overview', { onRequest: adminAuth, schema: { querystring: querySchema } }, async (req) => {
    const q = query(req);
    const [devices, versions, latency, health, updates, drift] = await Promise.all([
      api.devices(q),
      api.versions(q),
      api.latency(q),
      api.health(q),
      api.updates(q),
      api.drift(q),
    ]);
    return { sinceMs: q.sinceMs, devices, versions, latency, health, updates, drift };
  });
  // Rollouts: every channel whose version carries a signed plan, with its state, and the log.
  app.get('/api/rollouts', { onRequest: adminAuth, schema: { querystring: querySchema } }, async (req) => {
    const q = query(req);
    let statuses: Awaited<ReturnType<typeof rolloutStatuses>> = [];
    try {
      statuses = await rolloutStatuses(await loadRepoState(rollouts.repo), storage);
    } catch (err) {
      req.log.warn({ err }, 'repository unreadable: no rollout statuses');
    }
    return {
      controller: rollouts.controller !== undefined,
      rollouts: statuses
        .filter((s) => q.model === undefined || s.model === q.model)
        .map(({ decisions, ...s }) => ({ ...s, lastDecision: decisions[0] ?? null })),
      decisions: await storage.decisions({ sinceMs: q.sinceMs, model: q.model, limit: 200 }),
    };
  });
  // A/B tests: every channel pointer with an arm B, both arms' figures and their differences.
  app.get('/api/ab', { onRequest: adminAuth, schema: { querystring: querySchema } }, async (req) => {
    const q = query(req);
    const tests = await abFigures(await loadRepoState(rollouts.repo), storage, q.sinceMs);
    return { sinceMs: q.sinceMs, tests: tests.filter((t) => q.model === undefined || t.model === q.model) };
  });
  app.post('/api/rollouts/evaluate', { onRequest: adminAuth }, async (_req, reply) => {
    if (!rollouts.controller) return reply.code(409).send({ message: 'this server runs no rollout controller' });
    return { decisions: await rollouts.controller.evaluate() };
  });
  dashboardRoutes(app);
  app.get('/api/status', { onRequest: adminAuth }, async () => ({
    batches: await storage.batchCount(),
    forward: forward ? { url: options.forward, ...forward.stats } : null,
  }));
}
