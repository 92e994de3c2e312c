import {
  createRuntime,
  type BackendId,
  type Model,
  type Runtime,
  type Stream,
  type StreamResult,
} from '@outpost/runtime';
// The repository's trusted root (`outpost init` wrote it as metadata/1.root.json). A real kiosk
// ships this file in its bundle; the demo makes its repository on first start, so its Vite
// plugin provides the file under this name (see ../shared/demo-repo.ts).
import trustedRoot from 'virtual:outpost-demo/trusted-root';
import { inputSize, textBoxes, type TextBox } from '../../shared/text-boxes.js';
import { Watchdog, describe, type Trouble } from './watchdog.js';

/** How often the kiosk asks its repository for a new version (a real one would check far less often). */
const CHECK_EVERY = '5s';
/** PP-OCR det's input normalisation: ImageNet mean and std on 0..1 RGB. */
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];
/** Probability above which a pixel is text. */
const TEXT_THRESHOLD = 0.3;
/** `?backends=wasm` pins the backends (the e2e tests do: WebGPU in headless Chromium is a slow CPU emulation). */
const BACKENDS = new URLSearchParams(location.search).get('backends')?.split(',') as BackendId[] | undefined;

const el = (id: string) => document.getElementById(id)!;
const video = el('camera') as HTMLVideoElement;
const overlay = el('overlay') as HTMLCanvasElement;
const octx = overlay.getContext('2d')!;
const time = () => new Date().toLocaleTimeString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What happened on this kiosk, shown on screen and read by the e2e tests. */
interface Incident {
  at: string;
  what: string;
  /** From the trouble being noticed to the first result after the restart (ms). */
  recoveredInMs?: number;
  attempts: number;
}

/** The last results, for the e2e tests: when each arrived and what it found. */
interface Seen {
  frame: number;
  at: number;
  version: string;
  backend: string;
  boxes: number;
  latencyMs: number;
  runMs: number;
}

const kiosk = {
  results: [] as Seen[],
  incidents: [] as Incident[],
  updates: [] as { version: string; previous?: string; at: number }[],
  stats: () => pipeline?.stream.stats(),
};
(window as unknown as { kiosk: typeof kiosk }).kiosk = kiosk;

/** One runtime, the model loaded by name, and the stream: what the watchdog rebuilds. */
interface Pipeline {
  rt: Runtime;
  model: Model;
  stream: Stream;
}

let pipeline: Pipeline | undefined;
/** Bumped at every rebuild, so late callbacks of a discarded pipeline are ignored. */
let generation = 0;
const watchdog = new Watchdog(performance.now());
let recovering: { incident: Incident; startedAt: number } | undefined;
/** True while a rebuild is under way (the watchdog waits for it). */
let rebuilding = false;

function status(text: string): void {
  el('update-status').textContent = text;
}

function showNetwork(): void {
  el('network').textContent = navigator.onLine ? 'online' : 'offline: running on the model stored on this device';
}

function banner(text: string | null): void {
  const b = el('banner');
  b.hidden = text === null;
  b.textContent = text ?? '';
}

function showIncidents(): void {
  el('incidents').replaceChildren(
    ...kiosk.incidents.map((i) => {
      const li = document.createElement('li');
      const outcome =
        i.recoveredInMs === undefined ? 'recovering…' : `recovered in ${(i.recoveredInMs / 1000).toFixed(1)} s`;
      li.textContent = `${i.at}: ${i.what}; ${outcome}${i.attempts > 1 ? ` (${i.attempts} attempts)` : ''}`;
      return li;
    }),
  );
}

