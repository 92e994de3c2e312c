import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ATTR, METRIC, SHADOW_AGREEMENT_BOUNDS, type RolloutPlan } from '@outpost/protocol';
import { describe, expect, it } from 'vitest';
import { metricRows, type MetricsRequest } from './otlp.js';
import { judgeRollout } from './rollout.js';
import { openSqliteStorage } from './sqlite.js';
import { differenceInterval, proportionInterval, quantileInterval } from './strategies.js';
import { metricsBody, resource } from './testing/otlp-bodies.js';
import { rolloutFigures as figures } from './testing/rollout-figures.js';

const PLAN: RolloutPlan = { steps: [1000, 10000], minDevices: 3, minRuns: 50, minShadowAgreementBp: 9500 };

describe('confidence intervals of the A/B figures', () => {
  it('a proportion: Wald interval, clamped to [0, 1]', () => {
    const p = proportionInterval(50, 1000);
    expect(p.value).toBe(0.05);
    // 1.96 * sqrt(0.05 * 0.95 / 1000) = 0.01351
    expect(p.low).toBeCloseTo(0.05 - 0.01351, 4);
    expect(p.high).toBeCloseTo(0.05 + 0.01351, 4);
    expect(proportionInterval(0, 10).low).toBe(0);
    expect(proportionInterval(0, 0).value).toBeNull();
  });

  it('a quantile: order-statistic ranks read from the histogram; narrower with more runs', () => {
    const bounds = [1, 2, 3, 4];
    // Uniform over (0, 4]: the median is 2.
    const small = { bounds, buckets: [25, 25, 25, 25, 0] };
    const large = { bounds, buckets: [2500, 2500, 2500, 2500, 0] };
    const s = quantileInterval(small, 0.5);
    const l = quantileInterval(large, 0.5);
    expect(s.value).toBeCloseTo(2, 6);
    expect(l.value).toBeCloseTo(2, 6);
    // n = 100: ranks 50 ± 9.8 → 1.61 .. 2.39; n = 10000: 5000 ± 98 → 1.96 .. 2.04.
    expect(s.low).toBeCloseTo(1.608, 2);
    expect(s.high).toBeCloseTo(2.392, 2);
    expect(l.high! - l.low!).toBeLessThan((s.high! - s.low!) / 5);
    expect(quantileInterval(null, 0.5).value).toBeNull();
  });

  it('a difference: B minus A, half-widths in quadrature; an interval excluding 0 when the arms differ', () => {
    const d = differenceInterval({ value: 10, low: 9, high: 11 }, { value: 13, low: 12, high: 14 });
    expect(d.value).toBe(3);
    expect(d.low).toBeCloseTo(3 - Math.SQRT2, 6);
    expect(d.high).toBeCloseTo(3 + Math.SQRT2, 6);
    const same = differenceInterval({ value: 10, low: 9, high: 11 }, { value: 10.5, low: 9.5, high: 11.5 });
    expect(same.low! < 0 && same.high! > 0).toBe(true);
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
