import type { TelemetryUpdateEvent, TelemetryWorkerEvent } from '@outpost/core';
import { ATTR, EVENT, LOAD_DURATION_BOUNDS, METRIC, RUN_DURATION_BOUNDS, type DriftReference } from '@outpost/protocol';
import { binInto, kl, psi } from './drift.js';
import { Hist } from './hist.js';
import {
  DELTA,
  attributes,
  nanos,
  type HistogramDataPoint,
  type KeyValue,
  type LogRecord,
  type Metric,
  type NumberDataPoint,
} from './otlp.js';

/** What a series of figures is about. */
export interface SeriesKey {
  model: string;
  version: string;
  /** '' for a version without variants. */
  variant: string;
  /** '' for a load that failed before a backend was chosen. */
  backend: string;
}

/** One tensor's drift window. */
interface DriftWindow {
  tensor: string;
  edges: number[];
  reference: number[];
  counts: Float64Array;
  runs: number;
}

/** A closed drift window's figures. */
interface DriftFigure {
  series: Series;
  tensor: string;
  psi: number;
  kl: number;
  runs: number;
  at: number;
}

/**
 * The figures of one model / version / variant / backend since the last collection. The run
 * path touches only plain fields and a typed array here: no allocation, no IndexedDB.
 */
export class Series {
  readonly attrs: KeyValue[];
  readonly run = new Hist(RUN_DURATION_BOUNDS);
  readonly loadCold = new Hist(LOAD_DURATION_BOUNDS);
  readonly loadWarm = new Hist(LOAD_DURATION_BOUNDS);
  runs = 0;
  readonly errors = new Map<string, number>();
  fallbacks = 0;
  cacheHits = 0;
  /** Output (and opted-in input) windows, when the version has a reference. */
  drift: DriftWindow[] = [];

  constructor(readonly key: SeriesKey) {
    this.attrs = attributes({
      [ATTR.model]: key.model,
      [ATTR.version]: key.version,
      [ATTR.variant]: key.variant,
      [ATTR.backend]: key.backend,
    });
  }

  get empty(): boolean {
    return (
      this.runs === 0 &&
      this.run.count === 0 &&
      this.errors.size === 0 &&
      this.fallbacks === 0 &&
      this.cacheHits === 0 &&
      this.loadCold.count === 0 &&
      this.loadWarm.count === 0
    );
  }

  reset(): void {
    this.run.reset();
    this.loadCold.reset();
    this.loadWarm.reset();
    this.runs = 0;
    this.errors.clear();
    this.fallbacks = 0;
    this.cacheHits = 0;
  }
}

/** What {@link Recorder.collect} hands over: OTLP metrics and log records since the last call. */
export interface Collected {
  metrics: Metric[];
  logs: LogRecord[];
}

/** Log records kept in memory at most between two collections; older ones are dropped (counted). */
const MAX_PENDING_LOGS = 1000;

/**
 * Telemetry recorded in memory where runs happen (the worker), aggregated per series and
 * handed over as OTLP metrics and logs on a timer. Runs and errors are all counted; the run
 * duration histogram and drift windows take a sample of runs (`sampleRate`, reported in the
 * resource); loads and update events are not sampled.
 */
export class Recorder {
  private readonly series = new Map<string, Series>();
  private readonly references = new Map<string, DriftReference>();
  private logs: LogRecord[] = [];
  private drifts: DriftFigure[] = [];
  private windowStart: number;
  /** Log records dropped in memory (over {@link MAX_PENDING_LOGS}), reported with the drop counter. */
  droppedInMemory = 0;

