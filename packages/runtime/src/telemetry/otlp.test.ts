import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import protobuf from 'protobufjs';
import { ALLOWED_ATTRIBUTES, ATTR, EVENT, METRIC, RESOURCE, RUN_DURATION_BOUNDS } from '@outpost/protocol';
import { describe, expect, it } from 'vitest';
import { deviceResource } from './device-class.js';
import { logsRequest, metricsRequest, splitRequest, type ExportMetricsServiceRequest } from './otlp.js';
import { Recorder } from './recorder.js';

const PROTO_DIR = fileURLToPath(new URL('./__fixtures__/opentelemetry-proto/', import.meta.url));

/** The official OTLP definitions (opentelemetry-proto), loaded once. */
function loadOtlp(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
  root.loadSync([
    'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
    'opentelemetry/proto/collector/logs/v1/logs_service.proto',
  ]);
  return root;
}
const otlp = loadOtlp();

/**
 * Checks a JSON payload against a message of opentelemetry-proto: read under the protobuf JSON
 * mapping, encoded to the binary wire format, decoded, and written back as JSON (int64 as
 * strings, enums as numbers). A field the proto does not have, or of the wrong type, does not
 * survive the round trip, so the result differs.
 */
function roundTrip(type: string, json: unknown): unknown {
  const T = otlp.lookupType(type);
  const msg = T.fromObject(json as Record<string, unknown>);
  const decoded = T.decode(T.encode(msg).finish());
  return T.toObject(decoded, { longs: String, enums: Number, defaults: false });
}

const RESOURCE_ATTRS = deviceResource({
  cores: 6,
  memoryGb: 8,
  gpuVendor: 'NVIDIA Corporation',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  deviceId: '5b0e3c52-3b77-4f0b-9d0c-6c1f6f0c2a11',
  runtimeVersion: '0.1.0',
  channel: 'stable',
});

/** A recorder that saw a bit of everything: runs, an error, loads, a fallback, updates, drift. */
function busyRecorder() {
  let t = 1_700_000_000_000;
  const rec = new Recorder({
    sampleRate: 1,
    drift: { threshold: 0.2, windowRuns: 4, inputs: false },
    now: () => (t += 7),
  });
  rec.setReference('digits', '1.0.0', { tensors: { logits: { edges: [0, 1, 2, 3], counts: [10, 80, 10] } } });
  const s = rec.seriesOf({ model: 'digits', version: '1.0.0', variant: 'int8', backend: 'wasm' });
  rec.load(s, 840, 'cold', true);
  rec.load(s, 35, 'warm', false);
  for (const ms of [0.3, 1.5, 1.5, 12, 7000]) rec.run(s, ms);
  rec.error(s, 'RUN_FAILED');
  // Raw outputs with recognisable values: none of them may appear in a payload (T6).
  for (let i = 0; i < 4; i++) rec.tensors(s, { logits: { data: new Float32Array([2.718281, 2.5, 2.25]) } });
  rec.fallback(s);
  rec.update({ kind: 'activated', name: 'digits', version: '1.1.0', from: '1.0.0' });
  rec.update({ kind: 'failed', name: 'digits', version: '1.2.0', errorCode: 'INTEGRITY' });
  return rec.collect({ storageBytes: 123_456, dropped: 3 });
}

