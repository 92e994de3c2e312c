import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTR, METRIC, RUN_DURATION_BOUNDS, SHADOW_AGREEMENT_BOUNDS, type RolloutPlan } from '@outpost/protocol';
import { describe, expect, it } from 'vitest';
import { metricRows, type MetricsRequest } from './otlp.js';
import { judgeRollout } from './rollout.js';
import { openSqliteStorage } from './sqlite.js';
import { histogramQuantile, type DeviceFigures } from './storage.js';
import { compareArms, type Interval } from './strategies.js';
import { metricsBody, resource } from './testing/otlp-bodies.js';
import { rolloutFigures as figures } from './testing/rollout-figures.js';
import { ENGINES, testStorages } from './testing/storages.js';

const PLAN: RolloutPlan = { steps: [1000, 10000], minDevices: 3, minRuns: 50, minShadowAgreementBp: 9500 };

//#region A/B fixtures
/** A simulated device: `runs` timed runs, a share `slow` of them 7 ms, the others 3.5 ms, and `errors` failures. */
interface Dev {
  id: string;
  runs: number;
  slow: number;
  errors: number;
}

const FAST = RUN_DURATION_BOUNDS.findIndex((b) => b >= 3.5);
const SLOW = RUN_DURATION_BOUNDS.findIndex((b) => b >= 7);

/** The device's figures as {@link StorageAdapter.deviceFigures} returns them. */
function figuresOf(d: Dev): DeviceFigures {
  const buckets = new Array<number>(RUN_DURATION_BOUNDS.length + 1).fill(0);
  buckets[SLOW] = Math.round(d.runs * d.slow);
  buckets[FAST] = d.runs - buckets[SLOW];
  return {
    deviceId: d.id,
    runs: d.runs,
    errors: d.errors,
    runHistogram: { bounds: [...RUN_DURATION_BOUNDS], buckets },
  };
}

/** `n` devices whose slow shares spread evenly over [lo, hi] (devices differ), with `errorRate` of failures. */
function fleet(prefix: string, n: number, runs: number, lo: number, hi: number, errorRate: number): Dev[] {
  return Array.from({ length: n }, (_, i) => {
    // A fixed permutation, so that slow share and error count are not in step.
    const k = (i * 7) % n;
    return {
      id: `${prefix}-${String(i).padStart(4, '0')}`,
      runs,
      slow: lo + ((hi - lo) * k) / Math.max(1, n - 1),
      errors: Math.round(runs * errorRate * (0.5 + (i % 3) / 2)),
    };
  });
}

/**
 * `n` devices drawn at random (seeded): each its own slow share, uniform in [lo, hi], and its own
 * error rate, uniform in [errorRate / 2, 3 · errorRate / 2]; its runs drawn from those.
 */
