import { createRuntime, type Model, type Runtime } from '@outpost/runtime';
// The repository's trusted root, as in the web app (see ../../web-app/src/main.ts): a real app
// ships its 1.root.json in the bundle; the demo's plugin provides the one it made at start.
import trustedRoot from 'virtual:outpost-demo/trusted-root';
// The web app's digit pad (drawing, MNIST-style preprocessing, classifying as the user draws).
import { DigitPad } from '../../shared/digit-pad.js';

const el = (id: string) => document.getElementById(id)!;
const pad = new DigitPad(document.querySelector<HTMLCanvasElement>('#pad')!, report);

//#region offline: network state and the service worker

function showNetwork(): void {
  const online = navigator.onLine;
  el('network').textContent = online ? 'online' : 'offline';
  el('network').className = `pill ${online ? 'online' : 'offline'}`;
  document.body.dataset.network = online ? 'online' : 'offline';
}

/**
 * Registers the service worker vite-plugin-pwa generated (`sw.js`, Workbox, scoped to the app's
 * base) and says when the app can start offline: a worker is active only once its install,
 * which precaches the whole build, has succeeded.
 */
function watchServiceWorker(): void {
  const sw = (text: string) => (el('sw').textContent = text);
  if (!('serviceWorker' in navigator)) {
    sw('no service worker here (or not a secure context): online only');
    return;
  }
  // Only the dev server has `import.meta.hot`; vite-plugin-pwa makes the worker and its
  // precache list in builds only. (Not `import.meta.env.DEV`: a build run with NODE_ENV set to
  // development, as the examples' host does from inside its dev server, has it true.)
  if (import.meta.hot) {
    sw('dev server: no service worker (offline needs a build: npm start, or vite build and preview)');
    return;
  }
  const container = navigator.serviceWorker;
  const controlled = () => {
    if (container.controller) document.body.dataset.controlled = 'true';
  };
  // A page already controlled at load was served from the precache (online or not).
  sw(container.controller ? 'started from the service worker' : 'installing the service worker…');
  controlled();
  container.addEventListener('controllerchange', controlled);
  container.register(`${import.meta.env.BASE_URL}sw.js`, { scope: import.meta.env.BASE_URL }).then(
    () =>
      container.ready.then(() => {
        sw('ready: app, worker and ONNX Runtime precached; models in IndexedDB');
        document.body.dataset.offlineReady = 'true';
      }),
    (err: unknown) => sw(`service worker failed: ${err instanceof Error ? err.message : String(err)}`),
  );
}

/**
 * Telemetry batches waiting in the runtime's IndexedDB queue (database `outpost-telemetry`,
 * store `queue`). The runtime has no API for this yet, so the demo reads the store directly,
 * read-only, and only once the runtime has made it (opening a missing database would create it).
 */
async function queuedTelemetry(): Promise<number | undefined> {
  const names = await indexedDB.databases();
  if (!names.some((d) => d.name === 'outpost-telemetry')) return undefined;
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const req = indexedDB.open('outpost-telemetry');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('cannot open outpost-telemetry'));
  });
  // Never stand in the way of the runtime upgrading its own database.
  db.onversionchange = () => db.close();
  try {
    if (!db.objectStoreNames.contains('queue')) return undefined;
    return await new Promise<number>((resolve, reject) => {
      const req = db.transaction('queue', 'readonly').objectStore('queue').count();
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('cannot count the telemetry queue'));
    });
  } finally {
    db.close();
  }
}

function watchTelemetry(): void {
  const show = () =>
    queuedTelemetry().then(
      (n) => {
        el('telemetry').textContent =
          n === undefined ? 'nothing queued yet' : n === 0 ? 'all sent' : `${n} batch${n === 1 ? '' : 'es'} queued`;
        document.body.dataset.telemetryQueued = String(n ?? 0);
      },
      (err: unknown) => (el('telemetry').textContent = `queue unreadable: ${String(err)}`),
    );
  void show();
  setInterval(() => void show(), 1000);
}

//#endregion

function report(err: unknown): void {
  el('backend').textContent = `error: ${err instanceof Error ? err.message : String(err)}`;
}

function showModel(model: Model): void {
  const threads = crossOriginIsolated ? 'cross-origin isolated' : 'not isolated: one thread';
  el('backend').textContent = `${model.backend}${model.fallbackReason ? ` (${model.fallbackReason})` : ''}, ${threads}`;
  el('version').textContent = model.version;
}

/** How often the demo asks its repository for a new version (an app would check far less often). */
const CHECK_EVERY = '5s';

const time = () => new Date().toLocaleTimeString();

/**
 * The update line, and the "new model ready" banner once a new version has taken over. Offline,
 * checks fail and the line says so; the next check after the network is back finds the update.
 */
function watchUpdates(rt: Runtime, model: Model, onSwitch: () => void): void {
  const status = (text: string) => (el('update-status').textContent = text);
  status(`following channel stable, checking every ${CHECK_EVERY}`);
  rt.updates.on('available', (p) => status(`${p.name} ${p.to} available, downloading…`));
  rt.updates.on('downloaded', (d) => status(`${d.name} ${d.version} downloaded, verified and health-checked`));
  rt.updates.on('activated', (a) => {
    showModel(model);
    el('source').textContent = 'installed over the air';
    status(`${a.rollback ? 'rolled back' : 'updated'} to ${a.version} at ${time()}, no reload`);
    // An operator's rollback (the channel names an older version) is news to the user too.
    const banner = el('new-model');
    const was = a.previous ? ` (was ${a.previous}${a.rollback ? ', rolled back by the publisher' : ''})` : '';
    banner.textContent = `New model ready: ${a.name} ${a.version}${was}, in use now.`;
    banner.hidden = false;
    onSwitch();
  });
  rt.updates.on('rolled-back', (r) =>
    status(`${r.name} ${r.version} failed its health check (${r.reason}); kept ${model.version}`),
  );
  rt.updates.on('stale-metadata', (m) => status(`repository metadata refused (${m.code}): ${m.message}`));
  rt.updates.on('error', (e) =>
    status(
      navigator.onLine
        ? `update check failed: ${e.error.message}`
        : `offline: the model in IndexedDB keeps working; checking again when back online`,
    ),
  );
}

async function start(): Promise<void> {
  showNetwork();
  addEventListener('online', showNetwork);
  addEventListener('offline', showNetwork);
  watchServiceWorker();
  pad.clear();
  const rt = await createRuntime({
    repository: { url: '/repo/', trustedRoot },
    channel: 'stable',
    updates: { checkEvery: CHECK_EVERY },
    // Runs recorded offline wait in IndexedDB and go out when the browser is back online.
    telemetry: { endpoint: '/repo/', token: 'demo-device-token', flushEvery: '5s' },
  });
  // Update and telemetry failures (all expected while offline) are shown, not logged as errors.
  rt.on('error', ({ source, error }) => {
    if (source === 'telemetry') el('telemetry').textContent = `not sent: ${error.message}`;
  });
  watchTelemetry();
  // By name: the first visit downloads the version the channel names and keeps it in
  // IndexedDB; from then on, online or not, it loads from there.
  const model = await rt.load('digits');
  showModel(model);
  el('source').textContent =
    `from ${model.source === 'cache' ? 'IndexedDB' : 'the repository'} in ${model.timings.total.toFixed(0)} ms`;
  const classify = pad.classifier(model);
  watchUpdates(rt, model, classify);
  pad.attach(classify);
  document.body.dataset.ready = 'true';
}

start().catch(report);
