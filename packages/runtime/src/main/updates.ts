import { UpdateError, type UpdateCheck, type UpdatePlan } from '@outpost/core';
import type { Model } from './model.js';
import type { WorkerHost } from './worker-host.js';

/** Events of {@link Updates}, with what each carries. */
export interface UpdateEvents {
  /** The channel names another version for this device. */
  available: UpdatePlan;
  /** The version is downloaded, verified, stored, and passed its health check in a second worker. */
  downloaded: { name: string; version: string };
  /** The version is now active (and, with `activate: 'now'`, serving every handle of the model). */
  activated: { name: string; version: string; previous?: string; rollback: boolean };
  /** The new version failed its health check: it was marked bad and the active one kept serving. */
  'rolled-back': { name: string; version: string; reason: string };
  /** Repository metadata was refused (expired, bad signature, rollback): installed models keep serving. */
  'stale-metadata': { code: string; message: string };
  /** Anything else that went wrong in the background (network, storage). */
  error: { name?: string; version?: string; error: Error };
}

export type UpdateEventName = keyof UpdateEvents;

/** Over-the-air updates of models loaded by name. */
export interface Updates {
  /**
   * Checks the repository now and installs what the channel names for this device: each new
   * version is built and health-checked in a second worker while the current one keeps
   * serving, then activated. Concurrent calls share one check.
   */
  check(): Promise<UpdateCheck>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends UpdateEventName>(event: E, handler: (detail: UpdateEvents[E]) => void): () => void;
}

/** What the updater needs from the runtime. */
export interface UpdateHost {
  primary: WorkerHost;
  /** Starts a worker for staging a new version. */
  startWorker(): Promise<WorkerHost>;
  /** Handles of models loaded by name, by model name. */
  named(): Map<string, Set<Model>>;
  activate: 'now' | 'next-load';
}

/** The page side of updates: checks in the main worker, stages in a second one, switches handles. */
export class UpdateController implements Updates {
  private readonly handlers = new Map<UpdateEventName, Set<(d: never) => void>>();
  private running: Promise<UpdateCheck> | undefined;

  constructor(private readonly host: UpdateHost) {}

  on<E extends UpdateEventName>(event: E, handler: (detail: UpdateEvents[E]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  private emit<E extends UpdateEventName>(event: E, detail: UpdateEvents[E]): void {
    for (const h of this.handlers.get(event) ?? []) {
      try {
        (h as (d: UpdateEvents[E]) => void)(detail);
      } catch (err) {
        // A failing handler must not stop an update; report it like any background failure.
        if (event !== 'error') this.emit('error', { error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  check(): Promise<UpdateCheck> {
    this.running ??= this.checkOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async checkOnce(): Promise<UpdateCheck> {
    const { primary } = this.host;
    const result = await primary.guard(primary.api.checkUpdates([...this.host.named().keys()]));
    if (result.refused) this.emit('stale-metadata', result.refused);
    for (const plan of result.plans) {
      this.emit('available', plan);
      await this.install(plan);
    }
    return result;
  }

  private async install(plan: UpdatePlan): Promise<void> {
    const { name, to } = plan;
    let staging: WorkerHost | undefined;
    try {
      staging = await this.host.startWorker();
      const info = await staging.guard(
        staging.api.loadNamed({ callId: staging.nextCallId(), name, version: to, activate: false }),
      );
      this.emit('downloaded', { name, version: to });
      await this.host.primary.guard(this.host.primary.api.activate(name, to));
      const handles = [...(this.host.named().get(name) ?? [])];
      if (this.host.activate === 'now' && handles.length > 0) {
        const [first, ...rest] = handles;
        const swaps: { model: Model; info: typeof info }[] = [{ model: first!, info }];
        for (const model of rest) {
          const more = await staging.guard(
            staging.api.loadNamed({ callId: staging.nextCallId(), name, version: to, activate: false }),
          );
          swaps.push({ model, info: more });
        }
        for (const { model, info: next } of swaps) {
          const old = model.rebind(staging, next);
          (old.host as WorkerHost).models.delete(model);
          staging.models.add(model);
          void this.release(old.host as WorkerHost, old.id);
        }
      } else {
        await staging.guard(staging.api.dispose(info.id));
        staging.terminate(new UpdateError('Staging worker closed', name, to));
      }
      const activated: UpdateEvents['activated'] = { name, version: to, rollback: plan.rollback };
      if (plan.from !== undefined) activated.previous = plan.from;
      this.emit('activated', activated);
    } catch (err) {
      if (staging && staging.models.size === 0) staging.terminate(new UpdateError('Staging failed', name, to));
      if (err instanceof UpdateError) {
        this.emit('rolled-back', { name, version: to, reason: err.message });
      } else {
        this.emit('error', { name, version: to, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  /** Disposes an old session once its queued runs finished; stops a staging worker left empty. */
  private async release(host: WorkerHost, id: number): Promise<void> {
    try {
      await host.guard(host.api.dispose(id));
    } catch {
      // The worker is gone already: nothing left to release.
    }
    if (host !== this.host.primary && host.models.size === 0) {
      host.terminate(new UpdateError('Worker retired after an update', '', ''));
    }
  }
}
