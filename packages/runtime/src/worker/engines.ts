import { BackendError, ModelFormatError, type BackendAttempt, type BackendId, type Engine, type EngineConfig, type EngineSession, type ModelBytes } from '@outpost/core';

const engines: Engine[] = [];

/** Registers an engine; engines are asked highest priority first. */
export function registerEngine(engine: Engine): void {
  if (engines.some((e) => e.name === engine.name)) return;
  engines.push(engine);
  engines.sort((a, b) => b.priority - a.priority);
}

/** The registered engines, highest priority first. */
export function registeredEngines(): readonly Engine[] {
  return engines;
}

/** The session that opened, and why earlier backends were passed over. */
export interface Opened {
  session: EngineSession;
  fallbackReason?: string;
  timings: { backendInit: number; sessionCreate: number };
}

/**
 * Opens a model on the first backend, in preference order, that works: each backend is probed
 * (is it on this device?) and then asked to open the model. A model the engine rejects as
 * malformed fails at once, since no other backend would read it either; otherwise one combined
 * {@link BackendError} is thrown only when every backend failed.
 */
export async function openModel(
  model: ModelBytes,
  backends: readonly BackendId[],
  config: EngineConfig,
  list: readonly Engine[] = engines,
): Promise<Opened> {
  const engine = list.find((e) => e.accepts(model));
  if (!engine) {
    throw new ModelFormatError(
      `No registered engine reads this model (engines: ${list.map((e) => e.name).join(', ') || 'none'})`,
    );
  }
  const attempts: BackendAttempt[] = [];
  for (const backend of backends) {
    const t0 = performance.now();
    const unavailable = await engine.probe(backend, config);
    if (unavailable) {
      attempts.push({ backend, reason: unavailable });
      continue;
    }
    const t1 = performance.now();
    try {
      const session = await engine.open(model, backend, config);
      const t2 = performance.now();
      const fallbackReason = attempts.length ? attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ') : undefined;
      return { session, fallbackReason, timings: { backendInit: t1 - t0, sessionCreate: t2 - t1 } };
    } catch (err) {
      if (err instanceof ModelFormatError) throw err;
      attempts.push({ backend, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  throw new BackendError(
    `No backend could run the model: ${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`,
    attempts,
  );
}
