import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createServer } from '../server.js';
import { openSqliteStorage } from '../sqlite.js';
import type { StorageAdapter } from '../storage.js';
import type { TelemetryOptions } from '../telemetry.js';

/** The fleet's token: what devices send telemetry with. */
export const DEVICE_TOKEN = 'fleet-token';
/** The admin token: what the dashboard's API wants. */
export const ADMIN_TOKEN = 'admin-token';

/** The Authorization header that presents `token`. */
export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** A device's headers: the fleet token and, given a key, the batch's Idempotency-Key. */
export const deviceHeaders = (idempotencyKey?: string): Record<string, string> => ({
  ...auth(DEVICE_TOKEN),
  ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
});

/** POSTs `body` as JSON (a string goes as it is), as a device unless other headers are given. */
export function post(
  app: FastifyInstance,
  path: string,
  body: unknown,
  headers: Record<string, string> = deviceHeaders(),
) {
  return app.inject({
    method: 'POST',
    url: path,
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Options of {@link openTelemetryServer}. */
export interface TelemetryServerOptions {
  /**
   * The temporary folder's name prefix (it names the test in a leftover folder).
   * @defaultValue 'outpost-telemetry-'
   */
  prefix?: string;
  /** Opens the store in the server's folder. @defaultValue a SQLite file in it */
  storage?: (dir: string) => StorageAdapter | Promise<StorageAdapter>;
  /** Telemetry options besides the store and the two tokens above. */
  telemetry?: Partial<TelemetryOptions>;
}

/** What {@link openTelemetryServer} opened. */
export interface TelemetryServer {
  app: FastifyInstance;
  storage: StorageAdapter;
  /** The temporary folder that holds everything. */
  dir: string;
  /** The repository the server serves: `dir/repo`, with an empty `metadata/`. */
  repo: string;
  /** Closes the server, then the store, and removes the folder. */
  close(): Promise<void>;
}

/**
 * A server with telemetry (the tokens above), ready but not listening (`app.inject` reaches it,
 * or `app.listen`), in a new temporary folder with its repository and its store.
 */
export async function openTelemetryServer(options: TelemetryServerOptions = {}): Promise<TelemetryServer> {
  const dir = await mkdtemp(join(tmpdir(), options.prefix ?? 'outpost-telemetry-'));
  const repo = join(dir, 'repo');
  await mkdir(join(repo, 'metadata'), { recursive: true });
  const storage = await (options.storage ?? ((d) => openSqliteStorage(join(d, 'data/outpost.db'))))(dir);
  const app = createServer({
    repo,
    telemetry: { storage, deviceTokens: [DEVICE_TOKEN], adminToken: ADMIN_TOKEN, ...options.telemetry },
  });
  await app.ready();
  const close = async () => {
    await app.close();
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { app, storage, dir, repo, close };
}
