import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  addRelease,
  channelPath,
  encodeEnvelope,
  generateKey,
  initRepository,
  rolloutPlanOf,
  rolloutPlanPath,
  setChannel,
  sha256Hex,
  signMetadata,
  TrustedSet,
  refreshMetadata,
  type RoleName,
  type RolloutPlan,
  type Signers,
  type SigningKey,
} from '@outpost/protocol';
import type { FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { openPostgresStorage, SCHEMA_V1 as PG_SCHEMA_V1 } from './postgres.js';
import { fsMetadataFetcher, loadRepoState, withRepoLock, writeRepoChanges } from './repo-fs.js';
import {
  abortRollout,
  judgeRollout,
  pauseRollout,
  RolloutController,
  rolloutStatuses,
  startRollout,
} from './rollout.js';
import { openSqliteStorage, SCHEMA_V1 as SQLITE_SCHEMA_V1 } from './sqlite.js';
import type { RolloutDecision, StorageAdapter } from './storage.js';
import { logsBody, metricsBody } from './testing/otlp-bodies.js';
import { rolloutFigures as figures } from './testing/rollout-figures.js';
import { ENGINES, testStorages } from './testing/storages.js';
import { ADMIN_TOKEN, auth, deviceHeaders, openTelemetryServer, post } from './testing/telemetry-server.js';

const PLAN: RolloutPlan = {
  steps: [1000, 5000, 10000],
  minDevices: 3,
  minRuns: 50,
  maxErrorBp: 100,
  maxRollbackBp: 2000,
  maxP95RatioPct: 150,
  maxDriftPsiMilli: 250,
};

describe('judgeRollout', () => {
  it('waits for devices, then runs, then the bake time; widens to the next step; completes at 10000', () => {
    expect(judgeRollout(PLAN, 1000, figures({ devices: 2 }), 0)).toMatchObject({
      action: 'wait',
      reason: 'too-few-devices',
      toBp: 1000,
    });
    expect(judgeRollout(PLAN, 1000, figures({ runs: 49 }), 0)).toMatchObject({
      action: 'wait',
      reason: 'too-few-runs',
    });
    expect(judgeRollout({ ...PLAN, minStepSeconds: 30 }, 1000, figures(), 29_000)).toMatchObject({
      action: 'wait',
      reason: 'baking',
    });
    expect(judgeRollout({ ...PLAN, minStepSeconds: 30 }, 1000, figures(), 30_000)).toMatchObject({
      action: 'widen',
      toBp: 5000,
    });
    expect(judgeRollout(PLAN, 5000, figures(), 0)).toMatchObject({ action: 'complete', toBp: 10000 });
    // A share set by hand between two steps goes on to the next step above it.
    expect(judgeRollout(PLAN, 2000, figures(), 0)).toMatchObject({ action: 'widen', toBp: 5000 });
  });

  it('aborts on each threshold once there is evidence enough for that figure', () => {
    expect(judgeRollout(PLAN, 1000, figures({ errors: 6, errorBp: 566 }), 0)).toMatchObject({
      action: 'abort',
      toBp: 0,
      reason: 'error-rate',
    });
    // The same rate on fewer runs than the plan's minimum is not evidence yet.
    expect(judgeRollout(PLAN, 1000, figures({ runs: 30, errors: 6, errorBp: 1667 }), 0)).toMatchObject({
      action: 'wait',
      reason: 'too-few-runs',
    });
    expect(judgeRollout(PLAN, 1000, figures({ errorBp: 100, errors: 1, runs: 99 }), 0).action).toBe('widen');
    expect(judgeRollout(PLAN, 1000, figures({ p95Ms: 12, p95RatioPct: 300 }), 0)).toMatchObject({
      action: 'abort',
      reason: 'p95-ratio',
    });
    expect(judgeRollout(PLAN, 1000, figures({ driftWindows: 4, driftPsiMilli: 400 }), 0)).toMatchObject({
      action: 'abort',
      reason: 'drift-psi',
    });
    // Activations that fail leave the canary without runs: judged on attempts, not runs.
    const failing = figures({ runs: 0, activated: 1, rolledBack: 3, rollbackBp: 7500, devices: 1 });
    expect(judgeRollout(PLAN, 1000, failing, 0)).toMatchObject({ action: 'abort', reason: 'rollback-rate' });
    const noThresholds = { steps: PLAN.steps, minDevices: 3, minRuns: 50 };
    expect(judgeRollout(noThresholds, 1000, figures({ errorBp: 9000, errors: 900 }), 0).action).toBe('widen');
  });
});

//#region a repository on disk and a server
const ROLES: RoleName[] = ['root', 'targets', 'snapshot', 'timestamp', 'channels'];
const ONLINE = ['channels', 'snapshot', 'timestamp'] as const;
const file = (seed: number) => ({
  variant: 'fp32',
  file: 'digits.onnx',
  format: 'onnx' as const,
  primary: true,
  bytes: Uint8Array.from({ length: 1500 }, (_, i) => (i * 13 + seed) & 255),
});

async function makeRepo(dir: string) {
  const keys = Object.fromEntries(
    await Promise.all(ROLES.map(async (r) => [r, [await generateKey('ecdsa')]])),
  ) as Record<RoleName, SigningKey[]>;
  const all: Signers = keys;
  const online: Signers = Object.fromEntries(ONLINE.map((r) => [r, keys[r]]));
  const now = Date.now();
  let r = await initRepository({
    roles: Object.fromEntries(ROLES.map((role) => [role, { keys: keys[role], threshold: 1 }])) as never,
    now,
  });
  await writeRepoChanges(dir, r);
  let state = r.state;
  for (const [version, seed, plan] of [
    ['1.0.0', 1, undefined],
    ['1.1.0', 2, PLAN],
  ] as const) {
    const rel = await addRelease(state, { model: 'digits', version, files: [file(seed)], rolloutPlan: plan }, all, now);
    await writeRepoChanges(dir, rel);
    state = rel.state;
  }
  const pointed = await setChannel(
    state,
    { channel: 'stable', model: 'digits', version: '1.0.0', rolloutBp: 10000 },
    all,
    now,
  );
  await writeRepoChanges(dir, pointed);
  r = pointed;
  return { keys, all, online };
}

/** A temporary folder with a repository (see makeRepo) in `repo/` and a SQLite store beside it. */
async function openRepo(prefix: string) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const repo = join(dir, 'repo');
  const keys = await makeRepo(repo);
  const storage = openSqliteStorage(join(dir, 'outpost.db'));
  const close = async () => {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  };
  return { ...keys, repo, storage, close };
}

