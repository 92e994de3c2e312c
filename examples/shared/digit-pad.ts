import type { Model } from '@outpost/runtime';
import { toModelInput } from './preprocess.js';

/**
 * The digit pad of the web app and the PWA: a canvas the user draws on, classified by the
 * digits model while they draw. The page has `#prediction`, `#bars` (one bar per digit),
 * `#latency` and a `#clear` button; shared/digit-pad.css styles them.
 */
export class DigitPad {
  private readonly ctx: CanvasRenderingContext2D;
  /** Bumped on every clear, so a run that was in flight then does not show its stale answer. */
  private drawingId = 0;

  constructor(
    private readonly pad: HTMLCanvasElement,
    /** Where a failed run is shown. */
    private readonly report: (err: unknown) => void,
  ) {
    this.ctx = pad.getContext('2d', { willReadFrequently: true })!;
  }

  clear(): void {
    this.drawingId++;
    this.ctx.fillStyle = '#000';
    this.ctx.fillRect(0, 0, this.pad.width, this.pad.height);
    el('prediction').textContent = '?';
    el('bars').replaceChildren();
  }

  /**
   * Classifies the pad with `model`. A run takes well under a frame, but the drawing never waits
   * for it: when a run is in flight the newest drawing is classified next and intermediate ones
   * are skipped. Returns the function to call when the drawing changed.
   */
  classifier(model: Model): () => void {
    let busy = false;
    let dirty = false;
    const run = async (): Promise<void> => {
      const x = toModelInput(this.pad);
      if (!x) return;
      busy = true;
      const id = this.drawingId;
      const t0 = performance.now();
      try {
        const out = await model.run({ x: { type: 'float32', data: x, dims: [1, 1, 28, 28] } }, { transfer: true });
        if (id === this.drawingId) show(softmax(out.logits!.data as Float32Array), performance.now() - t0);
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
      else run().catch(this.report);
    };
  }

  /** Draws with the pointer (white strokes on black, as MNIST's digits), calling `classify` as it goes. */
  attach(classify: () => void): void {
    const { pad, ctx } = this;
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
    el('clear').addEventListener('click', () => this.clear());
  }
}

const el = (id: string) => document.getElementById(id)!;

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
