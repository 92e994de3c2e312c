import {
  UpdateError,
  WorkerError,
  type LoadedModelInfo,
  type ShadowPlan,
  type UpdateCheck,
  type UpdatePlan,
} from '@outpost/core';
import * as Comlink from 'comlink';
import type { Model } from './model.js';
import { ShadowRunner } from './shadow.js';
import { Stall } from './supervisor.js';
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
  /**
   * The shadow versions running on this device now, by model: each check starts, moves or stops
   * them as the signed channel says (run in a worker of their own on a sample of real inputs).
   */
  shadows(): Record<string, ShadowPlan>;
}

/** A handle and the staged session it moves to. */
interface Swap {
  model: Model;
  info: LoadedModelInfo;
}

/** What the updater needs from the runtime. */
export interface UpdateHost {
  primary: WorkerHost;
  /** Starts a worker for staging a new version. */
  startWorker(): Promise<WorkerHost>;
  /** Handles of models loaded by name, by model name. */
  named(): Map<string, Set<Model>>;
  activate: 'now' | 'next-load';
  /** Leave downloads for later while the browser's Save-Data mode is on. */
  deferOnSaveData: boolean;
  /**
   * A staging load that makes no progress for this long is taken as a hung worker (as
   * `supervision.loadTimeout` for `load`); 0: never.
   */
  loadTimeoutMs: number;
  /** Tells the app (`rt.on('error')`) that a hung staging worker was replaced. */
  workerReplaced(reason: Error): void;
}

/** Staging calls under the load watchdog, and whether it fired. */
interface Watch {
  <T>(call: (progress: () => void) => Promise<T>): Promise<T>;
  stalled: boolean;
}

/** The page side of updates: checks in the main worker, stages in a second one, switches handles. */
export class UpdateController implements Updates {
  private readonly handlers = new Map<UpdateEventName, Set<(d: never) => void>>();
  private running: Promise<UpdateCheck> | undefined;
  /** Workers being retired after an update: persisting their telemetry, then terminated once. */
  private readonly retiring = new WeakSet<WorkerHost>();
  /** Tells other tabs of this origin that a version was activated, so they follow at once. */
  private readonly channel: BroadcastChannel | undefined;
  private readonly shadow: ShadowRunner;

  constructor(private readonly host: UpdateHost) {
    this.shadow = new ShadowRunner(
      {
        get primary() {
          return host.primary;
        },
        startWorker: () => host.startWorker(),
        named: () => host.named(),
        loadTimeoutMs: host.loadTimeoutMs,
      },
      (name, version, error) => this.emit('error', { name, ...(version ? { version } : {}), error }),
    );
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('outpost-updates') : undefined;
    this.channel?.addEventListener('message', () => {
      this.check().catch(() => undefined);
    });
  }

  /** Stops listening to other tabs, and stops the shadows. */
  close(): void {
    this.channel?.close();
    this.shadow.close();
  }

  shadows(): Record<string, ShadowPlan> {
    return this.shadow.active;
  }

