// The OTA section's in-page half: a runtime on the signed repository (reached through the
// harness's /repo proxy), models loaded by name, update checks, and when each update event
// arrived. Node (bench/lib/ota.mjs) publishes, throttles and kills the page.

/** Events of `rt.updates`, each stamped with `performance.now()` as the page receives it. */
const EVENTS = ['available', 'downloaded', 'activated', 'rolled-back', 'stale-metadata', 'error'];

/**
 * Starts an Outpost runtime on the repository (WASM, updates checked only when asked and
 * activated at once), as an app that ships `trustedRoot` does.
 */
export async function otaStart({ trustedRoot }) {
  const w = window;
  w.benchOta = { events: [], models: {} };
  w.benchOta.rt = await window.outpost.createRuntime({
    repository: { url: '/repo', trustedRoot },
    backends: ['wasm'],
    updates: { checkEvery: 0, activate: 'now' },
  });
  for (const type of EVENTS) {
    w.benchOta.rt.updates.on(type, (d) =>
      w.benchOta.events.push({
        type,
        at: performance.now(),
        name: d?.name,
        version: d?.version,
        error: d?.error ? `${d.error.name}: ${d.error.message}` : d?.reason,
      }),
    );
  }
}

/** Loads `name` by name (the active version from the store, or the channel's, installed). */
export async function otaLoad({ name }) {
  const model = await window.benchOta.rt.load(name);
  window.benchOta.models[name] = model;
  return { version: model.version, source: model.source };
}

/** Starts an update check and returns at once: Node kills the page while it downloads. */
export function otaCheckInBackground() {
  window.benchOta.checking = window.benchOta.rt.updates.check().catch((e) => e);
}

/** Waits for a check started by {@link otaCheckInBackground}; the events it raised. */
export async function otaCheckDone({ name }) {
  const result = await window.benchOta.checking;
  if (result instanceof Error) throw result;
  return { events: window.benchOta.events, version: window.benchOta.models[name]?.version };
}

/**
 * One update, timed from the call to `updates.check()`: when `available`, `downloaded` and
 * `activated` arrived (ms after the call), and the version the open handle serves afterwards.
 */
export async function otaTimedCheck({ name }) {
  const ota = window.benchOta;
  ota.events = [];
  const t0 = performance.now();
  await ota.rt.updates.check();
  const done = performance.now() - t0;
  const at = (type) => {
    const e = ota.events.find((x) => x.type === type && x.name === name);
    return e ? e.at - t0 : undefined;
  };
  const failed = ota.events.find((x) => ['rolled-back', 'error', 'stale-metadata'].includes(x.type));
  if (failed) throw new Error(`update of ${name} failed: ${failed.type} ${failed.error ?? ''}`);
  return {
    available: at('available'),
    downloaded: at('downloaded'),
    activated: at('activated'),
    checkReturned: done,
    version: ota.models[name]?.version,
  };
}

export async function otaClose() {
  await window.benchOta?.rt.close();
}

/**
 * A golden output for a model: `feeds` run through a plain URL load in a runtime of its own,
 * the same engine and thread count the health check will use, so the check compares like with
 * like. Returns the first output as plain numbers.
 */
export async function otaGoldenOutput({ url, feeds }) {
  const rt = await window.outpost.createRuntime({ backends: ['wasm'] });
  try {
    const model = await rt.load({ name: 'bench-ota-golden', version: '1', url });
    const tensors = Object.fromEntries(
      Object.entries(feeds).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: Float32Array.from(t.data) }]),
    );
    const out = await model.run(tensors);
    const [name, t] = Object.entries(out)[0];
    await model.dispose();
    return { name, dims: t.dims, data: Array.from(t.data) };
  } finally {
    await rt.close();
  }
}
