// The Node half of each measurement: which pages and browser contexts it needs, in what state,
// and the raw samples it brings back. The timing itself happens in the page (bench/page/).
import { clearStore, openHarness, runSuite } from './browser.mjs';
import { medianOfFields, medianPairedDifference, ratioInterval, summary } from './stats.mjs';

/** Runs `fn(page)` in a fresh browser context (empty IndexedDB and HTTP cache), then closes it. */
async function inFreshContext(env, fn) {
  const context = await env.browser.newContext();
  try {
    return await fn(await openHarness(context, env.baseUrl));
  } finally {
    await context.close();
  }
}

/** Median [p95] per peer, and Outpost against its same-page peer: ratio (with its 95% interval) and added ms per call. */
function compare(times, peer) {
  const peers = Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, summary(xs)]));
  return {
    peers,
    ratio: peers.outpost.median / peers[peer].median,
    ratio95: ratioInterval(times.outpost, times[peer]),
    addedMs: medianPairedDifference(times.outpost, times[peer]),
  };
}

/**
 * 1. Worker overhead. Per thread count, one page compares Outpost with onnxruntime-web on the
 * page thread, and another with ORT's proxy worker: ORT reads `numThreads` and `proxy` once per
 * page, so the two ORT modes cannot share one.
 */
export async function workerOverhead(env, { threads, models }) {
  const out = {};
  for (const t of threads) {
    const args = (proxy) => ({ threads: t, proxy, models });
    const direct = await inFreshContext(env, (page) => runSuite(page, 'inference', args(false)));
    if (!direct.crossOriginIsolated) throw new Error('The harness page is not cross-origin isolated: no threads');
    const proxy = await inFreshContext(env, (page) => runSuite(page, 'inference', args(true)));
    for (const { id } of models) {
      out[id] ??= {};
      out[id][t] = {
        vsPage: compare(direct.results[id].times, 'page-ort'),
        vsProxy: compare(proxy.results[id].times, 'ort-proxy'),
        raw: { direct: direct.results[id].times, proxy: proxy.results[id].times },
      };
    }
  }
  return out;
}

/** The floor under any worker call: round trips to a trivial module worker, bare and via comlink. */
export async function echoRoundTrip(env, args) {
  const raw = await inFreshContext(env, (page) => runSuite(page, 'echo', args));
  return { bytes: args.bytes, ...Object.fromEntries(Object.entries(raw).map(([k, xs]) => [k, summary(xs)])) };
}

/**
 * 2. Start-up. Each repetition is a fresh context (a first visit: nothing in IndexedDB or the
 * HTTP cache) loading from the network, then the same context reloaded (a returning visit)
 * loading from IndexedDB. The load names the model's SHA-256, as an app with signed metadata
 * does, so the download is verified too. A load from the wrong place fails the bench rather
 * than mislabel it.
 */
export async function startup(env, { id, threads, repeats, sha256 }) {
  const cold = [];
  const warm = [];
  for (let i = 0; i < repeats; i++) {
    await inFreshContext(env, async (page) => {
      await clearStore(page);
      cold.push(expectSource(await runSuite(page, 'startup', { id, threads, sha256 }), 'network'));
      await page.reload();
      await page.waitForFunction(() => window.harnessReady === true);
      warm.push(expectSource(await runSuite(page, 'startup', { id, threads, sha256 }), 'cache'));
    });
  }
  return { cold: flatMedians(cold), warm: flatMedians(warm), raw: { cold, warm } };
}

function expectSource(result, source) {
  if (result.source !== source) throw new Error(`Expected a load from ${source}, got one from ${result.source}`);
  return result;
}

/** Medians of the page's figures and of each `model.timings` step, in one flat record. */
function flatMedians(results) {
  // `source` is a label, not a figure; medianOfFields skips non-numbers.
  return medianOfFields(results.map(({ timings, ...page }) => ({ ...timings, ...page })));
}

/** 3. Page-thread long tasks while a model downloads, loads and runs, through each peer. */
export async function longTasks(env, { id, threads, runs }) {
  const out = {};
  for (const peer of ['outpost', 'page-ort']) {
    out[peer] = await inFreshContext(env, async (page) => {
      await clearStore(page);
      return runSuite(page, 'longTasks', { peer, id, threads, runs });
    });
  }
  return out;
}

/**
 * 5. INT8. Per thread count, one fresh page loads fp32 and the quantized variants of each
 * comparison into one Outpost runtime and calls them interleaved. Speed-up is fp32's median
 * over the variant's (> 1: INT8 is faster), with its 95% bootstrap interval.
 */
export async function int8Speed(env, { threads, comparisons }) {
  const out = {};
  for (const t of threads) {
    const args = {
      threads: t,
      comparisons: comparisons.map(({ id, feed, variants, warmup, runs }) => ({
        id,
        feed,
        warmup,
        runs,
        variants: variants.map(({ name, url, sha256 }) => ({ name, url, sha256 })),
      })),
    };
    const { crossOriginIsolated, results, errors } = await inFreshContext(env, (page) =>
      runSuite(page, 'int8Speed', args),
    );
    if (!crossOriginIsolated) throw new Error('The harness page is not cross-origin isolated: no threads');
    for (const { id } of comparisons) {
      const times = results[id];
      const fp32 = times.fp32;
      out[id] ??= {};
      out[id][t] = {
        peers: Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, summary(xs)])),
        speedup: Object.fromEntries(
          Object.entries(times)
            .filter(([name]) => name !== 'fp32')
            .map(([name, xs]) => [
              name,
              { ratio: summary(fp32).median / summary(xs).median, ratio95: ratioInterval(fp32, xs) },
            ]),
        ),
        relativeError: errors[id],
        raw: times,
      };
    }
  }
  return out;
}

/** PP-OCR det text masks, fp32 against each quantized variant, on canvas-rendered text. */
export async function int8Masks(env, args) {
  return inFreshContext(env, (page) => runSuite(page, 'int8Masks', args));
}

/**
 * 5b. MoveNet: the float16 source and its quantized TF.js variants in one Outpost TF.js runtime,
 * keypoints against the source's on held-out figures, then interleaved calls. Speed-up is the
 * source's median over the variant's (> 1: the variant is faster).
 */
export async function movenetSpeed(env, { variants, warmup, runs, evaluation }) {
  const args = { variants: variants.map(({ name, url }) => ({ name, url })), warmup, runs, evaluation };
  const { times, errors } = await inFreshContext(env, (page) => runSuite(page, 'movenetSpeed', args));
  const source = times[variants[0].name];
  return {
    peers: Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, summary(xs)])),
    speedup: Object.fromEntries(
      Object.entries(times)
        .slice(1)
        .map(([name, xs]) => [
          name,
          { ratio: summary(source).median / summary(xs).median, ratio95: ratioInterval(source, xs) },
        ]),
    ),
    errors,
    raw: times,
  };
}
