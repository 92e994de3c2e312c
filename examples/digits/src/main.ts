import { createRuntime, type Model } from '@outpost/runtime';
import modelUrl from '../../../models/digits/digits.onnx?url';
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

async function start(): Promise<void> {
  clearPad();
  const rt = await createRuntime();
  const model = await rt.load({ name: 'digits', version: '1.0.0', url: modelUrl });
  el('backend').textContent = model.fallbackReason ? `${model.backend} (${model.fallbackReason})` : model.backend;
  el('source').textContent =
    `digits@${model.version}, from ${model.source === 'cache' ? 'IndexedDB' : 'the network'} in ${model.timings.total.toFixed(0)} ms`;
  const classify = classifier(model);

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
  document.body.dataset.ready = 'true';
}

start().catch(report);
