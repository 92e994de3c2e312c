import { ATTR, METRIC, SHADOW_AGREEMENT_BOUNDS, SHADOW_RATIO_BOUNDS } from '@outpost/protocol';
import { Hist } from './hist.js';
import { DELTA, attributes, nanos, type HistogramDataPoint, type Metric, type NumberDataPoint } from './otlp.js';

/** What a shadow figure is about: the shadow version (as it ran) and the live version it was compared with. */
export interface ShadowKey {
  model: string;
  /** The shadow's version. */
  version: string;
  variant: string;
  backend: string;
  /** The live version whose outputs it was compared with. */
  liveVersion: string;
}

interface ShadowSeries {
  key: ShadowKey;
  agreement: Hist;
  ratio: Hist;
  skipped: number;
  errors: Map<string, number>;
}

/**
 * A shadow's figures, kept in memory where the live model runs (the shadow worker only computes)
 * and collected with the rest of the telemetry: per shadow run its agreement with the live output
 * and its run time over the live run's; sampled runs skipped because the shadow was busy; shadow
 * runs that failed. Never an input or an output: only these figures leave the device.
 */
export class ShadowStats {
  private readonly series = new Map<string, ShadowSeries>();
  private windowStart: number;

  constructor(private readonly now: () => number = Date.now) {
    this.windowStart = now();
  }

  private of(key: ShadowKey): ShadowSeries {
    const id = `${key.model}\u0000${key.version}\u0000${key.variant}\u0000${key.backend}\u0000${key.liveVersion}`;
    let s = this.series.get(id);
    if (!s) {
      s = {
        key,
        agreement: new Hist(SHADOW_AGREEMENT_BOUNDS),
        ratio: new Hist(SHADOW_RATIO_BOUNDS),
        skipped: 0,
        errors: new Map(),
      };
      this.series.set(id, s);
    }
    return s;
  }

  /** One shadow run compared: agreement 0..1, shadow ms / live ms. */
  compared(key: ShadowKey, agreement: number, ratio: number): void {
    const s = this.of(key);
    s.agreement.add(agreement);
    if (Number.isFinite(ratio)) s.ratio.add(ratio);
  }

  /** A sampled run not shadowed: the shadow was still busy with an earlier one. */
  skipped(key: ShadowKey): void {
    this.of(key).skipped++;
  }

  /** A shadow run that failed with `code`. */
  failed(key: ShadowKey, code: string): void {
    const s = this.of(key);
    s.errors.set(code, (s.errors.get(code) ?? 0) + 1);
  }

  /** The figures since the last call, as OTLP metrics (delta), and a fresh window. */
  collect(): Metric[] {
    const start = this.windowStart;
    const end = Math.max(this.now(), start + 0.001);
    this.windowStart = end;
    const agreement: HistogramDataPoint[] = [];
    const ratio: HistogramDataPoint[] = [];
    const skipped: NumberDataPoint[] = [];
    const errors: NumberDataPoint[] = [];
    const sum = (attrs: ReturnType<typeof attributes>, n: number): NumberDataPoint => ({
      attributes: attrs,
      startTimeUnixNano: nanos(start),
      timeUnixNano: nanos(end),
      asInt: String(n),
    });
    for (const s of this.series.values()) {
      const attrs = attributes({
        [ATTR.model]: s.key.model,
        [ATTR.version]: s.key.version,
        [ATTR.variant]: s.key.variant,
        [ATTR.backend]: s.key.backend,
        [ATTR.shadowLiveVersion]: s.key.liveVersion,
      });
      if (s.agreement.count > 0) agreement.push(s.agreement.point(attrs, start, end));
      if (s.ratio.count > 0) ratio.push(s.ratio.point(attrs, start, end));
      if (s.skipped > 0) skipped.push(sum(attrs, s.skipped));
      for (const [code, n] of s.errors) errors.push(sum([...attrs, ...attributes({ [ATTR.errorCode]: code })], n));
    }
    this.series.clear();
    const metrics: Metric[] = [];
    if (agreement.length) {
      metrics.push({
        name: METRIC.shadowAgreement,
        unit: '1',
        histogram: { aggregationTemporality: DELTA, dataPoints: agreement },
      });
    }
    if (ratio.length) {
      metrics.push({
        name: METRIC.shadowLatencyRatio,
        unit: '1',
        histogram: { aggregationTemporality: DELTA, dataPoints: ratio },
      });
    }
    for (const [name, dataPoints] of [
      [METRIC.shadowSkipped, skipped],
      [METRIC.shadowErrors, errors],
    ] as const) {
      if (dataPoints.length) {
        metrics.push({ name, unit: '1', sum: { aggregationTemporality: DELTA, isMonotonic: true, dataPoints } });
      }
    }
    return metrics;
  }
}
