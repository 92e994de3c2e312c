import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

// A throwaway PostgreSQL server for the storage tests: Debian's PostgreSQL binaries (`.ci/run`
// installs the `postgresql` package), a fresh cluster in a temporary folder on a free loopback
// port, trust authentication, no fsync. OUTPOST_TEST_POSTGRES_URL points the tests at a server
// of your own instead (its user must be allowed to create databases).

const run = promisify(execFile);

export interface PostgresForTests {
  /** A new, empty database on the server, as a connection URL. */
  createDatabase: () => Promise<string>;
  /** Shuts the server down (fast: open connections are cut), and starts it again. Own clusters only. */
  shutdown: () => Promise<void>;
  start: () => Promise<void>;
  stop: () => Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The newest installed PostgreSQL's bin folder (Debian lays them out as /usr/lib/postgresql/<major>/bin). */
async function binaries(): Promise<string> {
  const majors = await readdir('/usr/lib/postgresql').catch(() => [] as string[]);
  const newest = majors.filter((m) => /^\d+$/.test(m)).sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) {
    throw new Error(
      'PostgreSQL is not installed: the PostgreSQL storage tests need its server binaries ' +
        '(Debian: apt-get install postgresql, which .ci/run does), or OUTPOST_TEST_POSTGRES_URL',
    );
  }
  return `/usr/lib/postgresql/${newest}/bin`;
}

function withAdmin(url: string): PostgresForTests {
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  admin.on('error', () => undefined);
  const own = () => Promise.reject(new Error('OUTPOST_TEST_POSTGRES_URL: not a server these tests started'));
  return {
    shutdown: own,
    start: own,
    createDatabase: async () => {
      const name = `outpost_test_${randomBytes(6).toString('hex')}`;
      await admin.query(`CREATE DATABASE ${name}`);
      const u = new URL(url);
      u.pathname = `/${name}`;
      return u.toString();
    },
    stop: () => admin.end(),
  };
}

/**
 * Starts (or, with OUTPOST_TEST_POSTGRES_URL, connects to) a PostgreSQL server for tests. `own`:
 * always a cluster of its own, for tests that shut the server down.
 */
export async function startPostgres(opts: { own?: boolean } = {}): Promise<PostgresForTests> {
  const given = process.env['OUTPOST_TEST_POSTGRES_URL'];
  if (given && !opts.own) return withAdmin(given);
  const bin = await binaries();
  const dir = await mkdtemp(join(tmpdir(), 'outpost-pg-'));
  // PostgreSQL refuses to run as root: as root, the cluster belongs to Debian's postgres user.
  const asRoot = process.getuid?.() === 0;
  const as = (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args);
  if (asRoot) {
    await chmod(dir, 0o777);
  }
  const data = join(dir, 'data');
  const port = await freePort();
  await as(`${bin}/initdb`, ['-D', data, '-A', 'trust', '-U', 'outpost', '-E', 'UTF8', '--no-sync']);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = async () => {
    await as(`${bin}/pg_ctl`, ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  };
  const shutdown = async () => {
    await as(`${bin}/pg_ctl`, ['-D', data, '-m', 'fast', '-w', 'stop']);
  };
  await start();
  const t = withAdmin(`postgres://outpost@127.0.0.1:${port}/postgres`);
  return {
    createDatabase: t.createDatabase,
    shutdown,
    start,
    async stop() {
      await t.stop();
      await shutdown().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
