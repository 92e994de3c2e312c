import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createServer,
  loadRepoState,
  openPostgresStorage,
  openSqliteStorage,
  ROLLOUT_DEFAULTS,
  TELEMETRY_DEFAULTS,
} from '@outpost/server';
import type { StorageAdapter, TelemetryOptions } from '@outpost/server';
import type { Command } from '../cli.js';
import { UsageError } from '../cli.js';
import { signersFor } from '../repo/keys.js';
import { parse, required } from '../repo/options.js';

const usage = `usage: outpost serve --repo <dir> [--port 8080] [--host 127.0.0.1] [--log] [--json]
         [--device-token <t>]... [--admin-token <t>] [--data ./outpost-data | --database <url>]
         [--forward <url>]
         [--body-limit <bytes>] [--rate-limit <n>] [--rollout-keys <dir> [--rollout-interval <s>]]

Serves a model repository over HTTP: /metadata/* (revalidated on every use) and /targets/*
(content-addressed, cached as immutable), with Range, ETag, CORS for any origin and
Cross-Origin-Resource-Policy: cross-origin. Runs until interrupted (Ctrl-C).

With a device token it also takes telemetry: OTLP/HTTP JSON on POST /v1/metrics and /v1/logs
(Authorization: Bearer <device token>; idempotent by the Idempotency-Key header), stored in
SQLite at <data>/outpost.db (WAL; created on first start) or in PostgreSQL (--database), and
answers the read-only dashboard API under /api/ (Authorization: Bearer <admin token>). Several
servers behind a load balancer share one PostgreSQL database; a batch retried to any of them is
stored once.

options:
  --port <n>            the port (default 8080; 0 picks a free one)
  --host <h>            the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --log                 log each request (JSON lines on stdout)
  --json                print the address as JSON
  --device-token <t>    a fleet's device token (repeat for several fleets); or OUTPOST_DEVICE_TOKEN
                        (comma-separated). Without one, no telemetry is taken.
  --admin-token <t>     the token of the /api/ dashboard API; or OUTPOST_ADMIN_TOKEN
  --data <dir>          where the SQLite telemetry database lives (default ./outpost-data)
  --database <url>      store telemetry in PostgreSQL instead (postgres://user:pass@host:5432/db; the
                        schema is created on first start); or OUTPOST_DATABASE_URL
  --forward <url>       also pass each stored batch on to this OTLP/HTTP endpoint (a Collector)
  --body-limit <bytes>  the largest telemetry request (default ${TELEMETRY_DEFAULTS.bodyLimit}); larger: 413
  --rate-limit <n>      telemetry requests per minute per device (default ${TELEMETRY_DEFAULTS.rateLimit.max}; 0: off)
  --rollout-keys <dir>  run the rollout controller (see outpost rollout) with the online keys in <dir>
                        (channels, snapshot, timestamp; root and targets keys there are not read)
  --rollout-interval <s>  seconds between its evaluations (default ${ROLLOUT_DEFAULTS.intervalMs / 1000})

Tokens on the command line show in the process list: prefer the environment variables.`;

/** Aborts on the first SIGINT or SIGTERM (used when the caller gives no signal). */
function processStop(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ac.signal;
}

function count(v: string | undefined, flag: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!/^[0-9]+$/.test(v)) throw new UsageError(`${flag} must be a whole number`);
  return Number(v);
}

