import { WorkerError, type ShadowPlan, type ShadowServeRequest } from '@outpost/core';
import * as Comlink from 'comlink';
import type { Model, ModelHost } from './model.js';
import { Stall } from './supervisor.js';
import type { WorkerHost } from './worker-host.js';

/** What the shadow runner needs from the runtime. */
export interface ShadowHost {
  primary: WorkerHost;
  /** Starts a worker of its own for a shadow (a WASM run cannot be pre-empted: never the live one). */
  startWorker(): Promise<WorkerHost>;
  /** Handles of models loaded by name, by model name. */
  named(): Map<string, Set<Model>>;
  /** A shadow load that makes no progress for this long stops its worker (`supervision.loadTimeout`); 0: never. */
  loadTimeoutMs: number;
}

/** A shadow running for one model: its worker, and the live sessions tapped. */
interface Running {
  plan: ShadowPlan;
  worker: WorkerHost;
  /** Each tapped handle with the session (worker and id) its tap is on. */
  taps: Map<Model, { host: ModelHost; id: number }>;
}

/**
 * Shadow runs, page side. At each update check it asks the primary worker which shadow the signed
 * channel names for this device, starts a separate worker that loads that version (from the store
 * or the repository, verified like any install), and connects each live session of the model to
 * it with a MessagePort: from then on inputs and live outputs go worker to worker (shadow.ts in the
 * worker), never through the page, and nothing here is on the run path. Handles that moved to an
 * update's new session are tapped again; a shadow the channel no longer names is stopped.
 */
export class ShadowRunner {
  private readonly running = new Map<string, Running>();
  /** Syncs run one after the other: two at once would start two shadow workers for one model. */
  private queue: Promise<void> = Promise.resolve();
  /** Pings the shadow workers between update checks (which may be hours apart). */
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(
    private readonly host: ShadowHost,
    private readonly onError: (name: string, version: string | undefined, error: Error) => void,
  ) {}

  /** Brings every model's shadow in line with the trusted channel (after a load by name, an update check). */
  sync(): Promise<void> {
    const next = this.queue.then(() => this.syncAll());
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * A shadow worker that stopped answering (hung in a run, or dead) is stopped, told to the app,
   * and started again: a hung one would burn a core until the next check, slowing live runs.
   */
  private watch(): void {
    const next = this.queue.then(async () => {
      if (this.closed) return;
      let replaced = false;
      for (const [name, cur] of [...this.running]) {
        if (await alive(cur.worker)) continue;
        this.stop(name);
        replaced = true;
        this.onError(
          name,
          cur.plan.version,
          new WorkerError(`The shadow worker of ${name} ${cur.plan.version} stopped answering: it was replaced`),
        );
      }
      if (replaced) await this.syncAll();
    });
    this.queue = next.catch(() => undefined);
  }

  private async syncAll(): Promise<void> {
    if (this.closed) return;
    const names = new Set([...this.host.named().keys(), ...this.running.keys()]);
    for (const name of names) {
      try {
        await this.syncOne(name);
      } catch (err) {
        // Tried again at the next check, from scratch.
        this.stop(name);
        this.onError(name, undefined, err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  private async syncOne(name: string): Promise<void> {
    const { primary } = this.host;
    const plan = await primary.guard(primary.api.shadowPlan(name));
    const handles = plan ? [...(this.host.named().get(name) ?? [])].filter((h) => h.version !== plan.version) : [];
    let cur = this.running.get(name);
    // A shadow worker that died (a trap in WASM) or hangs would leave its taps waiting for an
    // answer that never comes, skipping every sample: it is replaced.
    if (cur && (!plan || cur.plan.version !== plan.version || handles.length === 0 || !(await alive(cur.worker)))) {
      this.stop(name);
      cur = undefined;
    }
    if (!plan || handles.length === 0) return;
    if (cur && cur.plan.sampleBp !== plan.sampleBp) {
      cur.plan = plan;
      cur.taps.clear();
    }
    if (!cur) {
      cur = { plan, worker: await this.host.startWorker(), taps: new Map() };
      this.running.set(name, cur);
      this.heartbeat ??= setInterval(() => this.watch(), HEARTBEAT_MS);
    }
    const { worker } = cur;
    for (const model of [...cur.taps.keys()]) {
      if (!handles.includes(model)) {
        const t = cur.taps.get(model)!;
        cur.taps.delete(model);
        await t.host.guard(t.host.api.shadowUntap(t.id)).catch(() => undefined);
      }
    }
    for (const model of handles) {
      const at = { host: model.hostOf, id: model.sessionId };
      const tapped = cur.taps.get(model);
      if (tapped && tapped.host === at.host && tapped.id === at.id) continue;
      const { port1, port2 } = new MessageChannel();
      const req = { callId: worker.nextCallId(), name, version: plan.version, port: port2 };
      await this.serve(worker, req);
      const tap = { modelId: at.id, port: port1, sampleBp: plan.sampleBp, shadowVersion: plan.version };
      await at.host.guard(at.host.api.shadowTap(Comlink.transfer(tap, [port1])));
      cur.taps.set(model, at);
    }
  }

  /**
   * Loads the shadow version in its worker and connects it to a live session's port. Under the
   * load watchdog: a load that makes no progress for the load timeout stops the worker, so the
   * sync (and the update check waiting on it) fails instead of waiting forever; the heartbeat
   * cannot help here, as it waits its turn behind the sync.
   */
  private serve(worker: WorkerHost, req: ShadowServeRequest & { port: MessagePort }): Promise<void> {
    const ms = this.host.loadTimeoutMs;
    const onStall = () =>
      worker.terminate(
        new WorkerError(
          `The shadow ${req.name}@${req.version} made no progress loading for ${ms} ms: its worker was stopped`,
        ),
      );
    return Stall.watch(ms, onStall, (progress) =>
      worker.guard(worker.api.shadowServe(Comlink.transfer(req, [req.port]), Comlink.proxy(progress))),
    );
  }

  /** Stops a model's shadow: its taps removed, its worker terminated. */
  private stop(name: string): void {
    const cur = this.running.get(name);
    if (!cur) return;
    this.running.delete(name);
    if (this.running.size === 0) {
      clearInterval(this.heartbeat);
      this.heartbeat = undefined;
    }
    for (const t of cur.taps.values()) void t.host.guard(t.host.api.shadowUntap(t.id)).catch(() => undefined);
    cur.worker.terminate(new Error(`The shadow of ${name} stopped`));
  }

  /** The shadow versions running now, by model (for tests and the app's curiosity). */
  get active(): Record<string, ShadowPlan> {
    return Object.fromEntries([...this.running].map(([n, r]) => [n, r.plan]));
  }

  close(): void {
    this.closed = true;
    for (const name of [...this.running.keys()]) this.stop(name);
  }
}

/** How long a shadow worker may take to answer a ping (it may be in the middle of a run). */
const PING_MS = 5000;
/** How often running shadow workers are pinged between update checks. */
const HEARTBEAT_MS = 10_000;

/** Whether a worker answers within {@link PING_MS}. */
async function alive(worker: WorkerHost): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), PING_MS)));
  try {
    return await Promise.race([worker.guard(worker.api.hello()).then(() => true as const), late]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
