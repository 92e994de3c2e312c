import { ATTR, METRIC, RESOURCE } from '@outpost/protocol';

/**
 * The OTLP/HTTP JSON mapping (opentelemetry-proto's `ExportMetricsServiceRequest` and
 * `ExportLogsServiceRequest`, lowerCamelCase keys, 64-bit integers as decimal strings or numbers)
 * as JSON schemas Fastify validates bodies against, and the reduction of a valid body to the
 * rows the storage keeps. Unknown fields are ignored, as OTLP receivers must.
 */

const int64 = { type: ['string', 'integer'], pattern: '^-?[0-9]{1,20}$' } as const;
const uint64 = { type: ['string', 'integer'], pattern: '^[0-9]{1,20}$', minimum: 0 } as const;
const double = { type: ['number', 'string'], pattern: '^(NaN|-?Infinity)$' } as const;

const anyValue = {
  $id: 'otlpAnyValue',
  type: 'object',
  properties: {
    stringValue: { type: 'string' },
    boolValue: { type: 'boolean' },
    intValue: int64,
    doubleValue: double,
    bytesValue: { type: 'string' },
    arrayValue: { type: 'object', properties: { values: { type: 'array', items: { $ref: 'otlpAnyValue#' } } } },
    kvlistValue: { type: 'object', properties: { values: { $ref: 'otlpAttributes#' } } },
  },
} as const;

const attributes = {
  $id: 'otlpAttributes',
  type: 'array',
  maxItems: 128,
  items: {
    type: 'object',
    required: ['key'],
    properties: { key: { type: 'string', maxLength: 256 }, value: { $ref: 'otlpAnyValue#' } },
  },
} as const;

const resource = {
  type: 'object',
  properties: { attributes: { $ref: 'otlpAttributes#' }, droppedAttributesCount: { type: 'integer' } },
} as const;

const scope = {
  type: 'object',
  properties: { name: { type: 'string' }, version: { type: 'string' }, attributes: { $ref: 'otlpAttributes#' } },
} as const;

const numberPoint = {
  type: 'object',
  properties: {
    attributes: { $ref: 'otlpAttributes#' },
    startTimeUnixNano: uint64,
    timeUnixNano: uint64,
    asDouble: double,
    asInt: int64,
  },
} as const;

const histogramPoint = {
  type: 'object',
  properties: {
    attributes: { $ref: 'otlpAttributes#' },
    startTimeUnixNano: uint64,
    timeUnixNano: uint64,
    count: uint64,
    sum: double,
    min: double,
    max: double,
    bucketCounts: { type: 'array', maxItems: 256, items: uint64 },
    explicitBounds: { type: 'array', maxItems: 255, items: double },
  },
} as const;

const temporality = { type: 'integer', minimum: 0, maximum: 2 } as const;
const points = (item: object) => ({ type: 'array', maxItems: 10_000, items: item });