/** Draws the boxes over the video; the overlay has the video's own size and fit, so they line up. */
function draw(boxes: TextBox[], mapWidth: number, mapHeight: number): void {
  if (overlay.width !== video.videoWidth || overlay.height !== video.videoHeight) {
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
  }
  const sx = overlay.width / mapWidth;
  const sy = overlay.height / mapHeight;
  // Cleared and redrawn in one task: the screen never shows an empty overlay between two results.
  octx.clearRect(0, 0, overlay.width, overlay.height);
  octx.lineWidth = 3;
  octx.strokeStyle = '#35d07f';
  octx.fillStyle = 'rgb(53 208 127 / 18%)';
  for (const b of boxes) {
    octx.fillRect(b.x * sx, b.y * sy, b.width * sx, b.height * sy);
    octx.strokeRect(b.x * sx, b.y * sy, b.width * sx, b.height * sy);
  }
}

function onResult(gen: number, model: Model, r: StreamResult): void {
  if (gen !== generation) return;
  const map = r.outputs[model.outputs[0]!.name]!;
  const [, , h, w] = map.dims as number[];
  const boxes = textBoxes(map.data as Float32Array, w!, h!, TEXT_THRESHOLD);
  draw(boxes, w!, h!);
  const now = performance.now();
  watchdog.result(now);
  kiosk.results.push({
    frame: r.frame,
    at: now,
    version: r.version,
    backend: r.backend,
    boxes: boxes.length,
    latencyMs: r.latencyMs,
    runMs: r.runMs,
  });
  if (kiosk.results.length > 5000) kiosk.results.splice(0, 1000);
  el('boxes').textContent = String(boxes.length);
  // The version and backend of the frame on screen: an update shows here at the frame it took over.
  el('version').textContent = r.version;
  el('backend').textContent = r.backend;
  if (recovering) {
    recovering.incident.recoveredInMs = now - recovering.startedAt;
    recovering = undefined;
    banner(null);
    el('watchdog').textContent = `watching (restarted at ${time()})`;
    showIncidents();
  }
  document.body.dataset.streaming = 'true';
}

function watchUpdates(rt: Runtime, gen: number): void {
  const live =
    <T>(fn: (d: T) => void) =>
    (d: T) =>
      gen === generation && fn(d);
  status(`following channel stable, checking every ${CHECK_EVERY}`);
  rt.updates.on(
    'available',
    live((p) => status(`${p.name} ${p.to} available, downloading…`)),
  );
  rt.updates.on(
    'downloaded',
    live((d) =>
      status(`${d.name} ${d.version} verified and checked in a second worker; switching between two frames…`),
    ),
  );
  rt.updates.on(
    'activated',
    live((a) => {
      kiosk.updates.push({ version: a.version, previous: a.previous, at: performance.now() });
      status(
        `updated to ${a.version}${a.previous ? ` from ${a.previous}` : ''} at ${time()}, no reload, no blank frame`,
      );
    }),
  );
  rt.updates.on(
    'rolled-back',
    live((r) => status(`${r.name} ${r.version} failed its health check (${r.reason}); kept the running version`)),
  );
  rt.updates.on(
    'stale-metadata',
    live((m) => status(`repository metadata refused (${m.code}); kept the running version`)),
  );
  rt.on(
    'error',
    live((e) => {
      if (e.source === 'worker') {
        // The runtime's own supervision replaced a crashed (or hung) worker and is reloading
        // the model: the stream goes on by itself. Shown as an incident, timed to the next result.
        const incident: Incident = {
          at: time(),
          what: `the runtime replaced its worker: ${e.error.message}`,
          attempts: 1,
        };
        kiosk.incidents.push(incident);
        recovering ??= { incident, startedAt: performance.now() };
        showIncidents();
        // Its circuit breaker opened: the runtime gives up on the model; the watchdog rebuilds.
        if (/circuit breaker open/.test(e.error.message)) watchdog.error(e.error.message, true);
        return;
      }
      // Offline is expected on a kiosk: the check says so and nothing is wrong.
      if (navigator.onLine) status(`${e.source}: ${e.error.message}`);
    }),
  );
}