  /** Starts the shadow the channel names for models loaded by name (once loaded; checks do it too). @internal */
  followShadows(): void {
    void this.shadow.sync();
  }

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
    const deferred = this.host.deferOnSaveData && saveData();
    for (const plan of result.plans) {
      this.emit('available', plan);
      // The user asked the browser to save data: the update waits for a later check.
      if (deferred) continue;
      // U15: one tab downloads; a tab waiting here finds the version stored when its turn comes.
      await withLock(`outpost-update:${plan.name}`, () => this.install(plan));
    }
    // Another tab may have activated a version: handles here follow it, from the store.
    for (const [name, handles] of this.host.named()) {
      const active = result.active[name];
      if (!active || result.plans.some((p) => p.name === name)) continue;
      const stale = [...handles].find((h) => h.version !== active);
      if (stale) await this.adopt(name, active, stale.version);
    }
    // Shadows follow the channel (and the handles, which may have moved to new sessions).
    if (!result.offline && !result.refused) await this.shadow.sync();
    return result;
  }

  /**
   * Loads `version` in a new worker (from the store or the repository), checks its health and
   * readies the swaps. A staging worker that makes no progress for the load timeout (onnxruntime's
   * threaded session creation hangs now and then in Firefox) is stopped and the whole staging
   * tried once more in a new one: a hung worker says nothing about the version, and without
   * this the check, and the update lock every tab shares, would wait forever.
   */
  private async stage(
    name: string,
    version: string,
    loaded: () => void = () => undefined,
  ): Promise<{ staging: WorkerHost; info: LoadedModelInfo; swaps: Swap[] | null }> {
    let told = false;
    for (let attempt = 1; ; attempt++) {
      const staging = await this.host.startWorker();
      const watch = this.watcher(staging, name, version);
      try {
        const info = await watch((progress) =>
          staging.api.loadNamed(
            { callId: staging.nextCallId(), name, version, activate: false },
            Comlink.proxy(progress),
          ),
        );
        if (!told) loaded();
        told = true;
        return { staging, info, swaps: await this.prepareSwaps(name, version, staging, info, watch) };
      } catch (err) {
        if (!staging.dead) staging.terminate(new UpdateError('Staging failed', name, version));
        if (!watch.stalled || attempt === 2) throw err;
        this.host.workerReplaced(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  /** Runs calls to `staging` under the load watchdog: a stall stops the worker, which fails the call. */
  private watcher(staging: WorkerHost, name: string, version: string): Watch {
    const ms = this.host.loadTimeoutMs;
    const onStall = () => {
      watch.stalled = true;
      staging.terminate(
        new WorkerError(
          `Staging ${name}@${version} made no progress for ${ms} ms: the staging worker is taken as hung and replaced`,
        ),
      );
    };
    const watch = (<T>(call: (progress: () => void) => Promise<T>): Promise<T> =>
      Stall.watch(ms, onStall, (progress) => staging.guard(call(progress)))) as Watch;
    watch.stalled = false;
    return watch;
  }

  /**
   * With `activate: 'now'`, readies a session of the staged version for every handle of `name`
   * and warms each at the shapes its handle was last fed, in the staging worker while the old
   * version keeps serving: the first real run after the switch is then as fast as any other,
   * and a version that cannot take those inputs fails here (an `UpdateError`: rolled back,
   * never activated) instead of on the app's next call. Null when no handle moves.
   */
  private async prepareSwaps(
    name: string,
    version: string,
    staging: WorkerHost,
    info: LoadedModelInfo,
    watch: Watch,
  ): Promise<Swap[] | null> {
    const handles = [...(this.host.named().get(name) ?? [])];
    if (this.host.activate !== 'now' || handles.length === 0) return null;
    const [first, ...rest] = handles;
    const swaps: Swap[] = [{ model: first!, info }];
    for (const model of rest) {
      const more = await watch((progress) =>
        staging.api.loadNamed(
          { callId: staging.nextCallId(), name, version, activate: false },
          Comlink.proxy(progress),
        ),
      );
      swaps.push({ model, info: more });
    }
    for (const { model, info: next } of swaps) {
      const shapes = model.lastShapes;
      if (!shapes) continue;
      try {
        await watch(() => staging.api.warm(next.id, shapes));
      } catch (err) {
        // A hung worker says nothing about the version: staged again, not marked bad.
        if (watch.stalled) throw err;
        staging.terminate(new UpdateError('Staging failed', name, version));
        const why = err instanceof Error ? err.message : String(err);
        // Like a failed health check: never installed again on this device.
        const { primary } = this.host;
        await primary
          .guard(primary.api.markBad(name, version, `failed at the app's input shapes: ${why}`))
          .catch(() => undefined);
        throw new UpdateError(`${name}@${version} failed a run at the app's input shapes: ${why}`, name, version, {
          cause: err,
        });
      }
    }
    return swaps;
  }

  /**
   * Moves the handles to their new sessions, between two runs (`swaps`); without swaps, releases
   * the staging worker (the version serves from the next load).
   */
  private async switchHandles(
    name: string,
    version: string,
    staging: WorkerHost,
    info: LoadedModelInfo,
    swaps: Swap[] | null,
  ) {
    if (!swaps) {
      await staging.guard(staging.api.dispose(info.id)).catch(() => undefined);
      // What the staging worker recorded (the new version's cold load) goes to the queue first.
      await staging.guard(staging.api.telemetryPersist()).catch(() => undefined);
      staging.terminate(new UpdateError('Staging worker closed', name, version));
      return;
    }
    for (const { model, info: next } of swaps) {
      const old = model.rebind(staging, next);
      (old.host as WorkerHost).models.delete(model);
      staging.models.add(model);
      void this.release(old.host as WorkerHost, old.id);
    }
  }

  private async install(plan: UpdatePlan): Promise<void> {
    const { name, to } = plan;
    try {
      const { staging, info, swaps } = await this.stage(name, to, () => this.emit('downloaded', { name, version: to }));
      try {
        await this.host.primary.guard(this.host.primary.api.activate(name, to));
      } catch (err) {
        staging.terminate(new UpdateError('Activation failed', name, to));
        throw err;
      }
      await this.switchHandles(name, to, staging, info, swaps);
      const activated: UpdateEvents['activated'] = { name, version: to, rollback: plan.rollback };
      if (plan.from !== undefined) activated.previous = plan.from;
      this.emit('activated', activated);
      this.channel?.postMessage({ name, version: to });
    } catch (err) {
      if (err instanceof UpdateError) {
        this.emit('rolled-back', { name, version: to, reason: err.message });
      } else {
        this.emit('error', { name, version: to, error: err instanceof Error ? err : new Error(String(err)) });
      }
    }
  }

  /** Follows a version another tab activated: loaded from the store, no download. */
  private async adopt(name: string, version: string, from: string): Promise<void> {
    try {
      const { staging, info, swaps } = await this.stage(name, version);
      await this.switchHandles(name, version, staging, info, swaps);
      this.emit('activated', { name, version, previous: from, rollback: false });
    } catch (err) {
      this.emit('error', { name, version, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  /** Disposes an old session once its queued runs finished; stops a staging worker left empty. */
  private async release(host: WorkerHost, id: number): Promise<void> {
    try {
      await host.guard(host.api.dispose(id));
    } catch {
      // The worker is gone already: nothing left to release.
    }
    if (host !== this.host.primary && host.models.size === 0 && !this.retiring.has(host)) {
      // Runs it recorded since the last flush are queued before it goes (once per worker).
      this.retiring.add(host);
      await host.guard(host.api.telemetryPersist()).catch(() => undefined);
      if (host.models.size > 0) {
        this.retiring.delete(host);
        return;
      }
      host.terminate(new UpdateError('Worker retired after an update', '', ''));
    }
  }
}

/** Runs `fn` holding a Web Lock of this origin (all tabs), or directly where Web Locks are missing. */
async function withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  if (!locks) return fn();
  return await locks.request(name, fn);
}

/** Whether the user turned on the browser's data saver (Network Information API, Chromium). */
function saveData(): boolean {
  return (globalThis.navigator as { connection?: { saveData?: boolean } } | undefined)?.connection?.saveData === true;
}
