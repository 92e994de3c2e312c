import { RESOURCE } from '@outpost/protocol';

/*
 * The OTLP/HTTP JSON encoding (opentelemetry-proto's ExportMetricsServiceRequest and
 * ExportLogsServiceRequest under the protobuf JSON mapping, as OTLP/JSON specifies it: field
 * names in lowerCamelCase, 64-bit integers as decimal strings, enums as integers). Written by
 * hand to keep the OpenTelemetry SDK out of the worker; otlp.test.ts checks every shape built
 * here against the official .proto files.
 */

//#region OTLP JSON types (the subset Outpost sends)
export type AnyValue =
  { stringValue: string } | { intValue: string } | { doubleValue: number } | { boolValue: boolean };
export interface KeyValue {
  key: string;
  value: AnyValue;
}
export interface Resource {
  attributes: KeyValue[];
}
export interface Scope {
  name: string;
  version: string;
}
export interface NumberDataPoint {
  /** Omitted when empty (as protobuf's JSON mapping writes an empty repeated field). */
  attributes?: KeyValue[];
  startTimeUnixNano?: string;
  timeUnixNano: string;
  asInt?: string;
  asDouble?: number;
}
export interface HistogramDataPoint {
  attributes: KeyValue[];
  startTimeUnixNano: string;
  timeUnixNano: string;
  count: string;
  sum: number;
  min: number;
  max: number;
  bucketCounts: string[];
  explicitBounds: number[];
}
/** AGGREGATION_TEMPORALITY_DELTA: each batch carries what happened since the previous one. */
export const DELTA = 1;
export interface Metric {
  name: string;
  unit: string;
  description?: string;
  histogram?: { aggregationTemporality: number; dataPoints: HistogramDataPoint[] };
  sum?: { aggregationTemporality: number; isMonotonic: boolean; dataPoints: NumberDataPoint[] };
  gauge?: { dataPoints: NumberDataPoint[] };
}
export interface ExportMetricsServiceRequest {
  resourceMetrics: { resource: Resource; scopeMetrics: { scope: Scope; metrics: Metric[] }[] }[];
}
export interface LogRecord {
  timeUnixNano: string;
  observedTimeUnixNano: string;
  /** SEVERITY_NUMBER_INFO (9) or WARN (13). */
  severityNumber: number;
  severityText: string;
  eventName: string;
  body?: AnyValue;
  attributes: KeyValue[];
}
export interface ExportLogsServiceRequest {
  resourceLogs: { resource: Resource; scopeLogs: { scope: Scope; logRecords: LogRecord[] }[] }[];
}
//#endregion

/** The instrumentation scope of everything the runtime records. */
export const SCOPE: Scope = { name: '@outpost/runtime', version: '0.1.0' };

/** An attribute value in OTLP's `AnyValue`: integers as `intValue` strings, other numbers as doubles. */
export function anyValue(v: string | number | boolean): AnyValue {
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  return Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v };
}

/** OTLP attributes from a plain record, skipping undefined values. */
export function attributes(record: Record<string, string | number | boolean | undefined>): KeyValue[] {
  const out: KeyValue[] = [];
  for (const [key, v] of Object.entries(record)) if (v !== undefined) out.push({ key, value: anyValue(v) });
  return out;
}

/** Milliseconds since the epoch as OTLP's nanosecond string. */
export function nanos(ms: number): string {
  return (BigInt(Math.round(ms * 1000)) * 1000n).toString();
}

/** The resource of a batch: the device's attributes plus the batch's own id (T2). */
export function resourceOf(base: KeyValue[], batchId: string): Resource {
  return {
    attributes: [...base.filter((a) => a.key !== RESOURCE.batchId), ...attributes({ [RESOURCE.batchId]: batchId })],
  };
}

/** Wraps metrics in one request. */
export function metricsRequest(base: KeyValue[], batchId: string, metrics: Metric[]): ExportMetricsServiceRequest {
  return { resourceMetrics: [{ resource: resourceOf(base, batchId), scopeMetrics: [{ scope: SCOPE, metrics }] }] };
}

/** Wraps log records in one request. */
export function logsRequest(base: KeyValue[], batchId: string, logRecords: LogRecord[]): ExportLogsServiceRequest {
  return { resourceLogs: [{ resource: resourceOf(base, batchId), scopeLogs: [{ scope: SCOPE, logRecords }] }] };
}

/** Data points and log records in a request: what the queue counts as items. */
export function itemsOf(req: ExportMetricsServiceRequest | ExportLogsServiceRequest): number {
  if ('resourceLogs' in req) {
    return req.resourceLogs.reduce((n, r) => n + r.scopeLogs.reduce((m, s) => m + s.logRecords.length, 0), 0);
  }
  let n = 0;
  for (const r of req.resourceMetrics)
    for (const s of r.scopeMetrics)
      for (const m of s.metrics)
        n +=
          (m.histogram?.dataPoints.length ?? 0) + (m.sum?.dataPoints.length ?? 0) + (m.gauge?.dataPoints.length ?? 0);
  return n;
}

/** One metric with only the given data points. */
function withPoints(m: Metric, points: unknown[]): Metric {
  const out: Metric = { name: m.name, unit: m.unit };
  if (m.histogram) out.histogram = { ...m.histogram, dataPoints: points as HistogramDataPoint[] };
  if (m.sum) out.sum = { ...m.sum, dataPoints: points as NumberDataPoint[] };
  if (m.gauge) out.gauge = { dataPoints: points as NumberDataPoint[] };
  return out;
}

/**
 * Splits a request in two halves of its items, each with a new batch id (a 413 answer). Null
 * when it holds a single item and cannot be split.
 */
export function splitRequest(
  req: ExportMetricsServiceRequest | ExportLogsServiceRequest,
  newId: () => string,
):
  | [ExportMetricsServiceRequest, ExportMetricsServiceRequest]
  | [ExportLogsServiceRequest, ExportLogsServiceRequest]
  | null {
  if ('resourceLogs' in req) {
    const r = req.resourceLogs[0];
    const records = r?.scopeLogs.flatMap((s) => s.logRecords) ?? [];
    if (!r || records.length < 2) return null;
    const half = Math.ceil(records.length / 2);
    return [
      logsRequest(r.resource.attributes, newId(), records.slice(0, half)),
      logsRequest(r.resource.attributes, newId(), records.slice(half)),
    ];
  }
  const r = req.resourceMetrics[0];
  if (!r) return null;
  const flat: { metric: Metric; point: unknown }[] = [];
  for (const s of r.scopeMetrics)
    for (const m of s.metrics)
      for (const point of m.histogram?.dataPoints ?? m.sum?.dataPoints ?? m.gauge?.dataPoints ?? [])
        flat.push({ metric: m, point });
  if (flat.length < 2) return null;
  const half = Math.ceil(flat.length / 2);
  const regroup = (part: typeof flat): Metric[] => {
    const by = new Map<Metric, unknown[]>();
    for (const { metric, point } of part) {
      let list = by.get(metric);
      if (!list) by.set(metric, (list = []));
      list.push(point);
    }
    return [...by].map(([m, points]) => withPoints(m, points));
  };
  return [
    metricsRequest(r.resource.attributes, newId(), regroup(flat.slice(0, half))),
    metricsRequest(r.resource.attributes, newId(), regroup(flat.slice(half))),
  ];
}