function randomFleet(prefix: string, n: number, runs: number, lo: number, hi: number, errorRate: number, seed: number) {
  let x = seed >>> 0;
  // An LCG (Numerical Recipes' constants): plenty for a fixture.
  const random = () => (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const draws = (k: number, p: number) => Array.from({ length: k }, random).filter((u) => u < p).length;
  return Array.from({ length: n }, (_, i): Dev => {
    const slow = lo + (hi - lo) * random();
    const rate = errorRate * (0.5 + random());
    return {
      id: `${prefix}-${String(i).padStart(4, '0')}`,
      runs,
      slow: draws(runs, slow) / runs,
      errors: draws(runs, rate),
    };
  });
}

/**
 * Arm B's runs come mostly from one slow, failing device: 20 devices of 500 runs in each arm, the
 * same mix of devices in both, plus in arm B one device with 20,000 runs, 90% of them slow and 1.5%
 * failing.
 */
const A_DOMINATED = fleet('a', 20, 500, 0.1, 0.4, 0.005);
const B_DOMINATED = [
  ...fleet('b', 20, 500, 0.1, 0.4, 0.005).slice(1),
  { id: 'b-slow-phone', runs: 20_000, slow: 0.9, errors: 300 },
];

/**
 * The intervals as they were before devices were taken into account: every run independent. Error
 * rates Wald; quantiles from the order statistic's binomial ranks n·q ± 1.96·√(n·q·(1−q)); the
 * differences' half-widths in quadrature.
 */
function perRun(a: Dev[], b: Dev[]) {
  const z = 1.959964;
  const arm = (ds: Dev[]) => {
    const e = ds.reduce((x, d) => x + d.errors, 0);
    const t = ds.reduce((x, d) => x + d.runs + d.errors, 0);
    const p = e / t;
    const buckets = ds.map((d) => figuresOf(d).runHistogram!.buckets).reduce((x, y) => x.map((c, i) => c + y[i]!));
    const n = buckets.reduce((x, y) => x + y, 0);
    const quantile = (q: number) => {
      const half = z * Math.sqrt(n * q * (1 - q));
      const at = (r: number) => histogramQuantile(RUN_DURATION_BOUNDS, buckets, r / n)!;
      return { value: at(n * q), half: (at(n * q + half) - at(n * q - half)) / 2 };
    };
    return { errorRate: { value: p, half: z * Math.sqrt((p * (1 - p)) / t) }, p50: quantile(0.5), p95: quantile(0.95) };
  };
  const [x, y] = [arm(a), arm(b)];
  const diff = (k: 'errorRate' | 'p50' | 'p95') => {
    const d = y[k].value - x[k].value;
    const half = Math.hypot(x[k].half, y[k].half);
    return { value: d, low: d - half, high: d + half };
  };
  return { errorRate: diff('errorRate'), p50: diff('p50'), p95: diff('p95') };
}

const compare = (a: Dev[], b: Dev[]) =>
  compareArms({ version: '1.0.0', devices: a.map(figuresOf) }, { version: '1.1.0', devices: b.map(figuresOf) });
const excludes0 = (i: Interval) => i.low! > 0 || i.high! < 0;
const straddles0 = (i: Interval) => i.low! < 0 && i.high! > 0;
//#endregion

describe('A/B intervals clustered by device', () => {
  it('one slow device sending most of arm B’s runs: significant per run, not per device', () => {
    const old = perRun(A_DOMINATED, B_DOMINATED);
    const c = compare(A_DOMINATED, B_DOMINATED);
    // Runs as independent: B looks slower and failing more, with narrow intervals away from 0.
    expect(excludes0(old.p50) && excludes0(old.p95) && excludes0(old.errorRate)).toBe(true);
    // The same point figures...
    expect(c.diff.p50.value).toBeCloseTo(old.p50.value, 9);
    expect(c.diff.errorRate.value).toBeCloseTo(old.errorRate.value, 12);
    expect(c.b).toMatchObject({ reportingDevices: 20, runs: 29_500, timedRuns: 29_500 });
    // ...but resampling devices, arm B without its slow phone is arm A: every difference is within chance.
    expect(straddles0(c.diff.p50)).toBe(true);
    expect(straddles0(c.diff.p95)).toBe(true);
    expect(straddles0(c.diff.errorRate)).toBe(true);
    expect(c.diff.p50.high! - c.diff.p50.low!).toBeGreaterThan(10 * (old.p50.high - old.p50.low));
    expect(c.notes).toEqual([]);
  });

  it('many devices and a real difference: the clustered intervals exclude 0, wider than per run', () => {
    // 200 devices per arm; B's devices slower (40-70% of slow runs, not 10-40%) and failing 2%, not 0.5%.
    const a = randomFleet('a', 200, 100, 0.1, 0.4, 0.005, 1);
    const b = randomFleet('b', 200, 100, 0.4, 0.7, 0.02, 2);
    const c = compare(a, b);
    const old = perRun(a, b);
    for (const k of ['errorRate', 'p50', 'p95'] as const) {
      expect(excludes0(c.diff[k]), k).toBe(true);
      expect(c.diff[k].low! > 0, k).toBe(true);
      expect(c.diff[k].value!, k).toBeCloseTo(old[k].value, 9);
      expect(c.diff[k].low! <= c.diff[k].value! && c.diff[k].value! <= c.diff[k].high!, k).toBe(true);
    }
    // Devices differ from each other more than their runs' sampling says: wider than per run.
    expect(c.diff.p50.high! - c.diff.p50.low!).toBeGreaterThan(old.p50.high - old.p50.low);
    expect(c.a.p50.low! < c.a.p50.value! && c.a.p50.value! < c.a.p50.high!).toBe(true);
    expect(c.a.errorRate.low!).toBeGreaterThan(0);
  });

  it('deterministic: the same devices, in any order, give the same intervals', () => {
    const first = compare(A_DOMINATED, B_DOMINATED);
    expect(compare(A_DOMINATED, B_DOMINATED)).toEqual(first);
    expect(compare([...A_DOMINATED].reverse(), [...B_DOMINATED].reverse())).toEqual(first);
    // Arm A's resamples do not depend on arm B's devices.
    expect(compare(A_DOMINATED, B_DOMINATED.slice(1)).a).toEqual(first.a);
  });

  it('notes an arm with fewer than 10 devices; from one device, no interval', () => {
    const c = compare(fleet('a', 3, 500, 0.1, 0.4, 0.005), fleet('b', 1, 500, 0.1, 0.4, 0.005));
    expect(c.notes).toHaveLength(2);
    expect(c.notes[0]).toMatch(/^arm A \(1\.0\.0\): 3 devices reported runs, fewer than 10: .*unreliable/);
    expect(c.notes[1]).toMatch(/^arm B \(1\.1\.0\): 1 device reported runs, fewer than 10: no interval/);
    expect(c.a.p50.low).not.toBeNull();
    expect(c.b.p50).toMatchObject({ low: null, high: null });
    expect(c.b.p50.value).not.toBeNull();
    expect(c.diff.p50).toMatchObject({ low: null, high: null });
    expect(compare([], fleet('b', 12, 10, 0, 0, 0)).diff.p50).toEqual({ value: null, low: null, high: null });
  });
});

const storages = testStorages();

describe.each(ENGINES)('per-device figures of a version in %s', (engine) => {
  it('reads each device’s runs, errors and histogram; they add up to the version’s figures', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-ab-'));
    const storage = await storages.open(engine, dir);
    try {
      const now = Date.now();
      const send = async (body: unknown) => {
        const rows = metricRows(body as MetricsRequest, now);
        await storage.ingest({ id: randomUUID(), kind: 'metrics', receivedAtMs: now, events: [], ...rows });
      };
      const ms = (d: Dev) => [
        ...Array<number>(Math.round(d.runs * d.slow)).fill(7),
        ...Array<number>(d.runs - Math.round(d.runs * d.slow)).fill(3.5),
      ];
      // The dominated fixture, each device in two batches (and on two backends), plus another version.
      for (const [version, devs] of [
        ['1.0.0', A_DOMINATED],
        ['1.1.0', B_DOMINATED],
      ] as const) {
        for (const d of devs) {
          const durations = ms(d);
          const half = Math.floor(durations.length / 2);
          await send(metricsBody(d.id, randomUUID(), { version, durations: durations.slice(0, half) }));
          await send(
            metricsBody(d.id, randomUUID(), {
              version,
              backend: 'webgpu',
              durations: durations.slice(half),
              errors: { RUN_FAILED: d.errors },
            }),
          );
        }
      }
      await send(metricsBody('a-0000', randomUUID(), { version: '2.0.0', durations: [100] }));
      const q = { sinceMs: now - 3_600_000, model: 'digits' };
      const onB = await storage.deviceFigures({ ...q, version: '1.1.0' });
      expect(onB.map((d) => d.deviceId)).toEqual(B_DOMINATED.map((d) => d.id).sort());
      expect(onB).toEqual(B_DOMINATED.map(figuresOf).sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1)));
      const onA = await storage.deviceFigures({ ...q, version: '1.0.0' });
      const v = (await storage.versionFigures(q)).find((f) => f.version === '1.0.0')!;
      const sum = (k: 'runs' | 'errors') => onA.reduce((x, d) => x + d[k], 0);
      expect([sum('runs'), sum('errors')]).toEqual([v.runs, v.errors]);
      expect(v.runHistogram!.buckets).toEqual(
        onA.map((d) => d.runHistogram!.buckets).reduce((x, y) => x.map((c, i) => c + y[i]!)),
      );
      expect(await storage.deviceFigures({ ...q, version: '9.9.9' })).toEqual([]);
      expect(await storage.deviceFigures({ ...q, model: 'other', version: '1.0.0' })).toEqual([]);
      // Through storage, the same clustered verdict as from the devices' figures.
      const c = compareArms({ version: '1.0.0', devices: onA }, { version: '1.1.0', devices: onB });
      expect(c).toEqual(compare(A_DOMINATED, B_DOMINATED));
      expect(straddles0(c.diff.p50)).toBe(true);
    } finally {
      await storage.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('shadow agreement in the rollout controller', () => {
  it('aborts a canary whose shadow runs disagree, once there are minRuns of them; not before', () => {
    expect(judgeRollout(PLAN, 1000, figures({ shadowRuns: 49, shadowAgreementBp: 5000 }), 0).action).toBe('complete');
    expect(judgeRollout(PLAN, 1000, figures({ shadowRuns: 200, shadowAgreementBp: 9400 }), 0)).toMatchObject({
      action: 'abort',
      reason: 'shadow-agreement',
      toBp: 0,
    });
    expect(judgeRollout(PLAN, 1000, figures({ shadowRuns: 200, shadowAgreementBp: 9600 }), 0).action).toBe('complete');
    // With the channel shadowing the canary, widening waits for the shadow's evidence.
    expect(judgeRollout(PLAN, 1000, figures({ shadowRuns: 49, shadowAgreementBp: 5000 }), 0, true)).toMatchObject({
      action: 'wait',
      reason: 'too-few-shadow-runs',
    });
    expect(judgeRollout(PLAN, 1000, figures({ shadowRuns: 60, shadowAgreementBp: 9900 }), 0, true).action).toBe(
      'complete',
    );
    // A plan without the threshold ignores shadow figures.
    const plain: RolloutPlan = { ...PLAN };
    delete plain.minShadowAgreementBp;
    expect(judgeRollout(plain, 1000, figures({ shadowRuns: 200, shadowAgreementBp: 0 }), 0).action).toBe('complete');
  });

  it('stores shadow figures under the shadow version without counting the device as running it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-shadow-'));
    const storage = await openSqliteStorage(join(dir, 'outpost.db'));
    try {
      const now = Date.now();
      const nanos = (ms: number) => `${ms}000000`;
      const live = metricsBody('dev-1', randomUUID(), { version: '1.0.0' });
      // 10 shadow runs of 1.1.0: 8 agree fully, 2 not at all (mean 0.8); ratio mean 1.5.
      const buckets = new Array<number>(SHADOW_AGREEMENT_BOUNDS.length + 1).fill(0);
      buckets[0] = 2;
      buckets[SHADOW_AGREEMENT_BOUNDS.length - 1] = 8;
      const attrs = [
        { key: ATTR.model, value: { stringValue: 'digits' } },
        { key: ATTR.version, value: { stringValue: '1.1.0' } },
        { key: ATTR.variant, value: { stringValue: 'fp32' } },
        { key: ATTR.backend, value: { stringValue: 'wasm' } },
        { key: ATTR.shadowLiveVersion, value: { stringValue: '1.0.0' } },
      ];
      const hist = (name: string, sum: number, b: number[], bounds: readonly number[]) => ({
        name,
        unit: '1',
        histogram: {
          aggregationTemporality: 1,
          dataPoints: [
            {
              attributes: attrs,
              startTimeUnixNano: nanos(now - 1000),
              timeUnixNano: nanos(now),
              count: '10',
              sum,
              bucketCounts: b.map(String),
              explicitBounds: [...bounds],
            },
          ],
        },
      });
      const shadow = {
        resourceMetrics: [
          {
            resource: resource('dev-1', randomUUID()),
            scopeMetrics: [
              {
                metrics: [
                  hist(METRIC.shadowAgreement, 8, buckets, SHADOW_AGREEMENT_BOUNDS),
                  hist(METRIC.shadowLatencyRatio, 15, [0, 10], [1]),
                ],
              },
            ],
          },
        ],
      };
      for (const body of [live, shadow]) {
        const rows = metricRows(body as MetricsRequest, now);
        await storage.ingest({ id: randomUUID(), kind: 'metrics', receivedAtMs: now, events: [], ...rows });
      }
      const q = { sinceMs: now - 3_600_000, model: 'digits' };
      const versions = await storage.versions(q);
      expect(versions.map((v) => v.version)).toEqual(['1.0.0']);
      const f = (await storage.versionFigures(q)).find((x) => x.version === '1.1.0')!;
      expect(f).toMatchObject({ runs: 0, shadowRuns: 10, shadowRatioMean: 1.5 });
      expect(f.shadowAgreementMean).toBeCloseTo(0.8, 9);
    } finally {
      await storage.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
