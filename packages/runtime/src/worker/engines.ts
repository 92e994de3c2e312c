import {
  BackendError,
  ModelFormatError,
  type BackendAttempt,
  type BackendId,
  type Engine,
  type EngineConfig,
  type EngineSession,
  type ModelBytes,
} from '@outpost/core';
import { browserDevice, type Device } from './device.js';
import { allFinite, syntheticFeeds } from './feeds.js';

const engines: Engine[] = [];

/** The device this worker runs on; checked once, shared by every load. */
export const workerDevice: Device = browserDevice();

/** Registers an engine (once per name); `openModel` asks engines highest priority first. */
export function registerEngine(engine: Engine): void {
  if (engines.some((e) => e.name === engine.name)) return;
  engines.push(engine);
}

/** The registered engines. */
export function registeredEngines(): readonly Engine[] {
  return engines;
}

/**
 * One run on synthetic inputs before a WebGPU session is trusted: a WebGPU session can be
 * created and then fail, or return non-finite values, on its first run. Disposes and throws
 * when it does, so the next backend is tried.
 */
async function probeRun(session: EngineSession): Promise<void> {
  try {
    const bad = allFinite(await session.run(syntheticFeeds(session.inputs)));
    if (bad) throw new Error(`probe run gave non-finite values in output "${bad}"`);
  } catch (err) {
    await session.dispose().catch(() => undefined);
    throw new Error(`probe run failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The session that opened, and why earlier backends were passed over. */
export interface Opened {
  session: EngineSession;
  /** Name of the engine that opened it. */
  engine: string;
  fallbackReason?: string;
  timings: { backendInit: number; sessionCreate: number };
}

/**
 * Opens a model on the first backend, in preference order, that works; for each backend the
 * engines that read the model are asked highest priority first. Each is probed (is the backend
 * on this device?) and then asked to open the model. A model an engine rejects as malformed
 * fails at once, since no backend would read it; otherwise one combined {@link BackendError} is
 * thrown only when every engine and backend failed.
 */
export async function openModel(
  model: ModelBytes,
  backends: readonly BackendId[],
  config: EngineConfig,
  list: readonly Engine[] = engines,
  device: Device = workerDevice,
): Promise<Opened> {
  const readers = list.filter((e) => e.accepts(model)).sort((a, b) => b.priority - a.priority);
  if (readers.length === 0) {
    throw new ModelFormatError(
      `No registered engine reads this model (engines: ${list.map((e) => e.name).join(', ') || 'none'})`,
    );
  }
  const attempts: BackendAttempt[] = [];
  const label = (engine: Engine, backend: BackendId) => (readers.length > 1 ? `${engine.name}/${backend}` : backend);
  for (const backend of backends) {
    const t = performance.now();
    const missing = await device.missing(backend);
    if (missing) {
      attempts.push({ backend, reason: missing });
      continue;
    }
    for (const engine of readers) {
      const t0 = t;
      const unavailable = (await engine.probe?.(backend, config)) ?? null;
      if (unavailable) {
        attempts.push({ backend: label(engine, backend), reason: unavailable });
        continue;
      }
      let t1 = t0;
      try {
        await engine.init(backend, config);
        t1 = performance.now();
        const session = await engine.open(model, backend, config);
        if (backend === 'webgpu') await probeRun(session);
        const t2 = performance.now();
        const fallbackReason = attempts.length
          ? attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')
          : undefined;
        return {
          session,
          engine: engine.name,
          fallbackReason,
          timings: { backendInit: t1 - t0, sessionCreate: t2 - t1 },
        };
      } catch (err) {
        if (err instanceof ModelFormatError) throw err;
        attempts.push({ backend: label(engine, backend), reason: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  throw new BackendError(
    `No backend could run the model: ${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`,
    attempts,
  );
}
