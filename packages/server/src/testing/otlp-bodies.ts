import { ATTR, EVENT, METRIC, RESOURCE, RUN_DURATION_BOUNDS, SERVICE_NAME } from '@outpost/protocol';

/** OTLP/JSON bodies as an Outpost runtime sends them (opentelemetry-proto's JSON mapping). */

const s = (key: string, v: string) => ({ key, value: { stringValue: v } });
const i = (key: string, v: number) => ({ key, value: { intValue: String(v) } });
const d = (key: string, v: number) => ({ key, value: { doubleValue: v } });

const nowNanos = (ms = Date.now()) => `${ms}000000`;

export function resource(deviceId: string, batchId?: string, channel = 'stable') {
  return {
    attributes: [
      s(RESOURCE.serviceName, SERVICE_NAME),
      ...(batchId ? [s(RESOURCE.batchId, batchId)] : []),
      s(RESOURCE.deviceId, deviceId),
      i(RESOURCE.deviceCores, 4),
      i(RESOURCE.deviceMemory, 8),
      s(RESOURCE.browser, 'chrome'),
      s(RESOURCE.browserMajor, '131'),
      s(RESOURCE.channel, channel),
      s(RESOURCE.runtimeVersion, '0.1.0'),
    ],
  };
}

export interface RunFigures {
  model?: string;
  version?: string;
  backend?: string;
  /** Run durations (ms) to bin into the histogram. */
  durations?: number[];
  errors?: Record<string, number>;
  /** Extra sum points (to make a batch of n points). */
  padding?: number;
}

/** An ExportMetricsServiceRequest with a run duration histogram, run and error counts (delta). */
export function metricsBody(deviceId: string, batchId: string | undefined, f: RunFigures = {}, channel?: string) {
  const subject = [
    s(ATTR.model, f.model ?? 'digits'),
    s(ATTR.version, f.version ?? '1.0.0'),
    s(ATTR.variant, 'int8'),
    s(ATTR.backend, f.backend ?? 'wasm'),
  ];
  const durations = f.durations ?? [1.5, 1.5, 1.5, 3, 3, 7, 7, 7, 15, 60];
  const buckets = new Array<number>(RUN_DURATION_BOUNDS.length + 1).fill(0);
  for (const ms of durations) {
    const b = RUN_DURATION_BOUNDS.findIndex((bound) => ms <= bound);
    buckets[b < 0 ? RUN_DURATION_BOUNDS.length : b]!++;
  }
  const t0 = nowNanos(Date.now() - 60_000);
  const t1 = nowNanos();
  const errors = Object.entries(f.errors ?? {});
  return {
    resourceMetrics: [
      {
        resource: resource(deviceId, batchId, channel),
        scopeMetrics: [
          {
            scope: { name: '@outpost/runtime', version: '0.1.0' },
            metrics: [
              {
                name: METRIC.runDuration,
                unit: 'ms',
                histogram: {
                  aggregationTemporality: 1,
                  dataPoints: [
                    {
                      attributes: subject,
                      startTimeUnixNano: t0,
                      timeUnixNano: t1,
                      count: String(durations.length),
                      sum: durations.reduce((a, b) => a + b, 0),
                      bucketCounts: buckets.map(String),
                      explicitBounds: [...RUN_DURATION_BOUNDS],
                    },
                  ],
                },
              },
              {
                name: METRIC.runs,
                sum: {
                  aggregationTemporality: 1,
                  isMonotonic: true,
                  dataPoints: [
                    { attributes: subject, startTimeUnixNano: t0, timeUnixNano: t1, asInt: String(durations.length) },
                  ],
                },
              },
              ...(errors.length
                ? [
                    {
                      name: METRIC.errors,
                      sum: {
                        aggregationTemporality: 1,
                        isMonotonic: true,
                        dataPoints: errors.map(([code, n]) => ({
                          attributes: [...subject, s(ATTR.errorCode, code)],
                          startTimeUnixNano: t0,
                          timeUnixNano: t1,
                          asInt: String(n),
                        })),
                      },
                    },
                  ]
                : []),
              ...(f.padding
                ? [
                    {
                      name: METRIC.storageBytes,
                      gauge: {
                        dataPoints: Array.from({ length: f.padding }, (_, k) => ({
                          attributes: [s(ATTR.model, `m${k}`)],
                          timeUnixNano: t1,
                          asInt: String(1000 + k),
                        })),
                      },
                    },
                  ]
                : []),
            ],
          },
        ],
      },
    ],
  };
}

/** An ExportLogsServiceRequest with update events and, optionally, a drift event. */
export function logsBody(
  deviceId: string,
  batchId: string | undefined,
  updates: { version: string; kind: string; from?: string }[],
  drift?: { psi: number; kl: number },
) {
  const t = nowNanos();
  return {
    resourceLogs: [
      {
        resource: resource(deviceId, batchId),
        scopeLogs: [
          {
            scope: { name: '@outpost/runtime' },
            logRecords: [
              ...updates.map((u) => ({
                timeUnixNano: t,
                eventName: EVENT.update,
                severityNumber: 9,
                attributes: [
                  s('event.name', EVENT.update),
                  s(ATTR.model, 'digits'),
                  s(ATTR.version, u.version),
                  s(ATTR.updateKind, u.kind),
                  ...(u.from ? [s(ATTR.fromVersion, u.from)] : []),
                ],
              })),
              ...(drift
                ? [
                    {
                      timeUnixNano: t,
                      eventName: EVENT.drift,
                      severityNumber: 13,
                      attributes: [
                        s(ATTR.model, 'digits'),
                        s(ATTR.version, '1.1.0'),
                        s(ATTR.tensor, 'logits'),
                        d(METRIC.driftPsi, drift.psi),
                        d(METRIC.driftKl, drift.kl),
                      ],
                    },
                  ]
                : []),
            ],
          },
        ],
      },
    ],
  };
}