async function pointer(dir: string) {
  const state = await loadRepoState(dir);
  return state.channels.signed.targets[channelPath('stable', 'digits')]?.custom?.outpost;
}

/** A device's batch, with an Idempotency-Key of its own. */
const send = (app: FastifyInstance, path: string, body: unknown) => post(app, path, body, deviceHeaders(randomUUID()));
//#endregion

const storages = testStorages();

describe.each(ENGINES)('rollout decisions in %s', (engine) => {
  it('schema version 1 is upgraded to 2 (the decisions table) in place, its telemetry kept', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-migrate-'));
    try {
      let storage: StorageAdapter;
      if (engine === 'sqlite') {
        const db = new Database(join(dir, 'outpost.db'));
        db.exec(SQLITE_SCHEMA_V1);
        db.exec("INSERT INTO batches (kind, id, received_ms, rows) VALUES ('metrics', 'old', 1, 0)");
        db.pragma('user_version = 1');
        db.close();
        storage = openSqliteStorage(join(dir, 'outpost.db'));
        const check = new Database(join(dir, 'outpost.db'), { readonly: true });
        expect(check.pragma('user_version', { simple: true })).toBe(2);
        check.close();
      } else {
        const url = await storages.postgresDatabase();
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query(PG_SCHEMA_V1);
        await c.query('CREATE TABLE outpost_schema (version INTEGER NOT NULL)');
        await c.query('INSERT INTO outpost_schema (version) VALUES (1)');
        await c.query("INSERT INTO batches (kind, id, received_ms, rows) VALUES ('metrics', 'old', 1, 0)");
        // Two servers upgrading together: one does it, the other finds it done.
        const both = await Promise.all([openPostgresStorage(url), openPostgresStorage(url)]);
        await both[1].close();
        storage = both[0];
        expect((await c.query('SELECT version FROM outpost_schema')).rows).toEqual([{ version: 2 }]);
        await c.end();
      }
      try {
        expect(await storage.batchCount()).toEqual({ metrics: 1, logs: 0 });
        const d: RolloutDecision = {
          timeMs: 1000,
          channel: 'stable',
          model: 'digits',
          version: '1.1.0',
          previous: '1.0.0',
          action: 'abort',
          fromBp: 1000,
          toBp: 0,
          reason: 'error-rate',
          message: 'errors',
          figures: figures({ errorBp: 566 }),
        };
        await storage.addDecision(d);
        await storage.addDecision({ ...d, timeMs: 2000, action: 'start', version: '1.2.0', figures: null });
        expect(await storage.decisions({})).toEqual([
          { ...d, timeMs: 2000, action: 'start', version: '1.2.0', figures: null },
          d,
        ]);
        expect(await storage.decisions({ version: '1.1.0' })).toEqual([d]);
        expect(await storage.decisions({ sinceMs: 1500 })).toHaveLength(1);
        expect(await storage.decisions({ channel: 'beta' })).toEqual([]);
      } finally {
        await storage.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the controller widens a healthy canary, aborts a failing one back to the previous version, and logs why', async () => {
    const { app, storage, repo, close } = await openTelemetryServer({
      prefix: 'outpost-rollout-',
      storage: (dir) => storages.open(engine, dir),
      telemetry: { rateLimit: false },
    });
    const { all, online } = await makeRepo(repo);
    // With only the online keys, not even the controller's own start could publish.
    expect(() => new RolloutController({ repo, storage, signers: all })).toThrow(/online keys only/);
    const controller = new RolloutController({ repo, storage, signers: online });
    try {
      const started = await startRollout({
        repo,
        storage,
        signers: online,
        channel: 'stable',
        model: 'digits',
        version: '1.1.0',
      });
      expect(started).toMatchObject({ action: 'start', fromBp: 0, toBp: 1000, previous: '1.0.0' });
      expect(await pointer(repo)).toMatchObject({ version: '1.1.0', rolloutBp: 1000, previous: '1.0.0' });
      await expect(
        startRollout({ repo, storage, signers: online, channel: 'stable', model: 'digits', version: '1.1.0' }),
      ).rejects.toThrow(/running/);

      // Two devices: not enough. A second evaluation with the same reason logs nothing more.
      for (const dev of ['a', 'b']) {
        expect((await send(app, '/v1/metrics', metricsBody(dev, undefined, { version: '1.1.0' }))).statusCode).toBe(
          200,
        );
      }
      expect(await controller.evaluate()).toMatchObject([{ action: 'wait', reason: 'too-few-devices' }]);
      expect(await controller.evaluate()).toEqual([]);
      for (const dev of ['c', 'd', 'e', 'f', 'g', 'h']) {
        await send(app, '/v1/metrics', metricsBody(dev, undefined, { version: dev < 'f' ? '1.1.0' : '1.0.0' }));
      }
      const [widened] = await controller.evaluate();
      expect(widened).toMatchObject({ action: 'widen', fromBp: 1000, toBp: 5000, reason: 'healthy' });
      expect(widened!.figures).toMatchObject({ devices: 5, runs: 50, errors: 0, p95RatioPct: 100 });
      expect(await pointer(repo)).toMatchObject({ version: '1.1.0', rolloutBp: 5000, previous: '1.0.0' });

      // Pause: the controller leaves it; start resumes it with a fresh window.
      await pauseRollout({ repo, storage, signers: online, channel: 'stable', model: 'digits' });
      expect(await controller.evaluate()).toEqual([]);
      await startRollout({ repo, storage, signers: online, channel: 'stable', model: 'digits', version: '1.1.0' });

      // The canary now fails 10% of its runs: aborted, every device back on 1.0.0.
      for (const dev of ['a', 'b', 'c', 'd', 'e']) {
        const body = metricsBody(dev, undefined, { version: '1.1.0', errors: { RUN_FAILED: 2 } });
        await send(app, '/v1/metrics', body);
        await send(app, '/v1/logs', logsBody(dev, undefined, [{ version: '1.1.0', kind: 'activated', from: '1.0.0' }]));
      }
      const [aborted] = await controller.evaluate();
      expect(aborted).toMatchObject({ action: 'abort', fromBp: 5000, toBp: 0, reason: 'error-rate' });
      expect(aborted!.figures).toMatchObject({ devices: 5, runs: 50, errors: 10, errorBp: 1667, activated: 5 });
      expect(await pointer(repo)).toEqual({
        kind: 'channel',
        channel: 'stable',
        model: 'digits',
        version: '1.0.0',
        rolloutBp: 10000,
      });
      expect(await controller.evaluate()).toEqual([]);

      const res = await app.inject({
        method: 'GET',
        url: '/api/rollouts?since=0',
        headers: auth(ADMIN_TOKEN),
      });
      expect(res.statusCode).toBe(200);
      const body = res.json<{ decisions: RolloutDecision[] }>();
      expect(body.decisions.map((d) => d.action)).toEqual(['abort', 'resume', 'pause', 'widen', 'wait', 'start']);
      const noController = await app.inject({
        method: 'POST',
        url: '/api/rollouts/evaluate',
        headers: auth(ADMIN_TOKEN),
      });
      expect(noController.statusCode).toBe(409);
      expect((await app.inject({ method: 'GET', url: '/api/rollouts' })).statusCode).toBe(401);
    } finally {
      await close();
    }
  });
});

describe('the online keys', () => {
  it('cannot change a signed plan or add a model: what they sign outside channels/ is refused', async () => {
    const { repo, online, close } = await openRepo('outpost-rollout-keys-');
    try {
      const state = await loadRepoState(repo);
      await expect(
        addRelease(state, { model: 'digits', version: '9.9.9', files: [file(9)] }, online, Date.now()),
      ).rejects.toThrow(/targets key/);
      // What a stolen controller key could try: a looser plan for 1.1.0 and a new model file,
      // signed as channels and pinned properly through snapshot and timestamp.
      const c = state.channels.signed;
      const planTarget = state.targets.signed.targets[rolloutPlanPath('digits', '1.1.0')]!;
      const loose = { ...planTarget, custom: { outpost: { ...planTarget.custom!.outpost!, maxErrorBp: 10000 } } };
      const modelTarget = Object.entries(state.targets.signed.targets).find(([p]) => p.endsWith('.onnx'))![1];
      const forged = await signMetadata(
        {
          ...c,
          version: c.version + 1,
          targets: {
            ...c.targets,
            [rolloutPlanPath('digits', '1.1.0')]: loose,
            'models/digits/9.9.9/fp32/digits.onnx': modelTarget,
          },
        },
        online.channels!,
      );
      const bytes = encodeEnvelope(forged);
      const snap = await signMetadata(
        {
          ...state.snapshot.signed,
          version: state.snapshot.signed.version + 1,
          meta: {
            ...state.snapshot.signed.meta,
            'channels.json': {
              version: c.version + 1,
              length: bytes.length,
              hashes: { sha256: await sha256Hex(bytes) },
            },
          },
        },
        online.snapshot!,
      );
      const snapBytes = encodeEnvelope(snap);
      const ts = await signMetadata(
        {
          ...state.timestamp.signed,
          version: state.timestamp.signed.version + 1,
          meta: {
            'snapshot.json': {
              version: snap.signed.version,
              length: snapBytes.length,
              hashes: { sha256: await sha256Hex(snapBytes) },
            },
          },
        },
        online.timestamp!,
      );
      await writeRepoChanges(repo, {
        files: {
          [`${c.version + 1}.channels.json`]: bytes,
          [`${snap.signed.version}.snapshot.json`]: snapBytes,
          'timestamp.json': encodeEnvelope(ts),
        },
      });
      // The controller's and the CLI's reader refuses the repository; so does a device.
      await expect(loadRepoState(repo)).rejects.toThrow(/outside its delegation/);
      const device = await TrustedSet.fromRoot(new Uint8Array(encodeEnvelope(state.root)));
      await expect(refreshMetadata(device, fsMetadataFetcher(repo), Date.now())).rejects.toThrow(
        /outside its delegation/,
      );
      expect(rolloutPlanOf(state.targets.signed, 'digits', '1.1.0')).toEqual(PLAN);
    } finally {
      await close();
    }
  });
});

describe('the timestamp', () => {
  it('is re-signed by the controller once half its lifetime has passed, and not before', async () => {
    const { repo, online, storage, close } = await openRepo('outpost-rollout-ts-');
    try {
      const before = (await loadRepoState(repo)).timestamp.signed;
      let now = Date.now() + 11 * 3600_000;
      const controller = new RolloutController({ repo, storage, signers: online, now: () => now });
      await controller.evaluate();
      expect((await loadRepoState(repo)).timestamp.signed).toEqual(before);
      now = Date.now() + 13 * 3600_000;
      await controller.evaluate();
      const after = (await loadRepoState(repo)).timestamp.signed;
      expect(after.version).toBe(before.version + 1);
      expect(Date.parse(after.expires)).toBeGreaterThan(now + 23 * 3600_000);
    } finally {
      await close();
    }
  });
});

describe('operator actions', () => {
  it('abort points the channel back for every device; a held repository lock refuses the change', async () => {
    const { repo, online, storage, close } = await openRepo('outpost-rollout-ops-');
    try {
      const ch = { channel: 'stable', model: 'digits' };
      await startRollout({ repo, storage, signers: online, ...ch, version: '1.1.0' });
      expect(await abortRollout({ repo, storage, signers: online, ...ch, reason: 'by hand' })).toMatchObject({
        action: 'abort',
        reason: 'operator',
        message: 'by hand',
        fromBp: 1000,
        toBp: 0,
      });
      expect(await pointer(repo)).toMatchObject({ version: '1.0.0', rolloutBp: 10000 });
      await expect(abortRollout({ repo, storage, signers: online, ...ch })).rejects.toThrow(/no partial rollout/);
      // 1.0.0 has no plan: nothing for the controller to follow.
      expect(await rolloutStatuses(await loadRepoState(repo), storage)).toEqual([]);
      await startRollout({ repo, storage, signers: online, ...ch, version: '1.1.0' });
      const [st] = await rolloutStatuses(await loadRepoState(repo), storage);
      expect(st).toMatchObject({ state: 'running', rolloutBp: 1000, step: 0, previous: '1.0.0', plan: PLAN });
      await withRepoLock(repo, async () => {
        await expect(abortRollout({ repo, storage, signers: online, ...ch })).rejects.toThrow(
          /another outpost command/,
        );
      });
      expect(await pointer(repo)).toMatchObject({ version: '1.1.0', rolloutBp: 1000 });
    } finally {
      await close();
    }
  });
});