  constructor(
    private readonly options: {
      sampleRate: number;
      drift: { threshold: number; windowRuns: number; inputs: boolean };
      now?: () => number;
      random?: () => number;
    },
  ) {
    this.windowStart = this.now();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The series of a key, made on first use; the run path keeps the object and skips this lookup. */
  seriesOf(key: SeriesKey): Series {
    const id = `${key.model}\u0000${key.version}\u0000${key.variant}\u0000${key.backend}`;
    let s = this.series.get(id);
    if (!s) {
      s = new Series(key);
      this.series.set(id, s);
      this.attachDrift(s);
    }
    return s;
  }

  /** Sets the reference distribution of a model version: its outputs are then summarised per window. */
  setReference(model: string, version: string, reference: DriftReference): void {
    this.references.set(`${model}\u0000${version}`, reference);
    for (const s of this.series.values()) if (s.key.model === model && s.key.version === version) this.attachDrift(s);
  }

  private attachDrift(s: Series): void {
    const ref = this.references.get(`${s.key.model}\u0000${s.key.version}`);
    if (!ref) return;
    s.drift = Object.entries(ref.tensors)
      .filter(([, t]) => t.edges.length === t.counts.length + 1 && t.counts.length > 0)
      .map(([tensor, t]) => ({
        tensor,
        edges: t.edges,
        reference: t.counts,
        counts: new Float64Array(t.counts.length),
        runs: 0,
      }));
  }

  /** Whether this run is timed and binned for drift (the sample decision, made once per run). */
  sampled(): boolean {
    const rate = this.options.sampleRate;
    return rate >= 1 || (rate > 0 && (this.options.random ?? Math.random)() < rate);
  }

  /**
   * A run that returned: every run is counted (a counter costs nothing), so run and error counts
   * are exact at any sample rate; only sampled runs bring their duration `ms`.
   */
  run(s: Series, ms?: number): void {
    s.runs++;
    if (ms !== undefined) s.run.add(ms);
  }

  /** A run that failed with `code`: every failure is counted, sampled or not. */
  error(s: Series, code: string): void {
    s.errors.set(code, (s.errors.get(code) ?? 0) + 1);
  }

  /**
   * Bins a sampled run's tensors into the series' drift windows (outputs; inputs only when the
   * app opted in), closing a window once it holds `windowRuns` runs.
   */
  tensors(s: Series, outputs: Record<string, { data: ArrayLike<number | bigint> }>, inputs?: typeof outputs): void {
    if (s.drift.length === 0) return;
    for (const w of s.drift) {
      const t = outputs[w.tensor] ?? (this.options.drift.inputs ? inputs?.[w.tensor] : undefined);
      if (!t) continue;
      binInto(w.counts, w.edges, t.data);
      if (++w.runs >= this.options.drift.windowRuns) this.closeWindow(s, w);
    }
  }

  private closeWindow(s: Series, w: DriftWindow): void {
    const at = this.now();
    const fig = {
      series: s,
      tensor: w.tensor,
      psi: psi(w.counts, w.reference),
      kl: kl(w.counts, w.reference),
      runs: w.runs,
      at,
    };
    this.drifts.push(fig);
    if (fig.psi > this.options.drift.threshold) {
      this.log(EVENT.drift, 13, 'WARN', {
        ...attrsOf(s.attrs),
        [ATTR.tensor]: w.tensor,
        [ATTR.driftPsi]: fig.psi,
        [ATTR.driftKl]: fig.kl,
        [ATTR.driftRuns]: w.runs,
      });
    }
    w.counts.fill(0);
    w.runs = 0;
  }

  /** A load: `cold` when downloaded, `warm` from the store (a cache hit). */
  load(s: Series, ms: number, kind: 'cold' | 'warm', fellBack: boolean): void {
    (kind === 'cold' ? s.loadCold : s.loadWarm).add(ms);
    if (kind === 'warm') s.cacheHits++;
    if (fellBack) s.fallbacks++;
  }

  /** A preferred backend passed over at run time (a WebGPU first run that failed). */
  fallback(s: Series): void {
    s.fallbacks++;
  }

  /** An update event, as an OTLP log record. */
  update(e: TelemetryUpdateEvent): void {
    const failed = e.kind === 'failed' || e.kind === 'rolled-back';
    this.log(EVENT.update, failed ? 13 : 9, failed ? 'WARN' : 'INFO', {
      [ATTR.model]: e.name,
      [ATTR.version]: e.version,
      [ATTR.updateKind]: e.kind,
      [ATTR.fromVersion]: e.from,
      [ATTR.errorCode]: e.errorCode,
    });
  }

  /** What worker supervision did (a log record, like update events). */
  worker(e: TelemetryWorkerEvent): void {
    this.log(EVENT.worker, e.kind === 'breaker-open' ? 17 : 13, e.kind === 'breaker-open' ? 'ERROR' : 'WARN', {
      [ATTR.workerEvent]: e.kind,
      [ATTR.workerCause]: e.cause,
      [ATTR.workerRestarts]: e.restarts,
      [ATTR.workerModels]: e.models,
    });
  }

  private log(
    name: string,
    severityNumber: number,
    severityText: string,
    attrs: Record<string, string | number | undefined>,
  ) {
    if (this.logs.length >= MAX_PENDING_LOGS) {
      this.logs.shift();
      this.droppedInMemory++;
    }
    const t = nanos(this.now());
    this.logs.push({
      timeUnixNano: t,
      observedTimeUnixNano: t,
      severityNumber,
      severityText,
      eventName: name,
      attributes: attributes({ 'event.name': name, ...attrs }),
    });
  }

  /**
   * Everything recorded since the last call, as OTLP metrics (delta temporality) and log
   * records, and resets the aggregates. `gauges` adds point-in-time figures (storage used).
   */
  collect(gauges: { storageBytes?: number; dropped?: number } = {}): Collected {
    const start = this.windowStart;
    const end = Math.max(this.now(), start + 0.001);
    this.windowStart = end;
    const runDuration: HistogramDataPoint[] = [];
    const loadDuration: HistogramDataPoint[] = [];
    const runs: NumberDataPoint[] = [];
    const errors: NumberDataPoint[] = [];
    const fallbacks: NumberDataPoint[] = [];
    const cacheHits: NumberDataPoint[] = [];
    const sum = (attrs: KeyValue[], n: number): NumberDataPoint => ({
      ...(attrs.length ? { attributes: attrs } : {}),
      startTimeUnixNano: nanos(start),
      timeUnixNano: nanos(end),
      asInt: String(n),
    });
    for (const s of this.series.values()) {
      if (s.empty) continue;
      if (s.run.count > 0) runDuration.push(s.run.point(s.attrs, start, end));
      if (s.loadCold.count > 0) {
        loadDuration.push(s.loadCold.point([...s.attrs, ...attributes({ [ATTR.loadKind]: 'cold' })], start, end));
      }
      if (s.loadWarm.count > 0) {
        loadDuration.push(s.loadWarm.point([...s.attrs, ...attributes({ [ATTR.loadKind]: 'warm' })], start, end));
      }
      if (s.runs > 0) runs.push(sum(s.attrs, s.runs));
      for (const [code, n] of s.errors) errors.push(sum([...s.attrs, ...attributes({ [ATTR.errorCode]: code })], n));
      if (s.fallbacks > 0) fallbacks.push(sum(s.attrs, s.fallbacks));
      if (s.cacheHits > 0) cacheHits.push(sum(s.attrs, s.cacheHits));
      s.reset();
    }
    const metrics: Metric[] = [];
    const hist = (name: string, dataPoints: HistogramDataPoint[]) => {
      if (dataPoints.length)
        metrics.push({ name, unit: 'ms', histogram: { aggregationTemporality: DELTA, dataPoints } });
    };
    const counter = (name: string, dataPoints: NumberDataPoint[]) => {
      if (dataPoints.length) {
        metrics.push({ name, unit: '1', sum: { aggregationTemporality: DELTA, isMonotonic: true, dataPoints } });
      }
    };
    hist(METRIC.runDuration, runDuration);
    hist(METRIC.loadDuration, loadDuration);
    counter(METRIC.runs, runs);
    counter(METRIC.errors, errors);
    counter(METRIC.fallbacks, fallbacks);
    counter(METRIC.cacheHits, cacheHits);
    const dropped = (gauges.dropped ?? 0) + this.droppedInMemory;
    this.droppedInMemory = 0;
    counter(METRIC.dropped, dropped > 0 ? [sum([], dropped)] : []);
    if (gauges.storageBytes !== undefined) {
      metrics.push({
        name: METRIC.storageBytes,
        unit: 'By',
        gauge: { dataPoints: [{ timeUnixNano: nanos(end), asInt: String(gauges.storageBytes) }] },
      });
    }
    if (this.drifts.length) {
      const point = (f: DriftFigure, v: number): NumberDataPoint => ({
        attributes: [...f.series.attrs, ...attributes({ [ATTR.tensor]: f.tensor })],
        timeUnixNano: nanos(f.at),
        asDouble: v,
      });
      metrics.push({
        name: METRIC.driftPsi,
        unit: '1',
        gauge: { dataPoints: this.drifts.map((f) => point(f, f.psi)) },
      });
      metrics.push({ name: METRIC.driftKl, unit: '1', gauge: { dataPoints: this.drifts.map((f) => point(f, f.kl)) } });
      this.drifts = [];
    }
    const logs = this.logs;
    this.logs = [];
    return { metrics, logs };
  }
}

function attrsOf(list: KeyValue[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) if ('stringValue' in a.value) out[a.key] = a.value.stringValue;
  return out;
}
