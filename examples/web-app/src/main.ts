import { createRuntime, type Model, type Runtime } from '@outpost/runtime';
// The repository's trusted root (`outpost init` wrote it as metadata/1.root.json). A real app
// ships this file in its bundle (`import trustedRoot from './1.root.json'`) and never fetches it
// from the repository it guards. The demo makes its repository, and so this root, on its first
// start (see ../../shared/demo-repo.ts), so its Vite plugin provides the file under this name at build time.
import trustedRoot from 'virtual:outpost-demo/trusted-root';
import { ocrInput, samplePicture, textBoxes } from './ocr.js';
import { toModelInput } from './preprocess.js';

const pad = document.querySelector<HTMLCanvasElement>('#pad')!;
const ctx = pad.getContext('2d', { willReadFrequently: true })!;
const el = (id: string) => document.getElementById(id)!;

/** Bumped on every clear, so a run that was in flight then does not show its stale answer. */
let drawingId = 0;

function clearPad(): void {
  drawingId++;
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, pad.width, pad.height);
  el('prediction').textContent = '?';
  el('bars').replaceChildren();
}

function softmax(logits: Float32Array): number[] {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function show(probs: number[], ms: number): void {
  const best = probs.indexOf(Math.max(...probs));
  el('prediction').textContent = String(best);
  el('latency').textContent = `${ms.toFixed(2)} ms`;
  el('bars').replaceChildren(
    ...probs.map((p, digit) => {
      const li = document.createElement('li');
      const bar = document.createElement('span');
      bar.style.width = `${Math.round(p * 100)}%`;
      li.append(`${digit}`, bar, `${(p * 100).toFixed(1)}%`);
      return li;
    }),
  );
}

/**
 * Classifies the pad while the user draws. A run takes well under a frame, but the drawing
 * never waits for it: when a run is in flight the newest drawing is classified next and
 * intermediate ones are skipped.
 */
function classifier(model: Model) {
  let busy = false;
  let dirty = false;
  const run = async (): Promise<void> => {
    const x = toModelInput(pad);
    if (!x) return;
    busy = true;
    const id = drawingId;
    const t0 = performance.now();
    try {
      const out = await model.run({ x: { type: 'float32', data: x, dims: [1, 1, 28, 28] } }, { transfer: true });
      if (id === drawingId) show(softmax(out.logits!.data as Float32Array), performance.now() - t0);
    } finally {
      busy = false;
    }
    if (dirty) {
      dirty = false;
      await run();
    }
  };
  return () => {
    if (busy) dirty = true;
    else run().catch(report);
  };
}

function report(err: unknown): void {
  el('backend').textContent = `error: ${err instanceof Error ? err.message : String(err)}`;
}

const backendOf = (model: Model) =>
  `${model.backend}${model.variant ? `, variant ${model.variant}` : ''}` +
  (model.fallbackReason ? ` (${model.fallbackReason})` : '');

function showModel(model: Model): void {
  el('backend').textContent = backendOf(model);
  el('version').textContent = model.version;
}

/** The store's contents: every model version this browser keeps, and the bytes used. */
async function showCache(rt: Runtime): Promise<void> {
  const [list, usage] = await Promise.all([rt.cache.list(), rt.cache.usage()]);
  el('cache').replaceChildren(
    ...list.map((m) => {
      const li = document.createElement('li');
      li.textContent = `${m.name} ${m.version}: ${(m.bytes / 1024).toFixed(0)} KiB`;
      return li;
    }),
  );
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  el('cache-usage').textContent = `${mib(usage.bytes)} MiB used of ${usage.quota ? mib(usage.quota) : '?'} MiB allowed`;
}

/**
 * Text detection: PP-OCR det is loaded by name on first use (a few MB, then from IndexedDB),
 * and a picture's boxes are drawn over it.
 */
function textFinder(rt: Runtime) {
  let model: Promise<Model> | undefined;
  const view = el('ocr-view') as HTMLCanvasElement;
  const g = view.getContext('2d')!;
  return async (picture: CanvasImageSource & { width: number; height: number }) => {
    el('ocr-boxes').textContent = 'loading the model…';
    model ??= rt.load('ocr-det');
    const m = await model;
    el('ocr-version').textContent = m.version;
    el('ocr-backend').textContent = backendOf(m);
    const x = ocrInput(picture);
    const t0 = performance.now();
    const out = await m.run({ x: { type: 'float32', data: x.data, dims: x.dims } }, { transfer: true });
    const ms = performance.now() - t0;
    const map = Object.values(out)[0]!;
    const [, , h, w] = x.dims;
    const boxes = textBoxes(map.data as Float32Array, w, h);
    view.width = picture.width;
    view.height = picture.height;
    g.drawImage(picture, 0, 0);
    g.strokeStyle = '#e4572e';
    g.lineWidth = 2;
    for (const b of boxes) g.strokeRect(b.x * x.scaleX, b.y * x.scaleY, b.width * x.scaleX, b.height * x.scaleY);
    el('ocr-boxes').textContent = String(boxes.length);
    el('ocr-latency').textContent = `${ms.toFixed(1)} ms (${w}×${h})`;
    await showCache(rt);
  };
}

/** How often the demo asks its repository for a new version (an app would check far less often). */
const CHECK_EVERY = '5s';

const time = () => new Date().toLocaleTimeString();

/** Shows what the updater is doing: each event replaces the status line. */
function watchUpdates(rt: Runtime, model: Model, onSwitch: () => void): void {
  const status = (text: string) => (el('update-status').textContent = text);
  status(`following channel stable, checking every ${CHECK_EVERY}`);
  rt.updates.on('available', (p) => status(`${p.name} ${p.to} available, downloading…`));
  rt.updates.on('downloaded', (d) => status(`${d.name} ${d.version} downloaded, verified and checked; switching…`));
  rt.updates.on('activated', (a) => {
    showModel(model);
    el('source').textContent = 'installed over the air';
    status(
      `${a.rollback ? 'rolled back' : 'updated'} to ${a.version}${a.previous ? ` from ${a.previous}` : ''} at ${time()}, no reload`,
    );
    onSwitch();
  });
  rt.updates.on('rolled-back', (r) =>
    status(`${r.name} ${r.version} failed its health check (${r.reason}); kept ${model.version}`),
  );
  rt.updates.on('stale-metadata', (m) => status(`repository metadata refused (${m.code}): ${m.message}`));
  rt.updates.on('error', (e) => status(`update failed${e.version ? ` (${e.version})` : ''}: ${e.error.message}`));
}

async function start(): Promise<void> {
  clearPad();
  const rt = await createRuntime({
    repository: { url: '/repo', trustedRoot },
    channel: 'stable',
    updates: { checkEvery: CHECK_EVERY, activate: 'now' },
    // The demo's own server takes the telemetry too: this device shows up on the dashboard at
    // /repo/ (admin token `demo-admin`) within seconds.
    telemetry: { endpoint: '/repo', token: 'demo-device-token', flushEvery: '5s' },
  });
  // By name: the version the channel names, verified from the trusted root, then kept in IndexedDB.
  const model = await rt.load('digits');
  showModel(model);
  el('source').textContent =
    `from ${model.source === 'cache' ? 'IndexedDB' : 'the repository'} in ${model.timings.total.toFixed(0)} ms`;
  const classify = classifier(model);
  // A new version takes over between two runs; the drawing on the pad is classified again by it.
  watchUpdates(rt, model, classify);

  let drawing = false;
  let last: { x: number; y: number } | null = null;
  const at = (e: PointerEvent) => {
    const r = pad.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * pad.width) / r.width, y: ((e.clientY - r.top) * pad.height) / r.height };
  };
  pad.addEventListener('pointerdown', (e) => {
    drawing = true;
    last = at(e);
    pad.setPointerCapture(e.pointerId);
  });
  pad.addEventListener('pointermove', (e) => {
    if (!drawing || !last) return;
    const p = at(e);
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 18;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
    classify();
  });
  const stop = () => {
    drawing = false;
    last = null;
    classify();
  };
  pad.addEventListener('pointerup', stop);
  pad.addEventListener('pointercancel', stop);
  el('clear').addEventListener('click', clearPad);

  const findText = textFinder(rt);
  const ocrFailed = (err: unknown) =>
    (el('ocr-boxes').textContent = `error: ${err instanceof Error ? err.message : String(err)}`);
  el('sample').addEventListener('click', () => void findText(samplePicture()).catch(ocrFailed));
  (el('image') as HTMLInputElement).addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void createImageBitmap(file).then(findText).catch(ocrFailed);
  });
  rt.updates.on('activated', () => void showCache(rt).catch(report));
  await showCache(rt);
  document.body.dataset.ready = 'true';
}

start().catch(report);
