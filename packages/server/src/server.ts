import cors from '@fastify/cors';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { open, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import parseRange from 'range-parser';
import { RolloutController, type RolloutControllerOptions } from './rollout.js';
import type { TelemetryOptions } from './telemetry.js';
import { telemetryRoutes } from './telemetry.js';

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** The repository folder (holding `metadata/` and `targets/`). */
  repo: string;
  /**
   * Fastify's request logger.
   * @defaultValue false
   */
  logger?: boolean;
  /**
   * Telemetry ingest (OTLP/HTTP JSON on `/v1/metrics` and `/v1/logs`) and the admin API under
   * `/api/`. Without it the server only serves the repository.
   */
  telemetry?: TelemetryOptions;
  /**
   * Runs the rollout controller on this server's repository and telemetry storage (needs
   * `telemetry`): the online keys and how often it evaluates. Its decisions are at
   * `/api/rollouts`; `POST /api/rollouts/evaluate` evaluates at once.
   */
  rollout?: Omit<RolloutControllerOptions, 'repo' | 'storage'>;
}

/** Headers a page on another origin may read (resuming downloads needs all of them). */
const EXPOSED = ['Content-Length', 'Content-Range', 'ETag', 'Accept-Ranges'];

/** `timestamp.json` or `<version>.<role>.json`. */
const METADATA_NAME = /^(?:[1-9][0-9]{0,9}\.)?[a-z][a-z0-9_-]{0,63}\.json$/;
/** One path segment under `targets/`: what the repository writes, nothing else. */
const TARGET_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/;
const CONTENT_ADDRESSED = /^([0-9a-f]{64})\./;

/**
 * The repository path a request URL names, as segments, or null for anything the repository
 * never writes. Checked on the raw URL, segment by segment after decoding, so `..` in any
 * spelling (`%2e%2e`, `%2F`, backslashes), NUL bytes, absolute paths and empty segments never
 * reach the file system.
 */
function repoSegments(rawUrl: string): { kind: 'metadata' | 'targets'; segments: string[] } | null {
  const q = rawUrl.search(/[?#]/);
  const parts = (q < 0 ? rawUrl : rawUrl.slice(0, q)).split('/');
  if (parts[0] !== '') return null;
  const decoded: string[] = [];
  for (const p of parts.slice(1)) {
    try {
      decoded.push(decodeURIComponent(p));
    } catch {
      return null;
    }
  }
  const [kind, ...rest] = decoded;
  if (kind === 'metadata') {
    return rest.length === 1 && METADATA_NAME.test(rest[0]!) ? { kind, segments: decoded } : null;
  }
  if (kind === 'targets') {
    const ok = rest.length >= 2 && rest.every((s) => TARGET_SEGMENT.test(s) && !s.includes('..'));
    return ok ? { kind, segments: decoded } : null;
  }
  return null;
}

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

/**
 * The repository server: `GET`/`HEAD` on `/metadata/*` (never cached without revalidation) and
 * `/targets/*` (content-addressed, so cached for a year as immutable), with strong ETags,
 * single-range requests (206, 416) and `If-None-Match` (304). Any origin may read it, including
 * cross-origin-isolated pages. With `telemetry`, also ingests OTLP/HTTP JSON and answers the
 * dashboard's API. Returns the Fastify instance, not yet listening.
 */
export function createServer(options: ServerOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger ?? false,
    exposeHeadRoutes: false,
    // OTLP/JSON's 64-bit integers arrive as strings or numbers: the schemas say `type: [string, integer]`.
    ajv: { customOptions: { allowUnionTypes: true } },
    // A URL that does not even decode names nothing in the repository: 404, like any odd name.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      void reply.code(err.code === 'FST_ERR_BAD_URL' ? 404 : 400).send({ error: err.message });
    },
  });
  const root = realpath(resolve(options.repo));
  root.catch(() => undefined); // reported per request (404) until the folder exists

  void app.register(cors, {
    origin: '*',
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['Range', 'If-None-Match', 'If-Range', 'Content-Type', 'Authorization', 'Idempotency-Key'],
    exposedHeaders: EXPOSED,
    maxAge: 86400,
  });
  app.addHook('onRequest', async (_req, reply) => {
    void reply.header('Cross-Origin-Resource-Policy', 'cross-origin').header('X-Content-Type-Options', 'nosniff');
  });

  const serve = async (req: FastifyRequest, reply: FastifyReply) => {
    const named = repoSegments(req.raw.url ?? '');
    if (!named) return reply.callNotFound();
    let base: string;
    let file: string;
    try {
      base = await root;
      file = await realpath(join(base, ...named.segments));
    } catch {
      return reply.callNotFound();
    }
    // A symlink inside the repository must not lead outside it.
    if (!file.startsWith(base + sep)) return reply.callNotFound();
    let fh;
    try {
      fh = await open(file, 'r');
    } catch {
      return reply.callNotFound();
    }
    let handedOver = false;
    try {
      const st = await fh.stat({ bigint: true });
      if (!st.isFile()) return reply.callNotFound();
      const size = Number(st.size);
      const name = named.segments[named.segments.length - 1]!;
      const hash = named.kind === 'targets' ? CONTENT_ADDRESSED.exec(name)?.[1] : undefined;
      // Blobs are named by their SHA-256, the best validator there is; metadata changes by
      // rename, so its inode, size and mtime tell one version from the next.
      const etag = hash ? `"${hash}"` : `"${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtimeNs.toString(16)}"`;
      void reply
        .header('ETag', etag)
        .header('Accept-Ranges', 'bytes')
        .header('Cache-Control', named.kind === 'metadata' ? 'no-cache' : 'public, max-age=31536000, immutable')
        .header('Content-Type', name.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      const inm = req.headers['if-none-match'];
      if (inm && etagMatches(inm, etag)) return reply.code(304).send();

      let start = 0;
      let end = size - 1;
      const range = req.headers.range;
      const ifRange = req.headers['if-range'];
      // If-Range compares strongly; a date or another ETag means "send it all".
      if (range && (ifRange === undefined || ifRange === etag)) {
        const ranges = parseRange(size, range, { combine: true });
        if (ranges === -1) {
          return reply.code(416).header('Content-Range', `bytes */${size}`).send();
        }
        // Malformed, non-byte or multi-range requests get the whole file (RFC 9110 allows it).
        if (ranges !== -2 && ranges.type === 'bytes' && ranges.length === 1) {
          start = ranges[0]!.start;
          end = ranges[0]!.end;
          void reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`);
        }
      }
      void reply.header('Content-Length', String(end - start + 1));
      if (req.method === 'HEAD' || size === 0) return reply.send();
      handedOver = true;
      return reply.send(fh.createReadStream({ start, end }));
    } finally {
      if (!handedOver) await fh.close();
    }
  };
  for (const prefix of ['/metadata/*', '/targets/*']) {
    app.route({ method: ['GET', 'HEAD'], url: prefix, handler: serve });
  }
  const telemetry = options.telemetry;
  if (options.rollout && !telemetry) throw new TypeError('The rollout controller needs telemetry (its storage)');
  let controller: RolloutController | undefined;
  if (telemetry && options.rollout) {
    controller = new RolloutController({
      onError: (err) => app.log.error({ err }, 'rollout evaluation failed'),
      ...options.rollout,
      repo: options.repo,
      storage: telemetry.storage,
    });
    app.addHook('onReady', async () => controller!.start());
    app.addHook('onClose', async () => controller!.stop());
  }
  if (telemetry)
    void app.register(async (scope) => telemetryRoutes(scope, telemetry, { repo: options.repo, controller }));
  return app;
}
