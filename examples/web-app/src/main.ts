import { createRuntime, type Model, type Runtime } from '@outpost/runtime';
// The repository's trusted root (`outpost init` wrote it as metadata/1.root.json). A real app
// ships this file in its bundle (`import trustedRoot from './1.root.json'`) and never fetches it
// from the repository it guards. The demo makes its repository, and so this root, on its first
// start (see ../../shared/demo-repo.ts), so its Vite plugin provides the file under this name at build time.
import trustedRoot from 'virtual:outpost-demo/trusted-root';
import { ocrInput, samplePicture, textBoxes } from './ocr.js';
import { DigitPad } from '../../shared/digit-pad.js';

const el = (id: string) => document.getElementById(id)!;
const pad = new DigitPad(document.querySelector<HTMLCanvasElement>('#pad')!, report);

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
  pad.clear();
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
  const classify = pad.classifier(model);
  // A new version takes over between two runs; the drawing on the pad is classified again by it.
  watchUpdates(rt, model, classify);

  pad.attach(classify);

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
