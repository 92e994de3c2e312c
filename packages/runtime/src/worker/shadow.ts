import { agreement, type CompareSpec } from '@outpost/protocol';
import type { Tensor, TensorMap } from '@outpost/core';
import type { ShadowKey, ShadowStats } from '../telemetry/index.js';

/**
 * Shadow runs, worker side. The live worker holds a {@link ShadowTap} per live model: after a live
 * run has returned, a sample of its inputs (with a copy of the live outputs) goes to the shadow
 * worker over a MessagePort, and only when the shadow is idle (a busy shadow means the sample is
 * skipped, never queued) and has not overlapped more than its share of live runs
 * ({@link SHADOW_OVERLAP_SHARE}). The shadow worker's {@link ShadowServer} runs the candidate, compares,
 * and answers with figures only; the live worker records them with its telemetry. Inputs and
 * outputs move between the two workers of this page and go nowhere else.
 */

/** Live worker → shadow worker. */
interface ShadowJob {
  feeds: TensorMap;
  /** The live model's outputs for the same feeds (copies). */
  outputs: TensorMap;
}

/** Shadow worker → live worker. */
type ShadowReply =
  | { kind: 'compared'; agreement: number; shadowMs: number; variant: string; backend: string }
  | { kind: 'failed'; code: string; variant: string; backend: string }
  | { kind: 'busy' };

/** A tensor whose data is copied into a buffer of its own, and that buffer (to transfer). */
function own(t: Tensor): { tensor: Tensor; buffer: ArrayBufferLike | null } {
  const data = t.data as unknown;
  if (!ArrayBuffer.isView(data)) return { tensor: t, buffer: null };
  const copy = (data as unknown as { slice(): ArrayBufferView }).slice();
  return { tensor: { ...t, data: copy as Tensor['data'] }, buffer: copy.buffer };
}

function ownAll(map: TensorMap): { map: TensorMap; buffers: ArrayBufferLike[] } {
  const out: TensorMap = {};
  const buffers: ArrayBufferLike[] = [];
  for (const [name, t] of Object.entries(map)) {
    const o = own(t);
    out[name] = o.tensor;
    if (o.buffer) buffers.push(o.buffer);
  }
  return { map: out, buffers };
}

/**
 * The share of live runs a shadow may overlap. A shadow run shares the device's cores with the
 * live session, so a live run that overlaps one is slower (on 2 cores, live p95 rose 27-79% with
 * every sample sent). Live runs that overlap are counted; each live run earns this much credit
 * and each overlapped one costs 1, and a sample is sent only with credit left. When the model
 * runs now and then (a user's input, a camera at a modest rate) a shadow run falls between live
 * runs and every sample goes; when the live model runs back to back, at most about 1 live run in
 * 100 waits on a shadow, so the live p95 is that of the other 99, and the rest of the sample is
 * skipped (counted).
 */
export const SHADOW_OVERLAP_SHARE = 0.01;
/** Credit a tap starts with and never exceeds: after a quiet spell, a burst overlaps little. */
const MAX_CREDIT = 1;

/** The live side of one shadow: samples runs of one live model and records the shadow's answers. */
export class ShadowTap {
  private busy = false;
  private closed = false;
  private shadowLiveMs = 0;
  private last: { variant: string; backend: string } = { variant: '', backend: '' };
  private credit = MAX_CREDIT;
  /** When the last answer came ({@link clock}): a live run that started before it overlapped. */
  private answeredAt = -Infinity;

  constructor(
    private readonly port: MessagePort,
    private readonly sampleBp: number,
    /** The shadow's model and version, and the live version (what the figures are recorded under). */
    private readonly key: Omit<ShadowKey, 'variant' | 'backend'>,
    private readonly stats: ShadowStats | undefined,
    private readonly random: () => number = Math.random,
    private readonly clock: () => number = () => performance.now(),
  ) {
    port.onmessage = (e: MessageEvent<ShadowReply>) => this.answered(e.data);
  }

  private keyOf(): ShadowKey {
    return { ...this.key, ...this.last };
  }

  private answered(r: ShadowReply): void {
    this.busy = false;
    this.answeredAt = this.clock();
    if (r.kind === 'busy') {
      this.stats?.skipped(this.keyOf());
      return;
    }
    this.last = { variant: r.variant, backend: r.backend };
    if (r.kind === 'failed') this.stats?.failed(this.keyOf(), r.code);
    else this.stats?.compared(this.keyOf(), r.agreement, this.shadowLiveMs > 0 ? r.shadowMs / this.shadowLiveMs : NaN);
  }

  /**
   * Called after every live run with its feeds, outputs and run time. Costs a clock read and a
   * random draw when the run is not sampled; when it is, the shadow is idle and the tap has
   * credit, it copies the outputs (which are about to be transferred to the page) and, once the
   * live result has gone, sends both.
   */
  offer(feeds: TensorMap, outputs: TensorMap, liveMs: number): void {
    if (this.closed || this.sampleBp <= 0) return;
    // Did a shadow run share the cores with this live run (in flight now, or answered after it began)?
    const overlapped = this.busy || this.answeredAt > this.clock() - liveMs;
    this.credit = Math.min(MAX_CREDIT, this.credit + SHADOW_OVERLAP_SHARE - (overlapped ? 1 : 0));
    if (this.random() * 10000 >= this.sampleBp) return;
    if (this.busy || this.credit < 0) {
      this.stats?.skipped(this.keyOf());
      return;
    }
    this.busy = true;
    const live = ownAll(outputs);
    // After the live result is posted (Comlink posts it in this turn's continuation): the input
    // copy then costs the worker time between runs, never the live call's.
    setTimeout(() => {
      if (this.closed) return;
      this.shadowLiveMs = liveMs;
      const inputs = ownAll(feeds);
      const job: ShadowJob = { feeds: inputs.map, outputs: live.map };
      this.port.postMessage(job, [...inputs.buffers, ...live.buffers] as Transferable[]);
    }, 0);
  }

  /** Whether no shadow run of this tap is in flight. */
  get idle(): boolean {
    return !this.busy;
  }

  close(): void {
    this.closed = true;
    this.port.onmessage = null;
    this.port.close();
  }
}

/** One run at a time per shadow worker, whatever number of taps feed it. */
const shared = { busy: false };

/** The shadow side: runs the candidate on what a tap sends and answers with its agreement. */
export class ShadowServer {
  constructor(
    private readonly port: MessagePort,
    private readonly compare: CompareSpec,
    private readonly run: (feeds: TensorMap) => Promise<TensorMap>,
    private readonly describe: () => { variant: string; backend: string },
  ) {
    port.onmessage = (e: MessageEvent<ShadowJob>) => void this.serve(e.data);
  }

  private async serve(job: ShadowJob): Promise<void> {
    if (shared.busy) {
      this.port.postMessage({ kind: 'busy' } satisfies ShadowReply);
      return;
    }
    shared.busy = true;
    const t0 = performance.now();
    let reply: ShadowReply;
    try {
      const outputs = await this.run(job.feeds);
      const shadowMs = performance.now() - t0;
      const a = agreement(this.compare, job.outputs[this.compare.output], outputs[this.compare.output]);
      reply = { kind: 'compared', agreement: a, shadowMs, ...this.describe() };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      reply = { kind: 'failed', code: typeof code === 'string' ? code : 'UNKNOWN', ...this.describe() };
    } finally {
      shared.busy = false;
    }
    this.port.postMessage(reply);
  }

  close(): void {
    this.port.onmessage = null;
    this.port.close();
  }
}