/** `outpost serve`. */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve a model repository (Range, ETag, immutable blobs, CORS) and take telemetry',
  usage,
  async run(args, io) {
    const { values: v } = parse(args, {
      repo: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      log: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      'device-token': { type: 'string', multiple: true },
      'admin-token': { type: 'string' },
      data: { type: 'string', default: './outpost-data' },
      database: { type: 'string' },
      forward: { type: 'string' },
      'body-limit': { type: 'string' },
      'rate-limit': { type: 'string' },
      'rollout-keys': { type: 'string' },
      'rollout-interval': { type: 'string' },
    });
    required(v, 'repo');
    const port = Number(v.port);
    if (!/^[0-9]+$/.test(v.port) || port > 65535) throw new UsageError('--port must be 0 to 65535');
    if (!(await stat(`${v.repo}/metadata`).catch(() => null))?.isDirectory()) {
      throw new Error(`${v.repo} is not a repository (no metadata/ folder; outpost init makes one)`);
    }
    const env = io.env ?? process.env;
    const deviceTokens = [...(v['device-token'] ?? []), ...(env.OUTPOST_DEVICE_TOKEN ?? '').split(',')]
      .map((t) => t.trim())
      .filter((t) => t.length > 0);
    const adminToken = v['admin-token'] ?? (env.OUTPOST_ADMIN_TOKEN || undefined);
    if (v.forward !== undefined && !/^https?:\/\//.test(v.forward)) {
      throw new UsageError('--forward must be an http(s) URL');
    }
    if (!deviceTokens.length && (adminToken || v.forward)) {
      throw new UsageError('telemetry needs a device token (--device-token or OUTPOST_DEVICE_TOKEN)');
    }

    const database = v.database ?? (env.OUTPOST_DATABASE_URL || undefined);
    if (database !== undefined && !/^postgres(ql)?:\/\//.test(database)) {
      throw new UsageError('--database must be a postgres:// URL');
    }

    let storage: StorageAdapter | undefined;
    let telemetry: TelemetryOptions | undefined;
    // Where telemetry goes, as printed: never the database password.
    let where: string | null = null;
    if (deviceTokens.length) {
      if (database) {
        storage = await openPostgresStorage(database);
        const shown = new URL(database);
        if (shown.password) shown.password = '***';
        where = shown.toString();
      } else {
        storage = openSqliteStorage(join(v.data, 'outpost.db'));
        where = join(v.data, 'outpost.db');
      }
      const perMinute = count(v['rate-limit'], '--rate-limit', TELEMETRY_DEFAULTS.rateLimit.max);
      telemetry = {
        storage,
        deviceTokens,
        adminToken,
        forward: v.forward,
        bodyLimit: count(v['body-limit'], '--body-limit', TELEMETRY_DEFAULTS.bodyLimit),
        rateLimit: perMinute === 0 ? false : { max: perMinute, timeWindowMs: 60_000 },
      };
    }
    let rollout: Parameters<typeof createServer>[0]['rollout'];
    if (v['rollout-keys'] !== undefined) {
      if (!telemetry) throw new UsageError('--rollout-keys needs telemetry (a device token): the controller reads it');
      const signers = await signersFor(v['rollout-keys'], await loadRepoState(v.repo!), [
        'channels',
        'snapshot',
        'timestamp',
      ]);
      const seconds = count(v['rollout-interval'], '--rollout-interval', ROLLOUT_DEFAULTS.intervalMs / 1000);
      if (seconds < 1) throw new UsageError('--rollout-interval must be at least 1 second');
      rollout = { signers, intervalMs: seconds * 1000 };
    } else if (v['rollout-interval'] !== undefined) {
      throw new UsageError('--rollout-interval needs --rollout-keys');
    }
    const signal = io.signal ?? processStop();
    const app = createServer({ repo: v.repo!, logger: v.log, telemetry, rollout });
    try {
      const address = await app.listen({ port, host: v.host });
      io.out(
        v.json
          ? JSON.stringify({ url: address, repo: v.repo, telemetry: where })
          : `serving ${v.repo} at ${address}` +
              (where ? `; telemetry into ${where}` : '') +
              (rollout ? `; rollout controller every ${rollout.intervalMs! / 1000} s` : ''),
      );
      if (telemetry && !adminToken) io.err('no admin token: the /api/ dashboard API answers 401 to everyone');
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    } finally {
      await app.close();
      await storage?.close();
    }
    return 0;
  },
};