describe('OTLP JSON payloads', () => {
  it('metrics: every data point kind survives a round trip through opentelemetry-proto unchanged', () => {
    const { metrics } = busyRecorder();
    const req = JSON.parse(JSON.stringify(metricsRequest(RESOURCE_ATTRS, 'batch-1', metrics))) as unknown;
    expect(roundTrip('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest', req)).toEqual(req);
    const names = metrics.map((m) => m.name);
    expect(names).toEqual(
      expect.arrayContaining([
        METRIC.runDuration,
        METRIC.loadDuration,
        METRIC.runs,
        METRIC.errors,
        METRIC.fallbacks,
        METRIC.cacheHits,
        METRIC.dropped,
        METRIC.storageBytes,
        METRIC.driftPsi,
        METRIC.driftKl,
      ]),
    );
    const run = metrics.find((m) => m.name === METRIC.runDuration)!.histogram!.dataPoints[0]!;
    expect(run.explicitBounds).toEqual([...RUN_DURATION_BOUNDS]);
    expect(run.count).toBe('5');
    // 0.3 ≤ 0.5; 1.5 twice in (1, 2]; 12 in (10, 20]; 7000 past the last bound.
    expect(run.bucketCounts).toEqual(['1', '0', '2', '0', '0', '1', '0', '0', '0', '0', '0', '0', '0', '1']);
    expect(run.min).toBe(0.3);
    expect(run.max).toBe(7000);
    expect(metrics.find((m) => m.name === METRIC.fallbacks)!.sum!.dataPoints[0]!.asInt).toBe('2');
  });

  it('logs: update and drift events survive a round trip through opentelemetry-proto unchanged', () => {
    const { logs } = busyRecorder();
    const req = JSON.parse(JSON.stringify(logsRequest(RESOURCE_ATTRS, 'batch-2', logs))) as unknown;
    expect(roundTrip('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest', req)).toEqual(req);
    expect(logs.map((l) => l.eventName)).toEqual([EVENT.drift, EVENT.update, EVENT.update]);
  });

  it('the round trip catches what OTLP does not define: an invented field, a number where int64 is a string', () => {
    const { metrics } = busyRecorder();
    const good = JSON.parse(
      JSON.stringify(metricsRequest(RESOURCE_ATTRS, 'b', metrics)),
    ) as ExportMetricsServiceRequest;
    const invented = { ...good, batchId: 'b' };
    const numeric = structuredClone(good);
    (numeric.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.histogram!.dataPoints[0] as { count: unknown }).count = 5;
    const type = 'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest';
    expect(roundTrip(type, invented)).not.toEqual(invented);
    expect(roundTrip(type, numeric)).not.toEqual(numeric);
  });

  it('a 413 split keeps every data point once, under two new batch ids', () => {
    const { metrics } = busyRecorder();
    const req = metricsRequest(RESOURCE_ATTRS, 'batch-3', metrics);
    let n = 0;
    const parts = splitRequest(req, () => `part-${++n}`) as [ExportMetricsServiceRequest, ExportMetricsServiceRequest];
    const points = (r: ExportMetricsServiceRequest) =>
      r.resourceMetrics[0]!.scopeMetrics[0]!.metrics.flatMap((m) =>
        (m.histogram?.dataPoints ?? m.sum?.dataPoints ?? m.gauge?.dataPoints ?? []).map((p) =>
          JSON.stringify([m.name, p]),
        ),
      );
    expect([...points(parts[0]), ...points(parts[1])].sort()).toEqual(points(req).sort());
    for (const [i, p] of parts.entries()) {
      expect(
        roundTrip(
          'opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest',
          JSON.parse(JSON.stringify(p)),
        ),
      ).toEqual(JSON.parse(JSON.stringify(p)));
      const id = p.resourceMetrics[0]!.resource.attributes.find((a) => a.key === RESOURCE.batchId);
      expect(id?.value).toEqual({ stringValue: `part-${i + 1}` });
    }
  });

  it('T6: every attribute key of every payload is on the allow-list, and no tensor value leaves', () => {
    const { metrics, logs } = busyRecorder();
    const bodies = [
      JSON.stringify(metricsRequest(RESOURCE_ATTRS, 'b', metrics)),
      JSON.stringify(logsRequest(RESOURCE_ATTRS, 'c', logs)),
    ];
    const keys = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, child] of Object.entries(v)) {
          if (k === 'attributes') for (const a of child as { key: string }[]) keys.add(a.key);
          walk(child);
        }
      }
    };
    for (const b of bodies) walk(JSON.parse(b));
    expect(keys.size).toBeGreaterThan(10);
    for (const k of keys) expect(ALLOWED_ATTRIBUTES.has(k), `attribute ${k} is not on the allow-list`).toBe(true);
    for (const b of bodies) {
      expect(b).not.toContain('2.718');
      expect(b).not.toContain('2.25');
    }
    // Bucketed device class, not exact values: 6 cores report as 4, the GPU as its vendor only.
    const resource = Object.fromEntries(RESOURCE_ATTRS.map((a) => [a.key, a.value]));
    expect(resource[RESOURCE.deviceCores]).toEqual({ intValue: '4' });
    expect(resource[RESOURCE.gpuVendor]).toEqual({ stringValue: 'nvidia' });
    expect(resource[RESOURCE.browser]).toEqual({ stringValue: 'Chrome' });
    expect(resource[RESOURCE.browserMajor]).toEqual({ intValue: '131' });
    expect(logs[1]!.attributes).toContainEqual({ key: ATTR.updateKind, value: { stringValue: 'activated' } });
  });

  it('T6: the README publishes the allow-list, key for key', () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    // The API's Telemetry section, up to the next heading.
    const start = readme.indexOf('\n### Telemetry\n');
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf('\n### ', start + 1));
    for (const key of ALLOWED_ATTRIBUTES) expect(section, key).toContain(`\`${key}\``);
  });
});
