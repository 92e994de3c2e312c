import type { TelemetryConfig, TelemetryFlushReport, TelemetryUpdateEvent } from '@outpost/core';
import { refusalOf } from '../telemetry/refusal.js';
import { DRIFT_PSI_THRESHOLD } from '@outpost/protocol';
import { RUNTIME_DEFAULTS, type TelemetryOptions } from './options.js';
import type { Updates } from './updates.js';

/** The worker's telemetry settings from the app's options; undefined (off) without an endpoint. */
export function resolveTelemetry(
  options: TelemetryOptions | undefined,
  channel: string | undefined,
  base: string | undefined,
  parseInterval: (v: number | string) => number,
): TelemetryConfig | undefined {
  if (!options?.endpoint) return undefined;
  const d = RUNTIME_DEFAULTS.telemetry;
  const rate = options.sampleRate ?? d.sampleRate;
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`telemetry.sampleRate must be between 0 and 1, not ${rate}`);
  const config: TelemetryConfig = {
    endpoint: new URL(options.endpoint, base).href,
    sampleRate: rate,
    flushEveryMs: parseInterval(options.flushEvery ?? d.flushEvery),
    maxQueueBytes: options.queue?.bytes ?? d.queueBytes,
    maxQueueCount: options.queue?.count ?? d.queueCount,
    drift: {
      threshold: options.drift?.threshold ?? DRIFT_PSI_THRESHOLD,
      windowRuns: options.drift?.windowRuns ?? d.driftWindowRuns,
      inputs: options.drift?.inputs ?? d.driftInputs,
    },
  };
  if (options.token) config.token = options.token;
  if (channel) config.channel = channel;
  return config;
}

/** The worker calls the page makes for telemetry (through comlink, so all are async). */
export interface TelemetryWorker {
  telemetryEvent(event: TelemetryUpdateEvent): Promise<void>;
  telemetryPersist(): Promise<void>;
  telemetryFlush(): Promise<TelemetryFlushReport>;
}

/**
 * The page's part of telemetry: update events go to the worker's recorder; the queue is sent
 * when the browser comes back online; when the page is hidden (perhaps about to close), the
 * aggregates are queued and up to 60 KB of the queue goes out with `keepalive` (T4), the rest
 * staying queued. Failures (the queue's storage, batches refused for good) go to `fail`.
 * Returns a function that detaches it all.
 */
export function attachTelemetry(
  api: () => TelemetryWorker,
  config: TelemetryConfig,
  updates: Updates,
  fail: (err: Error) => void,
): () => void {
  const failed = (err: unknown) => fail(err instanceof Error ? err : new Error(String(err)));
  const outcome = (r: TelemetryFlushReport) => {
    const refused = refusalOf(r);
    if (refused) fail(refused);
  };
  const report = (e: TelemetryUpdateEvent) => {
    void api().telemetryEvent(e).catch(failed);
  };
  const offs = [
    updates.on('available', (p) => report({ kind: 'available', name: p.name, version: p.to, from: p.from })),
    updates.on('downloaded', (d) => report({ kind: 'downloaded', name: d.name, version: d.version })),
    updates.on('activated', (d) => report({ kind: 'activated', name: d.name, version: d.version, from: d.previous })),
    updates.on('rolled-back', (d) =>
      report({ kind: 'rolled-back', name: d.name, version: d.version, errorCode: 'UPDATE_FAILED' }),
    ),
    updates.on('error', (d) => {
      if (d.name === undefined || d.version === undefined) return;
      const code = (d.error as { code?: unknown }).code;
      report({
        kind: 'failed',
        name: d.name,
        version: d.version,
        errorCode: typeof code === 'string' ? code : 'UNKNOWN',
      });
    }),
  ];
  const online = () => void api().telemetryFlush().then(outcome, failed);
  // The page reads the queue only for the keepalive flush: that code (and idb) is a separate
  // chunk, fetched once here, so apps without telemetry do not carry it.
  const sender = Promise.all([import('../store/telemetry-queue.js'), import('../telemetry/send.js')]).then(
    ([store, telemetry]) => ({
      queue: new store.TelemetryQueue({ maxBytes: config.maxQueueBytes, maxCount: config.maxQueueCount }),
      flushQueue: telemetry.flushQueue,
    }),
  );
  // A failed import is reported when the page is hidden and the sender is needed.
  sender.catch(() => undefined);
  const hidden = () => {
    if (document.visibilityState !== 'hidden') return;
    void (async () => {
      const { queue, flushQueue } = await sender;
      await api().telemetryPersist();
      outcome(
        await flushQueue(queue, {
          endpoint: config.endpoint,
          token: config.token,
          keepalive: true,
          maxBytes: RUNTIME_DEFAULTS.telemetry.keepaliveBytes,
        }),
      );
    })().catch(failed);
  };
  globalThis.addEventListener?.('online', online);
  globalThis.document?.addEventListener('visibilitychange', hidden);
  return () => {
    for (const off of offs) off();
    globalThis.removeEventListener?.('online', online);
    globalThis.document?.removeEventListener('visibilitychange', hidden);
  };
}