/** Starts a runtime, loads the model by name (from IndexedDB after the first time) and streams the camera into it. */
async function build(gen: number): Promise<Pipeline> {
  const rt = await createRuntime({
    repository: { url: '/repo/', trustedRoot },
    channel: 'stable',
    updates: { checkEvery: CHECK_EVERY },
    telemetry: { endpoint: '/repo/', token: 'demo-device-token' },
    ...(BACKENDS ? { backends: BACKENDS } : {}),
  });
  try {
    watchUpdates(rt, gen);
    const model = await rt.load('ocr-det');
    const size = inputSize(video.videoWidth, video.videoHeight);
    const stream = rt.stream(model, video, {
      preprocess: { input: model.inputs[0]!.name, ...size, mean: MEAN, std: STD },
      onResult: (r) => onResult(gen, model, r),
      onError: (error, stopped) => {
        if (gen === generation) watchdog.error(error.message, stopped);
      },
    });
    el('backend').textContent = model.backend;
    el('version').textContent = model.version;
    return { rt, model, stream };
  } catch (err) {
    await closeQuietly(rt);
    throw err;
  }
}

/** Closes a runtime without letting a dead worker hold the kiosk up. */
async function closeQuietly(rt: Runtime): Promise<void> {
  await Promise.race([rt.close().catch(() => undefined), sleep(3000)]);
}

/** Rebuilds the pipeline until it works, backing off between attempts; the video keeps playing. */
async function recover(trouble: Trouble): Promise<void> {
  rebuilding = true;
  const incident: Incident = { at: time(), what: describe(trouble), attempts: 0 };
  kiosk.incidents.push(incident);
  recovering = { incident, startedAt: performance.now() };
  el('watchdog').textContent = `restarting: ${incident.what}`;
  banner(`Restarting the detector: ${incident.what}`);
  showIncidents();
  const old = pipeline;
  pipeline = undefined;
  generation++;
  old?.stream.stop();
  // Not awaited: a runtime whose worker vanished takes a while to give up on it, and the new
  // one does not need the old one gone to start.
  if (old) void closeQuietly(old.rt);
  for (let wait = 1000; ; wait = Math.min(wait * 2, 30_000)) {
    incident.attempts++;
    try {
      pipeline = await build(generation);
      break;
    } catch (err) {
      el('watchdog').textContent = `restart failed (${err instanceof Error ? err.message : String(err)}); retrying`;
      await sleep(wait);
    }
  }
  watchdog.reset(performance.now());
  rebuilding = false;
  showIncidents();
}

function showStats(): void {
  const s = pipeline?.stream.stats();
  if (!s) return;
  el('fps-in').textContent = s.fpsIn.toFixed(1);
  el('fps-out').textContent = s.fpsOut.toFixed(1);
  el('p50').textContent = s.latencyP50 === null ? '–' : `${s.latencyP50.toFixed(0)} ms`;
  el('p95').textContent = s.latencyP95 === null ? '–' : `${s.latencyP95.toFixed(0)} ms`;
  el('dropped').textContent = `${s.dropped} of ${s.frames}`;
}

async function start(): Promise<void> {
  showNetwork();
  addEventListener('online', showNetwork);
  addEventListener('offline', showNetwork);
  video.srcObject = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 } },
    audio: false,
  });
  await video.play();
  if (video.videoWidth === 0) await new Promise((resolve) => video.addEventListener('resize', resolve, { once: true }));
  pipeline = await build(generation);
  watchdog.reset(performance.now());
  document.body.dataset.ready = 'true';
  setInterval(showStats, 500);
  setInterval(() => {
    if (!pipeline || rebuilding) return;
    const trouble = watchdog.check(performance.now());
    if (trouble) void recover(trouble);
  }, 250);
}

start().catch((err: unknown) => {
  banner(`Could not start: ${err instanceof Error ? err.message : String(err)}`);
  el('backend').textContent = 'not started';
});
