import type { TelemetryConfig, TelemetryFlushReport, TelemetryUpdateEvent } from '@outpost/core';
import { TelemetryQueue, utf8Length } from '../store/index.js';
import { deviceResource, type DeviceFacts } from './device-class.js';
import { itemsOf, logsRequest, metricsRequest, type KeyValue } from './otlp.js';
import { Recorder } from './recorder.js';
import { ShadowStats } from './shadow.js';
import { refusalOf } from './refusal.js';
import { flushQueue, type RetryPolicy } from './send.js';

/** Where the telemetry controller reads what it reports about the device and the store. */
export interface TelemetryHost {
  /** Everything but the install id and versions is bucketed before it leaves (device-class.ts). */
  facts(): Promise<DeviceFacts>;
  /** Bytes the model store holds. */
  storageBytes(): Promise<number>;
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
  retry?: RetryPolicy;
  /** Where failures of the timer's flushes go (the app's error handler, through the page). */
  report?: (err: Error) => void;
}

/** The Web Lock one flush holds, so tabs and workers of an origin do not send the same batch at once. */
export const FLUSH_LOCK = 'outpost-telemetry-flush';

/**
 * The worker's telemetry: records in memory ({@link Recorder}), moves the aggregates to the
 * IndexedDB queue on a timer (never on the run path), and sends the queue (send.ts).
 */
export class Telemetry {
  readonly recorder: Recorder;
  /** Shadow runs' figures, collected with the recorder's. */
  readonly shadow: ShadowStats;
  readonly queue: TelemetryQueue;
  private resource: Promise<KeyValue[]> | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private flushing: Promise<TelemetryFlushReport> | undefined;
  private lastStorageBytes: number | undefined;

  constructor(
    readonly config: TelemetryConfig,
    private readonly host: TelemetryHost,
  ) {
    this.recorder = new Recorder({
      sampleRate: config.sampleRate,
      drift: config.drift,
      now: host.now,
      random: host.random,
    });
    this.shadow = new ShadowStats(host.now);
    this.queue = new TelemetryQueue({ maxBytes: config.maxQueueBytes, maxCount: config.maxQueueCount });
  }

  /** Starts the flush timer. */
  start(): void {
    if (this.config.flushEveryMs > 0 && this.timer === undefined) {
      this.timer = setInterval(() => void this.flushInBackground(), this.config.flushEveryMs);
    }
  }

  /**
   * A flush nobody awaits: its failures (the queue's storage failing, batches the server refused
   * for good) go to the host's `report`. Being offline or told to wait is no failure.
   */
  async flushInBackground(): Promise<void> {
    const report = this.host.report ?? (() => undefined);
    try {
      const refused = refusalOf(await this.flush());
      if (refused) report(refused);
    } catch (err) {
      report(err instanceof Error ? err : new Error(String(err)));
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  event(e: TelemetryUpdateEvent): void {
    this.recorder.update(e);
  }

  private now(): number {
    return (this.host.now ?? Date.now)();
  }

  /** Moves what the recorder holds into the queue: one metrics batch and one logs batch, each with its own id. */
  async persist(): Promise<void> {
    this.resource ??= this.host.facts().then(deviceResource);
    // A failed read (the store unavailable for a moment) is tried again at the next persist.
    const resource = await this.resource.catch((err: unknown) => {
      this.resource = undefined;
      throw err;
    });
    const dropped = await this.queue.dropped();
    // The storage gauge goes out when it changed: an idle device must not fill its queue with it.
    let storageBytes = await this.host.storageBytes().catch(() => undefined);
    if (storageBytes === this.lastStorageBytes) storageBytes = undefined;
    else this.lastStorageBytes = storageBytes;
    const { metrics, logs } = this.recorder.collect({ storageBytes, dropped });
    metrics.push(...this.shadow.collect());
    const now = this.now();
    const enqueue = async (
      signal: 'metrics' | 'logs',
      id: string,
      req: Parameters<typeof itemsOf>[0],
      reported: number,
    ) => {
      const body = JSON.stringify(req);
      await this.queue.add(
        { id, signal, body, bytes: utf8Length(body), items: itemsOf(req), createdAt: now, attempts: 0, notBefore: 0 },
        reported,
      );
    };
    if (metrics.length) {
      const id = crypto.randomUUID();
      await enqueue('metrics', id, metricsRequest(resource, id, metrics), dropped);
    }
    if (logs.length) {
      const id = crypto.randomUUID();
      await enqueue('logs', id, logsRequest(resource, id, logs), 0);
    }
  }

  /** Persists, then sends the queue (one flush at a time per origin, where Web Locks exist). */
  flush(): Promise<TelemetryFlushReport> {
    this.flushing ??= (async () => {
      await this.persist();
      return withLock(FLUSH_LOCK, () =>
        flushQueue(this.queue, {
          endpoint: this.config.endpoint,
          token: this.config.token,
          fetch: this.host.fetch,
          now: this.host.now,
          random: this.host.random,
          retry: this.host.retry,
        }),
      );
    })().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }
}

/** Runs `fn` under a Web Lock of the origin; without Web Locks, directly. */
async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  if (!locks) return fn();
  return await locks.request(name, fn);
}
