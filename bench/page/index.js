// The bench's in-page half. bench/run.mjs imports this module into the harness page (served by
// its Vite server) and calls one suite per page.evaluate; each returns plain JSON.
import * as Comlink from 'comlink';
import { byPhase, recordLongTasks } from './longtasks.js';
import { modelById } from './models.js';
import { loadInto, loadOrt, ortProxyPeer, outpostPeers, pageOrtPeer, startOutpost } from './peers.js';
import { interleave, timeCalls } from './timing.js';

/**
 * Per model, ms per call of onnxruntime-web on the page (or, with `proxy`, in ORT's proxy
 * worker) and of Outpost, interleaved. Without `proxy`, Outpost's `transfer` variant joins.
 * @param {{ threads: number, proxy: boolean, models: { id: string, warmup: number, runs: number }[] }} args
 */
export async function inference({ threads, proxy, models }) {
  const ort = await loadOrt({ threads, proxy });
  const runtime = await startOutpost(threads);
  const results = {};
  try {
    for (const { id, warmup, runs } of models) {
      const model = modelById(id);
      const ortPeer = proxy ? await ortProxyPeer(ort, model) : await pageOrtPeer(ort, model);
      const loaded = await loadInto(runtime, id, model);
      const peers = [ortPeer, ...outpostPeers(loaded, model, { transfer: !proxy })];
      results[id] = { backend: loaded.backend, times: await interleave(peers, { warmup, runs }) };
      await Promise.all(peers.map((p) => p.close()));
      await loaded.dispose();
    }
  } finally {
    await runtime.close();
  }
  return { crossOriginIsolated, results };
}

/**
 * Round trips to a trivial module worker, bare and behind comlink, each with a number and with
 * a number plus `bytes` of Float32Array copied in (the structured clone an Outpost call pays
 * for its input unless it transfers). Together they split Outpost's per-call cost into the
 * floor, comlink's share, the copy, and what remains (the worker's own work).
 */
export async function echo({ warmup, runs, bytes }) {
  const payload = new Float32Array(bytes / 4);
  const plain = new Worker(new URL('./echo-worker.js', import.meta.url), { type: 'module' });
  const rpc = new Worker(new URL('./comlink-echo-worker.js', import.meta.url), { type: 'module' });
  const remote = Comlink.wrap(rpc);
  const roundTrip = (message) =>
    new Promise((resolve) => {
      plain.onmessage = resolve;
      plain.postMessage(message);
    });
  const opts = { warmup, runs };
  try {
    // A worker that failed to load would leave the calls hanging; one that answered once won't.
    await Promise.all([answers(plain, () => roundTrip(1)), answers(rpc, () => remote.echo(1))]);
    return {
      bare: await timeCalls(() => roundTrip(1), opts),
      payload: await timeCalls(() => roundTrip({ payload }), opts),
      comlink: await timeCalls(() => remote.echo(1), opts),
      comlinkPayload: await timeCalls(() => remote.echo({ payload }), opts),
    };
  } finally {
    plain.terminate();
    rpc.terminate();
  }
}

/** Resolves once `call()` answers; rejects if the worker fails to load first. */
function answers(worker, call) {
  const failed = new Promise((_, reject) => {
    worker.addEventListener('error', (e) => reject(new Error(`bench worker failed to start: ${e.message}`)));
  });
  return Promise.race([call(), failed]);
}

/**
 * One start-up as an app sees it: `createRuntime()`, `load()` (with the runtime's own
 * breakdown in `model.timings`) and the first run. Whether the bytes came from the network or
 * IndexedDB depends on the store, which run.mjs prepares.
 */
export async function startup({ id, threads, sha256 }) {
  const model = modelById(id);
  const feeds = model.feeds();
  const t0 = performance.now();
  const runtime = await startOutpost(threads);
  const t1 = performance.now();
  const loaded = await loadInto(runtime, id, model, sha256);
  const t2 = performance.now();
  await loaded.run(feeds);
  const t3 = performance.now();
  await runtime.close();
  return {
    source: loaded.source,
    timings: loaded.timings,
    createRuntime: t1 - t0,
    load: t2 - t1,
    firstRun: t3 - t2,
  };
}

/**
 * Page-thread long tasks while a model downloads, loads and runs `runs` times, through Outpost
 * or through onnxruntime-web on the page. The store must be empty, so the download is included.
 */
export async function longTasks({ peer, id, threads, runs }) {
  const model = modelById(id);
  // Made before recording: building a 1.2 MB input is the app's work, not the runtime's.
  const feeds = model.feeds();
  const recorder = recordLongTasks();
  const open = peer === 'outpost' ? outpostSession : pageOrtSession;
  const session = await open(id, model, threads);
  const loaded = recorder.now();
  for (let i = 0; i < runs; i++) await session.run(feeds);
  const ran = recorder.now();
  await session.close();
  const tasks = await recorder.stop();
  const marks = { load: loaded, runs: ran };
  return { source: session.source, marks, tasks, phases: byPhase(tasks, marks) };
}

async function outpostSession(id, model, threads) {
  const runtime = await startOutpost(threads);
  const loaded = await loadInto(runtime, id, model);
  return { source: loaded.source, run: (feeds) => loaded.run(feeds), close: () => runtime.close() };
}

async function pageOrtSession(_id, model, threads) {
  const ort = await loadOrt({ threads, proxy: false });
  const peer = await pageOrtPeer(ort, model);
  return { source: 'network', run: (feeds) => peer.run(feeds), close: () => peer.close() };
}

export { int8Masks, int8Speed } from './int8.js';
export { movenetSpeed } from './movenet.js';
export {
  otaCheckDone,
  otaCheckInBackground,
  otaClose,
  otaGoldenOutput,
  otaLoad,
  otaStart,
  otaTimedCheck,
} from './ota.js';
