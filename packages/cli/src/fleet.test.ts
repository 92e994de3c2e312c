import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IDEMPOTENCY_HEADER,
  RESOURCE,
  SERVICE_NAME,
  TrustedSet,
  channelPath,
  decideChannel,
  httpMetadataFetcher,
  refreshMetadata,
} from '@outpost/protocol';
import {
  createServer,
  loadRepoState,
  openSqliteStorage,
  type AbStatus,
  type Interval,
  type RolloutDecision,
  type StorageAdapter,
} from '@outpost/server';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// The runtime's own recorder and OTLP builders: what a device sends, byte for byte.
import { attributes, logsRequest, metricsRequest } from '../../runtime/src/telemetry/otlp.js';
import { Recorder } from '../../runtime/src/telemetry/recorder.js';
import { ShadowStats } from '../../runtime/src/telemetry/shadow.js';
import { run } from './cli.js';
import { signersFor } from './repo/keys.js';

// A simulated fleet against the real server over HTTP: every device follows the channel as the
// runtime's worker does (TUF refresh of the signed metadata, then decideChannel on it), "runs"
// the version it is assigned, and reports with the runtime's recorder. The server runs the
// rollout controller with the online keys only; the CLI publishes and starts the rollouts.

const FLEET = 200;
/** How often a device checks for updates, runs its batch and sends telemetry (ms). */
const DEVICE_TICK_MS = 1000;
const RUNS_PER_TICK = 20;
const CONTROLLER_INTERVAL_MS = 250;
const MODEL = 'digits';
const CHANNEL = 'stable';
const TOKEN = 'fleet-token';
const PLAN = ['--rollout-plan', '1000,2500,5000,10000', '--min-devices', '10', '--min-runs', '300'];

/** A planted fault of a version: NaN outputs, slower runs, or (as a shadow) answers that disagree. */
type Fault = { nanShare?: number; latencyFactor?: number; disagreeShare?: number };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function outpost(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  expect(err.join('\n'), `outpost ${args.join(' ')}`).toBe('');
  expect(code).toBe(0);
  return out.join('\n');
}

/** One simulated device: a random install id, its own trusted metadata and recorder. */
class Device {
  readonly id = randomUUID();
  version: string | null = null;
  /** When this device last changed version (ms since the epoch). */
  switchedAt = 0;
  /** Update checks begun, and the one at which the device last changed version. */
  checks = 0;
  switchedOnCheck = 0;
  refreshFailures = 0;
  readonly #trusted: TrustedSet;
  readonly #rec = new Recorder({ sampleRate: 1, drift: { threshold: 0.2, windowRuns: 50, inputs: false } });
  /** The runtime's shadow figures, recorded as its live worker does from the shadow worker's answers. */
  readonly #shadow = new ShadowStats();
  /** Shadow runs compared on this device (a shadow's inputs never leave it: only these figures do). */
  shadowRuns = 0;
  readonly #base = attributes({
    [RESOURCE.serviceName]: SERVICE_NAME,
    [RESOURCE.deviceId]: this.id,
    [RESOURCE.channel]: CHANNEL,
    [RESOURCE.runtimeVersion]: '0.1.0',
  });

  constructor(
    trusted: TrustedSet,
    private readonly url: string,
    private readonly faults: Map<string, Fault>,
  ) {
    this.#trusted = trusted;
  }

  async tick(): Promise<void> {
    const check = ++this.checks;
    try {
      await refreshMetadata(this.#trusted, httpMetadataFetcher(this.url), Date.now());
    } catch {
      this.refreshFailures++;
    }
    const t = this.#trusted;
    const d = t.targets ? await decideChannel(t.targets, t.channels, CHANNEL, MODEL, this.id) : null;
    if (d?.version && d.version !== this.version) {
      this.#rec.update({ kind: 'activated', name: MODEL, version: d.version, from: this.version ?? undefined });
      this.version = d.version;
      this.switchedAt = Date.now();
      this.switchedOnCheck = check;
    }
    if (this.version) {
      const fault = this.faults.get(this.version) ?? {};
      const s = this.#rec.seriesOf({ model: MODEL, version: this.version, variant: 'fp32', backend: 'wasm' });
      const shadow = d?.shadow;
      const sf = shadow ? (this.faults.get(shadow.version) ?? {}) : {};
      for (let i = 0; i < RUNS_PER_TICK; i++) {
        // 3-5 ms runs and a 0.1% background of failures, on every version.
        const ms = (3 + 2 * Math.random()) * (fault.latencyFactor ?? 1);
        // A run whose outputs hold NaN: the app reports it as a failed run.
        if (Math.random() < 0.001 || Math.random() < (fault.nanShare ?? 0)) this.#rec.error(s, 'RUN_FAILED');
        else this.#rec.run(s, ms);
        // The channel's shadow on its sample of runs: agreement 1 unless the candidate answers otherwise.
        if (shadow && Math.random() * 10000 < shadow.sampleBp) {
          const key = {
            model: MODEL,
            version: shadow.version,
            variant: 'fp32',
            backend: 'wasm',
            liveVersion: this.version,
          };
          const agree = Math.random() < (sf.disagreeShare ?? 0) ? 0 : 1;
          this.#shadow.compared(key, agree, ((3 + 2 * Math.random()) * (sf.latencyFactor ?? 1)) / ms);
          this.shadowRuns++;
        }
      }
    }
    const { metrics, logs } = this.#rec.collect();
    metrics.push(...this.#shadow.collect());
    if (metrics.length) await this.#send('/v1/metrics', (id) => metricsRequest(this.#base, id, metrics));
    if (logs.length) await this.#send('/v1/logs', (id) => logsRequest(this.#base, id, logs));
  }

  async #send(path: string, body: (batchId: string) => unknown): Promise<void> {
    const id = randomUUID();
    const res = await fetch(new URL(path, this.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, [IDEMPOTENCY_HEADER]: id },
      body: JSON.stringify(body(id)),
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`${path}: ${res.status}`);
  }
}

