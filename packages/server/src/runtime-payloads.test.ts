import { randomUUID } from 'node:crypto';
import { IDEMPOTENCY_HEADER, RESOURCE, SERVICE_NAME } from '@outpost/protocol';
import { describe, expect, it } from 'vitest';
// The runtime's own recorder and OTLP builders (not hand-written bodies): what a device sends.
import { attributes, logsRequest, metricsRequest } from '../../runtime/src/telemetry/otlp.js';
import { Recorder } from '../../runtime/src/telemetry/recorder.js';
import { ADMIN_TOKEN, auth, DEVICE_TOKEN, openTelemetryServer, post } from './testing/telemetry-server.js';

describe('the runtime and the server agree on the wire', () => {
  it("the runtime's recorded runs, errors, loads, update events and drift are stored and charted as sent", async () => {
    const { app, close } = await openTelemetryServer({ prefix: 'outpost-wire-' });
    try {
      const rec = new Recorder({ sampleRate: 1, drift: { threshold: 0.2, windowRuns: 50, inputs: false } });
      rec.setReference('digits', '1.1.0', { tensors: { probs: { edges: [0, 0.5, 1], counts: [90, 10] } } });
      const s = rec.seriesOf({ model: 'digits', version: '1.1.0', variant: 'fp32', backend: 'wasm' });
      for (let i = 0; i < 100; i++) {
        rec.run(s, i < 50 ? 1.5 : 7);
        // Outputs far from the reference (all in the upper bin): a drift window per 50 runs.
        rec.tensors(s, { probs: { data: Float32Array.of(0.9, 0.8) } });
      }
      rec.error(s, 'RUN_FAILED');
      rec.load(s, 120, 'cold', false);
      rec.update({ kind: 'activated', name: 'digits', version: '1.1.0', from: '1.0.0' });
      const { metrics, logs } = rec.collect({ storageBytes: 111_416 });
      let metricsId = '';
      let logsId = '';
      const base = attributes({
        [RESOURCE.serviceName]: SERVICE_NAME,
        [RESOURCE.deviceId]: 'device-a',
        [RESOURCE.channel]: 'stable',
      });
      for (const [path, body, batchId] of [
        ['/v1/metrics', metricsRequest(base, (metricsId = randomUUID()), metrics), metricsId],
        ['/v1/logs', logsRequest(base, (logsId = randomUUID()), logs), logsId],
      ] as const) {
        const res = await post(app, path, body, { ...auth(DEVICE_TOKEN), [IDEMPOTENCY_HEADER]: batchId });
        expect(res.statusCode, res.body).toBe(200);
      }
      const res = await app.inject({ method: 'GET', url: '/api/overview', headers: auth(ADMIN_TOKEN) });
      expect(res.statusCode).toBe(200);
      const o = res.json();
      expect(o.devices.map((d: { deviceId: string }) => d.deviceId)).toEqual(['device-a']);
      const latency = o.latency.find((r: { model: string }) => r.model === 'digits');
      expect(latency).toMatchObject({ version: '1.1.0', backend: 'wasm', runs: 100 });
      // Half the runs at 1.5 ms (bucket 1-2), half at 7 ms (5-10): p50 sits at the boundary, p95 in 5-10.
      expect(latency.p95).toBeGreaterThan(5);
      expect(latency.p95).toBeLessThanOrEqual(10);
      const health = o.health.find((r: { model: string }) => r.model === 'digits');
      expect(health).toMatchObject({ runs: 100, errors: 1, errorsByCode: { RUN_FAILED: 1 } });
      expect(o.updates.find((u: { version: string }) => u.version === '1.1.0')).toBeDefined();
      expect(o.drift.length).toBeGreaterThan(0);
      expect(o.drift[0].psi).toBeGreaterThan(0.2);
    } finally {
      await close();
    }
  });
});
