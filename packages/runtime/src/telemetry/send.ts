import type { TelemetryFlushReport } from '@outpost/core';
import { AUTH_HEADER, IDEMPOTENCY_HEADER, OTLP_PATHS, RESOURCE } from '@outpost/protocol';
import { utf8Length, type QueuedBatch, type TelemetryQueue } from '../store/index.js';
import { itemsOf, splitRequest, type ExportLogsServiceRequest, type ExportMetricsServiceRequest } from './otlp.js';

/** What sending one batch came to: a value, never an exception (STYLE). */
export type SendOutcome =
  | { kind: 'success' }
  /** The server refused the batch for good (400, 413 and other 4xx). */
  | { kind: 'failure'; status: number }
  /** Try again later: 429, 5xx, or no network. `retryAfterMs` when the server said. */
  | { kind: 'retryable'; status: number; retryAfterMs?: number };

/** Where and how batches go. */
export interface Destination {
  /** Base URL; the OTLP paths go below it. */
  endpoint: string;
  token?: string;
  fetch?: typeof fetch;
}

/** A `Retry-After` header as milliseconds from `now`: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The URL of a signal's OTLP path below the endpoint. */
export function signalUrl(endpoint: string, signal: QueuedBatch['signal']): string {
  return endpoint.replace(/\/+$/, '') + OTLP_PATHS[signal];
}

/** POSTs one batch: its body unchanged, its id as the `Idempotency-Key` (T2). */
export async function sendBatch(
  dest: Destination,
  batch: Pick<QueuedBatch, 'id' | 'signal' | 'body'>,
  options: { keepalive?: boolean; now?: number } = {},
): Promise<SendOutcome> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', [IDEMPOTENCY_HEADER]: batch.id };
  if (dest.token) headers[AUTH_HEADER] = `Bearer ${dest.token}`;
  let res: Response;
  try {
    res = await (dest.fetch ?? fetch)(signalUrl(dest.endpoint, batch.signal), {
      method: 'POST',
      headers,
      body: batch.body,
      keepalive: options.keepalive === true,
      credentials: 'omit',
    });
  } catch {
    return { kind: 'retryable', status: 0 };
  }
  // The body is of no use; read it so the connection can be reused.
  await res.arrayBuffer().catch(() => undefined);
  if (res.ok) return { kind: 'success' };
  if (res.status === 429 || res.status === 408 || res.status >= 500) {
    const retryAfterMs = parseRetryAfter(res.headers.get('Retry-After'), options.now ?? Date.now());
    return retryAfterMs === undefined
      ? { kind: 'retryable', status: res.status }
      : { kind: 'retryable', status: res.status, retryAfterMs };
  }
  return { kind: 'failure', status: res.status };
}

/** Backoff of the queue's retries. */
export interface RetryPolicy {
  /** Base of the exponential backoff: a wait is a random fraction of base * 2^attempts (full jitter). */
  baseMs: number;
  /** Longest wait. */
  maxMs: number;
}

export const RETRY_DEFAULTS: RetryPolicy = { baseMs: 2000, maxMs: 5 * 60_000 };

/** The wait before the next attempt: Retry-After when the server gave one (plus a little jitter), else full jitter. */
export function retryDelay(
  attempts: number,
  retryAfterMs: number | undefined,
  policy: RetryPolicy,
  random: () => number,
): number {
  const jitter = random() * Math.min(policy.maxMs, policy.baseMs * 2 ** attempts);
  return retryAfterMs === undefined ? jitter : retryAfterMs + jitter / 10;
}

/** Everything the queue sender needs. */
export interface FlushOptions extends Destination {
  now?: () => number;
  random?: () => number;
  retry?: RetryPolicy;
  /** Stop after this many body bytes (a `keepalive` flush: at most 60 KB, T4). */
  maxBytes?: number;
  keepalive?: boolean;
}

/**
 * Sends the queue's due batches, oldest first (T1-T5): a 2xx removes a batch (and only a 2xx
 * does); 413 splits it in two (new ids); 400 and other refusals set it aside so it blocks
 * nothing; 429 and 5xx put it off (Retry-After honoured, jittered backoff) and end the flush, as
 * the server asked for a pause; no network ends the flush and leaves the batch due.
 */
export async function flushQueue(queue: TelemetryQueue, options: FlushOptions): Promise<TelemetryFlushReport> {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const report: TelemetryFlushReport = { sent: 0, setAside: 0, split: 0, pending: 0 };
  let budget = options.maxBytes ?? Infinity;
  // A split puts new batches in the queue: read it again until a pass sends nothing new.
  for (let pass = 0; pass < 32; pass++) {
    const due = await queue.due(now());
    let again = false;
    for (const batch of due) {
      if (batch.bytes > budget) {
        budget = 0;
        break;
      }
      budget -= batch.bytes;
      const outcome = await sendBatch(options, batch, { keepalive: options.keepalive, now: now() });
      if (outcome.kind === 'success') {
        await queue.remove(batch.seq!);
        report.sent++;
        continue;
      }
      if (outcome.kind === 'failure' && outcome.status === 413) {
        const parts = splitRequest(
          JSON.parse(batch.body) as ExportMetricsServiceRequest | ExportLogsServiceRequest,
          () => crypto.randomUUID(),
        );
        if (parts) {
          await queue.replace(
            batch.seq!,
            parts.map((p) => {
              const body = JSON.stringify(p);
              const { signal, createdAt, notBefore } = batch;
              return {
                id: idOf(p),
                signal,
                body,
                bytes: utf8Length(body),
                items: itemsOf(p),
                createdAt,
                attempts: 0,
                notBefore,
              };
            }),
          );
          report.split++;
          again = true;
          break;
        }
      }
      if (outcome.kind === 'failure') {
        await queue.setAside(batch, outcome.status, now());
        report.setAside++;
        report.refusedStatus = outcome.status;
        continue;
      }
      // No network is no sign of an overloaded server: the batch stays due, for the next timer
      // tick or the browser's `online` event; a server's 429/5xx earns a backoff.
      const at =
        outcome.status === 0
          ? now()
          : now() + retryDelay(batch.attempts, outcome.retryAfterMs, options.retry ?? RETRY_DEFAULTS, random);
      await queue.retryLater(batch, at);
      if (outcome.status !== 0) report.retryAt = at;
      report.pending = (await queue.list()).length;
      return report;
    }
    if (!again) break;
  }
  report.pending = (await queue.list()).length;
  return report;
}

function idOf(req: ExportMetricsServiceRequest | ExportLogsServiceRequest): string {
  const attrs =
    'resourceLogs' in req ? req.resourceLogs[0]?.resource.attributes : req.resourceMetrics[0]?.resource.attributes;
  const v = attrs?.find((a) => a.key === RESOURCE.batchId)?.value;
  return v && 'stringValue' in v ? v.stringValue : crypto.randomUUID();
}
