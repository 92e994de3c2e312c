// The ways of running one model that the bench compares. Each peer is
// `{ name, prepare(), run(args), close() }`: `prepare` makes what one call consumes and is not
// timed (an app that transfers its input has built a fresh buffer for it anyway), `run` is the
// timed call, from the page's point of view: it resolves when the outputs are usable on the page.
import { copyFeeds, toOrt } from './models.js';

const SESSION_OPTIONS = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };

/**
 * onnxruntime-web configured on the page: the WASM build Outpost uses, `threads`, and whether
 * its own proxy worker runs the sessions. Both settings are read once, at the first session of
 * the page, so one page can hold either direct or proxy sessions, never both.
 */
export async function loadOrt({ threads, proxy }) {
  const ort = await window.loadOrt('wasm');
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = proxy;
  ort.env.logLevel = 'error';
  return ort;
}

/** onnxruntime-web called directly on the page thread: the baseline. Reuses one input buffer. */
export async function pageOrtPeer(ort, model) {
  const session = await ort.InferenceSession.create(model.url, SESSION_OPTIONS);
  const feeds = model.feeds();
  return {
    name: 'page-ort',
    prepare: () => feeds,
    run: (f) => session.run(toOrt(ort, f)),
    close: () => session.release(),
  };
}

/**
 * onnxruntime-web with `env.wasm.proxy = true`: its sessions live in its own worker, which
 * transfers (detaches) the input buffers, so every call gets fresh ones, made untimed.
 */
export async function ortProxyPeer(ort, model) {
  const session = await ort.InferenceSession.create(model.url, SESSION_OPTIONS);
  const feeds = model.feeds();
  return {
    name: 'ort-proxy',
    prepare: () => copyFeeds(feeds),
    run: (f) => session.run(toOrt(ort, f)),
    close: () => session.release(),
  };
}

/** A loaded Outpost model as one or two peers: the default call (inputs copied) and `transfer`. */
export function outpostPeers(outpostModel, model, { transfer }) {
  const feeds = model.feeds();
  const peers = [{ name: 'outpost', prepare: () => feeds, run: (f) => outpostModel.run(f), close: () => {} }];
  if (transfer) {
    peers.push({
      name: 'outpost-transfer',
      prepare: () => copyFeeds(feeds),
      run: (f) => outpostModel.run(f, { transfer: true }),
      close: () => {},
    });
  }
  return peers;
}

/** A runtime pinned to WASM and `threads`, the settings the ORT peers get. */
export function startOutpost(threads) {
  return window.outpost.createRuntime({ backends: ['wasm'], wasm: { numThreads: threads } });
}

/** Loads a bench model into an Outpost runtime under a name of the bench's own. */
export function loadInto(runtime, id, model, sha256) {
  return runtime.load({ name: `bench-${id}`, version: model.version, url: model.url, sha256 });
}