/** `ExportMetricsServiceRequest` (OTLP/JSON). */
export const metricsRequestSchema = {
  type: 'object',
  properties: {
    resourceMetrics: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          resource,
          schemaUrl: { type: 'string' },
          scopeMetrics: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                scope,
                schemaUrl: { type: 'string' },
                metrics: {
                  type: 'array',
                  items: {
                    type: 'object',
                    required: ['name'],
                    properties: {
                      name: { type: 'string', minLength: 1, maxLength: 256 },
                      description: { type: 'string' },
                      unit: { type: 'string' },
                      sum: {
                        type: 'object',
                        properties: {
                          dataPoints: points(numberPoint),
                          aggregationTemporality: temporality,
                          isMonotonic: { type: 'boolean' },
                        },
                      },
                      gauge: { type: 'object', properties: { dataPoints: points(numberPoint) } },
                      histogram: {
                        type: 'object',
                        properties: { dataPoints: points(histogramPoint), aggregationTemporality: temporality },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** `ExportLogsServiceRequest` (OTLP/JSON). */
export const logsRequestSchema = {
  type: 'object',
  properties: {
    resourceLogs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          resource,
          schemaUrl: { type: 'string' },
          scopeLogs: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                scope,
                schemaUrl: { type: 'string' },
                logRecords: {
                  type: 'array',
                  maxItems: 10_000,
                  items: {
                    type: 'object',
                    properties: {
                      timeUnixNano: uint64,
                      observedTimeUnixNano: uint64,
                      severityNumber: { type: 'integer', minimum: 0, maximum: 24 },
                      severityText: { type: 'string' },
                      eventName: { type: 'string' },
                      body: { $ref: 'otlpAnyValue#' },
                      attributes: { $ref: 'otlpAttributes#' },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** The shared sub-schemas, added to Fastify once (`app.addSchema`). */
export const sharedSchemas = [anyValue, attributes] as const;

//#region OTLP JSON shapes (what the schemas above let through)
type Int64 = string | number;
interface AnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: Int64;
  doubleValue?: number | string;
  arrayValue?: { values?: AnyValue[] };
  kvlistValue?: { values?: KeyValue[] };
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}
interface Resource {
  attributes?: KeyValue[];
}
interface NumberDataPoint {
  attributes?: KeyValue[];
  startTimeUnixNano?: Int64;
  timeUnixNano?: Int64;
  asDouble?: number | string;
  asInt?: Int64;
}
interface HistogramDataPoint {
  attributes?: KeyValue[];
  startTimeUnixNano?: Int64;
  timeUnixNano?: Int64;
  count?: Int64;
  sum?: number | string;
  bucketCounts?: Int64[];
  explicitBounds?: (number | string)[];
}
interface Metric {
  name: string;
  sum?: { dataPoints?: NumberDataPoint[]; aggregationTemporality?: number };
  gauge?: { dataPoints?: NumberDataPoint[] };
  histogram?: { dataPoints?: HistogramDataPoint[]; aggregationTemporality?: number };
}
/** A valid `ExportMetricsServiceRequest`. */
export interface MetricsRequest {
  resourceMetrics?: { resource?: Resource; scopeMetrics?: { metrics?: Metric[] }[] }[];
}
interface LogRecord {
  timeUnixNano?: Int64;
  observedTimeUnixNano?: Int64;
  eventName?: string;
  body?: AnyValue;
  attributes?: KeyValue[];
}
/** A valid `ExportLogsServiceRequest`. */
export interface LogsRequest {
  resourceLogs?: { resource?: Resource; scopeLogs?: { logRecords?: LogRecord[] }[] }[];
}
//#endregion

/** A scalar attribute value; arrays and maps are kept as JSON text. */
export type AttrValue = string | number | boolean;

/** The device a batch came from: resource attributes, bucketed on the device already. */
export interface DeviceInfo {
  deviceId: string;
  channel?: string;
  runtimeVersion?: string;
  browser?: string;
  browserMajor?: string;
  cores?: number;
  memoryGb?: number;
  gpuVendor?: string;
}

/** The attributes that identify what a point or event is about. */
export interface Subject {
  model?: string;
  version?: string;
  variant?: string;
  backend?: string;
}

/** One metric data point, normalised. */
export interface MetricPoint extends Subject {
  deviceId: string;
  metric: string;
  kind: 'sum' | 'gauge' | 'histogram';
  /** OTLP's aggregation temporality: 1 delta, 2 cumulative (0 for gauges). */
  temporality: number;
  startMs: number;
  timeMs: number;
  errorCode?: string;
  loadKind?: string;
  tensor?: string;
  /** Sums and gauges. */
  value?: number;
  /** Histograms. */
  count?: number;
  sum?: number;
  bounds?: number[];
  buckets?: number[];
}

/** One log record (update and drift events, or anything else a sender logs), normalised. */
export interface EventRecord extends Subject {
  deviceId: string;
  name: string;
  timeMs: number;
  /** Update events: available, downloaded, activated, rolled-back, failed. */
  updateKind?: string;
  fromVersion?: string;
  tensor?: string;
  psi?: number;
  kl?: number;
  errorCode?: string;
  attributes: Record<string, AttrValue>;
}

/** A request reduced to rows: what {@link StorageAdapter.ingest} stores in one transaction. */
export interface TelemetryBatch {
  /** The batch id (Idempotency-Key); a second batch with the same kind and id is not stored. */
  id: string;
  kind: 'metrics' | 'logs';
  receivedAtMs: number;
  devices: DeviceInfo[];
  points: MetricPoint[];
  events: EventRecord[];
}

function num(v: Int64 | undefined | null): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Nanoseconds since the epoch (decimal string or number) to milliseconds. */
function nanosToMs(v: Int64 | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'number') return Math.floor(v / 1e6);
  return v.length > 6 ? Number(v.slice(0, -6)) : 0;
}

function scalar(v: AnyValue | undefined): AttrValue | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return num(v.intValue);
  if (v.doubleValue !== undefined) return num(v.doubleValue);
  if (v.arrayValue || v.kvlistValue) return JSON.stringify(v.arrayValue ?? v.kvlistValue);
  return undefined;
}

function attrMap(kvs: KeyValue[] | undefined): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of kvs ?? []) {
    const v = scalar(kv.value);
    if (v !== undefined) out[kv.key] = v;
  }
  return out;
}

const str = (v: AttrValue | undefined) => (v === undefined ? undefined : String(v));
const numeric = (v: AttrValue | undefined) =>
  typeof v === 'number' ? v : v === undefined ? undefined : num(String(v));

function deviceOf(attrs: Record<string, AttrValue>): DeviceInfo {
  return {
    deviceId: str(attrs[RESOURCE.deviceId]) ?? 'unknown',
    channel: str(attrs[RESOURCE.channel]),
    runtimeVersion: str(attrs[RESOURCE.runtimeVersion]),
    browser: str(attrs[RESOURCE.browser]),
    browserMajor: str(attrs[RESOURCE.browserMajor]),
    cores: numeric(attrs[RESOURCE.deviceCores]),
    memoryGb: numeric(attrs[RESOURCE.deviceMemory]),
    gpuVendor: str(attrs[RESOURCE.gpuVendor]),
  };
}

function subjectOf(attrs: Record<string, AttrValue>): Subject {
  return {
    model: str(attrs[ATTR.model]),
    version: str(attrs[ATTR.version]),
    variant: str(attrs[ATTR.variant]),
    backend: str(attrs[ATTR.backend]),
  };
}

/** The batch id the resources carry ({@link RESOURCE.batchId}), if they all agree on one. */
export function resourceBatchId(resources: (Resource | undefined)[]): string | undefined {
  const ids = new Set(resources.map((r) => str(attrMap(r?.attributes)[RESOURCE.batchId])));
  if (ids.size !== 1) return undefined;
  return [...ids][0];
}

/** Reduces a valid metrics request to rows. */
export function metricRows(body: MetricsRequest, nowMs: number): Pick<TelemetryBatch, 'devices' | 'points'> {
  const devices: DeviceInfo[] = [];
  const points: MetricPoint[] = [];
  for (const rm of body.resourceMetrics ?? []) {
    const device = deviceOf(attrMap(rm.resource?.attributes));
    devices.push(device);
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        // One object shape for every point (no spreads): this runs 50 times a batch.
        const point = (
          kind: MetricPoint['kind'],
          temporality: number,
          p: NumberDataPoint & HistogramDataPoint,
          histogram: boolean,
        ): MetricPoint => {
          const attrs = attrMap(p.attributes);
          const timeMs = nanosToMs(p.timeUnixNano) || nowMs;
          return {
            deviceId: device.deviceId,
            metric: m.name,
            kind,
            temporality,
            startMs: nanosToMs(p.startTimeUnixNano) ?? timeMs,
            timeMs,
            model: str(attrs[ATTR.model]),
            version: str(attrs[ATTR.version]),
            variant: str(attrs[ATTR.variant]),
            backend: str(attrs[ATTR.backend]),
            errorCode: str(attrs[ATTR.errorCode]),
            loadKind: str(attrs[ATTR.loadKind]),
            tensor: str(attrs[ATTR.tensor]),
            value: histogram ? undefined : num(p.asDouble ?? p.asInt),
            count: histogram ? (num(p.count) ?? 0) : undefined,
            sum: histogram ? num(p.sum) : undefined,
            bounds: histogram ? (p.explicitBounds ?? []).map((b) => num(b) ?? Number.NaN) : undefined,
            buckets: histogram ? (p.bucketCounts ?? []).map((c) => num(c) ?? 0) : undefined,
          };
        };
        const sumT = m.sum?.aggregationTemporality ?? 0;
        for (const p of m.sum?.dataPoints ?? []) points.push(point('sum', sumT, p, false));
        for (const p of m.gauge?.dataPoints ?? []) points.push(point('gauge', 0, p, false));
        const histT = m.histogram?.aggregationTemporality ?? 0;
        for (const p of m.histogram?.dataPoints ?? []) points.push(point('histogram', histT, p, true));
      }
    }
  }
  return { devices, points };
}

/** Reduces a valid logs request to rows. */
export function eventRows(body: LogsRequest, nowMs: number): Pick<TelemetryBatch, 'devices' | 'events'> {
  const devices: DeviceInfo[] = [];
  const events: EventRecord[] = [];
  for (const rl of body.resourceLogs ?? []) {
    const device = deviceOf(attrMap(rl.resource?.attributes));
    devices.push(device);
    for (const sl of rl.scopeLogs ?? []) {
      for (const r of sl.logRecords ?? []) {
        const attrs = attrMap(r.attributes);
        const name = r.eventName || str(attrs['event.name']) || str(scalar(r.body)) || 'log';
        events.push({
          deviceId: device.deviceId,
          name,
          timeMs: nanosToMs(r.timeUnixNano) || nanosToMs(r.observedTimeUnixNano) || nowMs,
          ...subjectOf(attrs),
          updateKind: str(attrs[ATTR.updateKind]),
          fromVersion: str(attrs[ATTR.fromVersion]),
          tensor: str(attrs[ATTR.tensor]),
          // On drift events the window's figures ride as attributes named like the gauges.
          psi: numeric(attrs[METRIC.driftPsi]),
          kl: numeric(attrs[METRIC.driftKl]),
          errorCode: str(attrs[ATTR.errorCode]),
          attributes: attrs,
        });
      }
    }
  }
  return { devices, events };
}