describe('a simulated fleet of 200 devices against the real server and rollout controller', () => {
  let dir: string;
  let repo: string;
  let keys: string;
  let storage: StorageAdapter;
  let app: FastifyInstance;
  let devices: Device[];
  let serverUrl: string;
  const faults = new Map<string, Fault>();
  let stopped = false;
  let loops: Promise<void>[] = [];
  const sendFailures: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-fleet-'));
    repo = join(dir, 'repo');
    keys = join(dir, 'keys');
    await outpost('keygen', '--out', keys);
    await outpost('init', '--repo', repo, '--keys', keys);
    for (const [v, seed] of [
      ['1.0.0', 1],
      ['1.1.0', 2],
      ['1.2.0', 3],
      ['1.3.0', 4],
      ['1.4.0', 5],
      ['1.5.0', 6],
    ] as const) {
      await writeFile(
        join(dir, `${v}.onnx`),
        Uint8Array.from({ length: 4000 }, (_, i) => (i * 17 + seed) & 255),
      );
    }
    publish = (v: string, ...more: string[]) =>
      outpost(
        'publish',
        join(dir, `${v}.onnx`),
        '--repo',
        repo,
        '--keys',
        keys,
        '--name',
        MODEL,
        '--version',
        v,
        ...more,
      );
    await publish('1.0.0', '--channel', CHANNEL);
    storage = openSqliteStorage(join(dir, 'data/outpost.db'));
    const signers = await signersFor(keys, await loadRepoState(repo), ['channels', 'snapshot', 'timestamp']);
    app = createServer({
      repo,
      telemetry: { storage, deviceTokens: [TOKEN], adminToken: 'admin', rateLimit: false },
      rollout: { signers, intervalMs: CONTROLLER_INTERVAL_MS },
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    serverUrl = url;
    const root = await readFile(join(repo, 'metadata/1.root.json'));
    devices = await Promise.all(
      Array.from({ length: FLEET }, async () => new Device(await TrustedSet.fromRoot(root), url, faults)),
    );
    // Each device on its own clock, started at a random point of its first tick.
    loops = devices.map(async (d) => {
      await sleep(Math.random() * DEVICE_TICK_MS);
      while (!stopped) {
        await d.tick().catch((e: unknown) => sendFailures.push(String(e)));
        await sleep(DEVICE_TICK_MS);
      }
    });
    await until(() => devices.every((d) => d.version === '1.0.0'), 20_000);
    // Plans are signed with each release, by the offline targets key.
    await publish('1.2.0', ...PLAN);
    await publish('1.3.0', ...PLAN);
    await publish('1.4.0');
    await publish('1.5.0', ...PLAN, '--min-shadow-agreement-bp', '9500', '--compare', 'top1:logits');
  }, 60_000);

  afterAll(async () => {
    stopped = true;
    await Promise.all(loops);
    await app?.close();
    await storage?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const decisionsOf = async (version: string) =>
    (await storage.decisions({ channel: CHANNEL, model: MODEL, version, limit: 1000 })).reverse();
  let publish: (v: string, ...more: string[]) => Promise<string>;
  const start = (version: string) =>
    outpost(
      'rollout',
      'start',
      '--repo',
      repo,
      '--keys',
      keys,
      '--name',
      MODEL,
      '--channel',
      CHANNEL,
      '--version',
      version,
      '--data',
      join(dir, 'data'),
    );
  const pointer = async () =>
    (await loadRepoState(repo)).channels.signed.targets[channelPath(CHANNEL, MODEL)]?.custom?.outpost;

  it('A: a healthy canary is widened step by step to every device', async () => {
    const t0 = Date.now();
    // Publish (plan signed with the release, offline keys), then start: the clock runs from here.
    await publish('1.1.0', ...PLAN);
    await start('1.1.0');
    await until(async () => (await decisionsOf('1.1.0')).some((d) => d.action === 'complete'), 40_000);
    await until(() => devices.every((d) => d.version === '1.1.0'), 30_000);
    const tFleet = Math.max(...devices.map((d) => d.switchedAt));
    const decisions = await decisionsOf('1.1.0');
    const steps = decisions.filter((d) => d.action !== 'wait');
    expect(steps.map((d) => [d.action, d.fromBp, d.toBp])).toEqual([
      ['start', 0, 1000],
      ['widen', 1000, 2500],
      ['widen', 2500, 5000],
      ['complete', 5000, 10000],
    ]);
    for (const d of steps.slice(1)) {
      expect(d.reason).toBe('healthy');
      expect(d.figures!.devices).toBeGreaterThanOrEqual(10);
      expect(d.figures!.runs + d.figures!.errors).toBeGreaterThanOrEqual(300);
      expect(d.figures!.errorBp).toBeLessThanOrEqual(100);
      expect(d.figures!.p95RatioPct).toBeGreaterThan(80);
      expect(d.figures!.p95RatioPct).toBeLessThanOrEqual(150);
    }
    expect(await pointer()).toMatchObject({ version: '1.1.0', rolloutBp: 10000, previous: '1.0.0' });
    report('A', t0, steps[3]!.timeMs, tFleet, decisions);
  });

  it('B: a canary failing 5% of its runs (NaN outputs) is aborted and every device goes back', async () => {
    faults.set('1.2.0', { nanShare: 0.05 });
    const t0 = Date.now();
    await start('1.2.0');
    await until(async () => (await decisionsOf('1.2.0')).some((d) => d.action === 'abort'), 30_000);
    await until(() => devices.every((d) => d.version === '1.1.0'), 30_000);
    const decisions = await decisionsOf('1.2.0');
    const abort = decisions.find((d) => d.action === 'abort')!;
    expect(abort).toMatchObject({ reason: 'error-rate', fromBp: 1000, toBp: 0, previous: '1.1.0' });
    // 5% planted plus the 0.1% background: the figure the controller stored.
    expect(abort.figures!.errorBp).toBeGreaterThan(250);
    expect(abort.figures!.errorBp).toBeLessThan(1000);
    expect(abort.figures!.runs + abort.figures!.errors).toBeGreaterThanOrEqual(300);
    expect(decisions.filter((d) => d.action === 'widen')).toEqual([]);
    expect(await pointer()).toEqual({
      kind: 'channel',
      channel: CHANNEL,
      model: MODEL,
      version: '1.1.0',
      rolloutBp: 10000,
    });
    const fault = await firstRunOf('1.2.0');
    const back = Math.max(...devices.map((d) => d.switchedAt));
    report('B', t0, abort.timeMs, back, decisions, fault);
  });

  it('C: a canary three times slower is aborted on its p95 against the current version', async () => {
    faults.set('1.3.0', { latencyFactor: 3 });
    const t0 = Date.now();
    await start('1.3.0');
    await until(async () => (await decisionsOf('1.3.0')).some((d) => d.action === 'abort'), 30_000);
    await until(() => devices.every((d) => d.version === '1.1.0'), 30_000);
    const decisions = await decisionsOf('1.3.0');
    const abort = decisions.find((d) => d.action === 'abort')!;
    expect(abort).toMatchObject({ reason: 'p95-ratio', previous: '1.1.0' });
    expect(abort.figures!.p95RatioPct).toBeGreaterThan(200);
    expect(abort.figures!.errorBp).toBeLessThanOrEqual(100);
    const fault = await firstRunOf('1.3.0');
    report('C', t0, abort.timeMs, Math.max(...devices.map((d) => d.switchedAt)), decisions, fault);
    expect(sendFailures).toEqual([]);
    expect(devices.reduce((n, d) => n + d.refreshFailures, 0)).toBe(0);
  });

  it('D: an A/B test assigns arms by stable bucket and shows the per-arm difference with intervals', async () => {
    // Arm B is 30% slower, with the same error rate.
    faults.set('1.4.0', { latencyFactor: 1.3 });
    const common = ['--repo', repo, '--keys', keys, '--name', MODEL, '--channel', CHANNEL];
    await outpost('ab', 'start', ...common, '--version', '1.4.0', '--share-bp', '5000');
    // Every device on its arm: a check under way may have read the metadata just before, so wait
    // for the next one to finish (on a loaded machine a tick takes longer than DEVICE_TICK_MS).
    const before = new Map(devices.map((d) => [d, d.checks]));
    await until(() => devices.every((d) => d.checks > before.get(d)! + 1), 30_000);
    // Measured from here: each device's runs count for its arm only.
    const t0 = Date.now();
    const armOf = new Map<string, string>();
    for (const d of devices) armOf.set(d.id, d.version!);
    // Enough runs on both arms for narrow intervals.
    await sleep(4 * DEVICE_TICK_MS);
    // Stable: no device changed arm while the test ran.
    expect(devices.filter((d) => armOf.get(d.id) !== d.version)).toEqual([]);
    const status = JSON.parse(
      await outpost('ab', 'status', '--repo', repo, '--data', join(dir, 'data'), '--since', String(t0), '--json'),
    ) as { tests: AbStatus[] };
    const t = status.tests[0]!;
    // The dashboard's API answers the same figures.
    const api = (await (
      await fetch(new URL(`/api/ab?since=${t0}`, serverUrl), { headers: { authorization: 'Bearer admin' } })
    ).json()) as { tests: AbStatus[] };
    expect(api.tests.map((x) => [x.a.version, x.b.version, x.shareBp])).toEqual([['1.1.0', '1.4.0', 5000]]);
    expect(api.tests[0]!.diff.p95.low!).toBeGreaterThan(0);
    const inB = devices.filter((d) => d.version === '1.4.0').length;
    expect(inB).toBeGreaterThan(FLEET * 0.35);
    expect(inB).toBeLessThan(FLEET * 0.65);
    expect(t).toMatchObject({ channel: CHANNEL, model: MODEL, shareBp: 5000 });
    expect(t.a).toMatchObject({ version: '1.1.0', devices: FLEET - inB });
    expect(t.b).toMatchObject({ version: '1.4.0', devices: inB });
    // The intervals resample these devices, each of which reported runs of its arm's version only.
    expect([t.a.reportingDevices, t.b.reportingDevices]).toEqual([FLEET - inB, inB]);
    expect(t.notes).toEqual([]);
    // B is slower at p50 and p95, and the 95% intervals of the differences (devices resampled)
    // exclude 0...
    expect(t.diff.p50.low!).toBeGreaterThan(0);
    expect(t.diff.p95.low!).toBeGreaterThan(0);
    // ...while the error rates (0.1% on both, drawn at random) differ by little: a 95% interval
    // excludes 0 in about 1 run in 20 by chance, so its bounds are not asserted, only its sense.
    expect(Math.abs(t.diff.errorRate.value!)).toBeLessThan(0.002);
    expect(t.diff.errorRate.low!).toBeLessThanOrEqual(t.diff.errorRate.value!);
    expect(t.diff.errorRate.high!).toBeGreaterThanOrEqual(t.diff.errorRate.value!);
    const f = (i: Interval, k = 1, u = 'ms') =>
      `${(i.value! * k).toFixed(3)} ${u} [${(i.low! * k).toFixed(3)}, ${(i.high! * k).toFixed(3)}]`;
    console.log(
      `fleet D: A/B, ${inB} of ${FLEET} devices on arm B (1.4.0, 1.3x latency planted)\n` +
        `  arm A ${t.a.runs} runs p50 ${f(t.a.p50)} p95 ${f(t.a.p95)} errors ${f(t.a.errorRate, 100, '%')}\n` +
        `  arm B ${t.b.runs} runs p50 ${f(t.b.p50)} p95 ${f(t.b.p95)} errors ${f(t.b.errorRate, 100, '%')}\n` +
        `  B − A: p50 ${f(t.diff.p50)}, p95 ${f(t.diff.p95)}, errors ${f(t.diff.errorRate, 100, '%')}`,
    );
    await outpost('ab', 'stop', ...common, '--keep', 'a');
    await until(() => devices.every((d) => d.version === '1.1.0'), 30_000);
    expect(await pointer()).not.toHaveProperty('ab');
  });

  it('E: a canary whose shadow runs disagree with the live model is aborted on shadow agreement', async () => {
    // As a shadow, 1.5.0 gives another top-1 answer on 20% of inputs; live, it runs fine.
    faults.set('1.5.0', { disagreeShare: 0.2 });
    const common = ['--repo', repo, '--keys', keys, '--name', MODEL, '--channel', CHANNEL];
    await outpost('shadow', 'start', ...common, '--version', '1.5.0', '--sample-bp', '1000');
    const t0 = Date.now();
    await start('1.5.0');
    await until(async () => (await decisionsOf('1.5.0')).some((d) => d.action === 'abort'), 30_000);
    await until(() => devices.every((d) => d.version === '1.1.0'), 30_000);
    const decisions = await decisionsOf('1.5.0');
    const abort = decisions.find((d) => d.action === 'abort')!;
    expect(abort).toMatchObject({ reason: 'shadow-agreement', toBp: 0, previous: '1.1.0' });
    expect(abort.figures!.shadowRuns).toBeGreaterThanOrEqual(300);
    // 80% planted agreement: the figure the controller stored.
    expect(abort.figures!.shadowAgreementBp).toBeGreaterThan(7500);
    expect(abort.figures!.shadowAgreementBp).toBeLessThan(8500);
    expect(abort.figures!.errorBp).toBeLessThanOrEqual(100);
    // Never widened on a low agreement while its evidence was still short of minRuns.
    expect(decisions.filter((d) => d.action === 'widen' && (d.figures!.shadowAgreementBp ?? 10000) < 9500)).toEqual([]);
    // The abort also stops the shadow of the version it aborted.
    expect(await pointer()).toEqual({
      kind: 'channel',
      channel: CHANNEL,
      model: MODEL,
      version: '1.1.0',
      rolloutBp: 10000,
    });
    const stillShadowing = devices.reduce((n, d) => n + d.shadowRuns, 0);
    await sleep(2 * DEVICE_TICK_MS);
    expect(devices.reduce((n, d) => n + d.shadowRuns, 0)).toBe(stillShadowing);
    report('E', t0, abort.timeMs, Math.max(...devices.map((d) => d.switchedAt)), decisions, await firstRunOf('1.5.0'));
  });

  it('F: blue-green: pointing the channel at the other version flips every device at its next check, and back', async () => {
    const common = ['--repo', repo, '--keys', keys, '--name', MODEL, '--channel', CHANNEL];
    // Timed from the moment the signed pointer is in the repository (devices can see it).
    const flip = async (version: string) => {
      await outpost('promote', ...common, '--version', version);
      const t0 = Date.now();
      // A check under way may have read the metadata just before: the next one must switch.
      const before = new Map(devices.map((d) => [d, d.checks]));
      await until(() => devices.every((d) => d.version === version), 30_000);
      expect(devices.filter((d) => d.switchedOnCheck > before.get(d)! + 1)).toEqual([]);
      return Math.max(...devices.map((d) => d.switchedAt)) - t0;
    };
    faults.delete('1.4.0');
    const green = await flip('1.4.0');
    // The blue version stays named by the pointer (previous): kept in every device's store.
    expect(await pointer()).toMatchObject({ version: '1.4.0', previous: '1.1.0', rolloutBp: 10000 });
    const blue = await flip('1.1.0');
    console.log(
      `fleet F: blue-green, ${FLEET} devices checking every ${DEVICE_TICK_MS} ms: ` +
        `1.1.0 → 1.4.0 every device in ${(green / 1000).toFixed(2)} s, back in ${(blue / 1000).toFixed(2)} s`,
    );
  });

  /** When the first device that ran `version` switched to it (the fault reached the fleet). */
  async function firstRunOf(version: string): Promise<number> {
    const starts = (await decisionsOf(version)).filter((d) => d.action === 'start');
    return starts[0]!.timeMs;
  }

  function report(name: string, t0: number, decided: number, fleet: number, ds: RolloutDecision[], fault?: number) {
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const lines = ds.map((d) => `    +${s(d.timeMs - t0)} ${d.action} ${d.fromBp}→${d.toBp} ${d.reason}: ${d.message}`);
    const what = fault === undefined ? 'publish→100%' : 'fault→abort';
    console.log(
      `fleet ${name}: ${FLEET} devices, device tick ${DEVICE_TICK_MS} ms, controller every ${CONTROLLER_INTERVAL_MS} ms\n` +
        `  ${what} decision ${s(decided - (fault ?? t0))}, ` +
        `${fault === undefined ? 'every device on it' : 'every device back'} ${s(fleet - (fault ?? t0))}\n` +
        lines.join('\n'),
    );
  }
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not reached within ${timeoutMs} ms`);
    await sleep(50);
  }
}
