import {
  DisposedError,
  ProtocolError,
  WorkerError,
  type BackendId,
  type FramePreprocess,
  type TensorMap,
} from '@outpost/core';
import type { Model } from './model.js';

/** Options of {@link Runtime.stream}. */
export interface StreamOptions {
  /** How the worker turns each frame into the model's input (see {@link FramePreprocess}). */
  preprocess: FramePreprocess;
  /** Called with each frame's outputs, on the page, in frame order. */
  onResult: (result: StreamResult) => void;
  /**
   * Called when a frame fails. `stopped` is true when the stream stopped because of it: the
   * worker died or the model was disposed, and the app should start over (a new runtime).
   * Other failures (one bad frame) leave the stream running.
   * @defaultValue failures go to `console.error`
   */
  onError?: (error: Error, stopped: boolean) => void;
  /**
   * Frames taken per second at most; the source's other frames are skipped (not counted as
   * dropped). For a camera faster than the app needs.
   * @defaultValue every frame the source presents
   */
  maxFps?: number;
}

/** One frame's outputs. */
export interface StreamResult {
  outputs: TensorMap;
  /** The model version and backend that ran this frame (an update changes them between two frames). */
  version: string;
  backend: BackendId;
  /** Frame number, counting every frame the stream took from the source. */
  frame: number;
  /** The source's size when the frame was taken (the model saw it scaled to the preprocess size). */
  width: number;
  height: number;
  /** `performance.now()` when the frame was taken. */
  takenAt: number;
  /** Taken to result on the page (ms): waiting, transfer, preprocessing, run, transfer back. */
  latencyMs: number;
  /** Of which: preprocessing in the worker, and waiting for the model then running it (ms). */
  preprocessMs: number;
  runMs: number;
}

/** Figures of a stream, from {@link Stream.stats}. */
export interface StreamStats {
  /** Frames taken from the source (after `maxFps`). */
  frames: number;
  /** Frames whose outputs reached `onResult`. */
  results: number;
  /** Frames never run because a newer one came while the model was busy. */
  dropped: number;
  /** Frames that failed. */
  errors: number;
  /** Frames taken, and results, per second over the last two seconds. */
  fpsIn: number;
  fpsOut: number;
  /** Latency percentiles over the last 100 results (ms), `null` before the first. */
  latencyP50: number | null;
  latencyP95: number | null;
  /** Frames held now: in flight to the worker plus waiting on the page (at most 2). */
  pending: number;
  /** The most frames ever held at once: the queue never grows past 2. */
  maxPending: number;
}

/** A running stream from {@link Runtime.stream}. */
export interface Stream {
  /** Figures so far. */
  stats(): StreamStats;
  /** Stops taking frames; a frame in flight is finished in the worker but not delivered. */
  stop(): void;
  /** Whether the stream stopped (by `stop()`, the runtime closing, or a fatal error). */
  readonly stopped: boolean;
}

/** What a stream reads frames from. */
export type StreamSource = HTMLVideoElement | MediaStream;

/**
 * At most one frame in flight and one waiting: when a frame comes while one is in flight, it
 * takes the waiting place, and the frame that waited there is dropped (closed). The newest
 * frame always wins and nothing queues up, however slow the model is.
 */
export class NewestWins<F> {
  private busy = false;
  private next: F | undefined;
  private hasNext = false;
  /** Frames replaced while waiting. */
  dropped = 0;

  constructor(
    private readonly send: (frame: F) => void,
    private readonly drop: (frame: F) => void,
  ) {}

  /** Frames held: the one in flight and the one waiting. */
  get pending(): number {
    return (this.busy ? 1 : 0) + (this.hasNext ? 1 : 0);
  }

  /** A new frame: sent now if nothing is in flight, else it waits in place of any older one. */
  offer(frame: F): void {
    if (!this.busy) {
      this.busy = true;
      this.send(frame);
      return;
    }
    if (this.hasNext) {
      this.dropped++;
      this.drop(this.next as F);
    }
    this.next = frame;
    this.hasNext = true;
  }

  /** The frame in flight finished: the waiting one (if any) goes next. */
  done(): void {
    if (!this.hasNext) {
      this.busy = false;
      return;
    }
    const frame = this.next as F;
    this.next = undefined;
    this.hasNext = false;
    this.send(frame);
  }

  /** Drops the waiting frame (not counted: the stream stopped); the one in flight is left to finish. */
  clear(): void {
    if (this.hasNext) this.drop(this.next as F);
    this.next = undefined;
    this.hasNext = false;
  }
}

/** Frames per second over a window, and latency percentiles over the last results. */
export class StreamMeter {
  private readonly taken: number[] = [];
  private readonly done: number[] = [];
  private readonly latencies: number[] = [];

  constructor(
    private readonly windowMs = 2000,
    private readonly keep = 100,
  ) {}

  frameIn(at: number): void {
    this.taken.push(at);
    trim(this.taken, at - this.windowMs);
  }

  result(at: number, latencyMs: number): void {
    this.done.push(at);
    trim(this.done, at - this.windowMs);
    this.latencies.push(latencyMs);
    if (this.latencies.length > this.keep) this.latencies.shift();
  }

  /** Rates over the window ending `now` (a stream younger than the window counts from its start). */
  rates(now: number, startedAt: number): { fpsIn: number; fpsOut: number } {
    const since = now - this.windowMs;
    const span = Math.min(this.windowMs, Math.max(now - startedAt, 1)) / 1000;
    const count = (ts: number[]) => ts.filter((t) => t > since && t <= now).length;
    return { fpsIn: count(this.taken) / span, fpsOut: count(this.done) / span };
  }

  /** Nearest-rank percentile `p` (0..1) of the kept latencies, or null without any. */
  latency(p: number): number | null {
    return percentile(this.latencies, p);
  }
}

/** Nearest-rank percentile `p` (0..1) of `values`, or null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
  return sorted[rank - 1]!;
}

function trim(ts: number[], before: number): void {
  let n = 0;
  while (n < ts.length && ts[n]! <= before) n++;
  if (n > 0) ts.splice(0, n);
}

/** Whether an error means the stream cannot go on: its worker or its model is gone. */
function fatal(err: Error): boolean {
  return err instanceof WorkerError || err instanceof DisposedError || err instanceof ProtocolError;
}

interface Taken {
  bitmap: ImageBitmap;
  frame: number;
  takenAt: number;
  width: number;
  height: number;
}

/** A video element playing `source`, and how to let it go. */
function videoOf(source: StreamSource): { video: HTMLVideoElement; release(): void } {
  if (!(source instanceof MediaStream)) return { video: source, release: () => undefined };
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = source;
  void video.play().catch(() => undefined);
  return {
    video,
    release() {
      video.pause();
      video.srcObject = null;
    },
  };
}

/** Without `requestVideoFrameCallback`, the source is polled this often (ms) and new frames taken. */
const POLL_MS = 1000 / 60;

/**
 * Starts a stream: every frame the source presents (up to `maxFps`) is copied into an
 * ImageBitmap (asynchronously: the page thread never reads pixels), transferred to the worker,
 * preprocessed and run there; only outputs come back. See {@link NewestWins} for what happens
 * when frames come faster than the model runs.
 * @internal
 */
export function startStream(model: Model, source: StreamSource, options: StreamOptions, onStop: () => void): Stream {
  const { preprocess, onResult } = options;
  const report = options.onError ?? ((err: Error) => console.error('Outpost stream:', err));
  const playing = videoOf(source);
  const video = playing.video;
  const meter = new StreamMeter();
  const startedAt = performance.now();
  const minGap = options.maxFps && options.maxFps > 0 ? (1000 / options.maxFps) * 0.9 : 0;
  let frames = 0;
  let results = 0;
  let errors = 0;
  let skippedWhileCopying = 0;
  let maxPending = 0;
  let copying = false;
  let lastTaken = -Infinity;
  let lastMediaTime = -1;
  let stopped = false;
  let handle: number | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;

  const fail = (err: unknown) => {
    const error = err instanceof Error ? err : new Error(String(err));
    errors++;
    // A worker that crashed under supervision is being replaced: the model comes back, and so
    // does the stream, from the next frame.
    const isFatal = fatal(error) && !model.isRecovering;
    if (isFatal) stop();
    try {
      report(error, isFatal);
    } catch (e) {
      console.error('Outpost stream: onError threw', e);
    }
  };

  const scheduler = new NewestWins<Taken>(
    (t) => {
      model
        .runFrame(t.bitmap, preprocess)
        .then(
          ({ result, version, backend }) => {
            if (stopped) return;
            const now = performance.now();
            results++;
            meter.result(now, now - t.takenAt);
            try {
              onResult({
                outputs: result.outputs,
                version,
                backend,
                frame: t.frame,
                width: t.width,
                height: t.height,
                takenAt: t.takenAt,
                latencyMs: now - t.takenAt,
                preprocessMs: result.preprocessMs,
                runMs: result.runMs,
              });
            } catch (err) {
              // The app's handler failed, not the frame: say so, and keep streaming.
              try {
                report(err instanceof Error ? err : new Error(String(err)), false);
              } catch (e) {
                console.error('Outpost stream: onError threw', e);
              }
            }
          },
          (err: unknown) => {
            if (!stopped) fail(err);
          },
        )
        .finally(() => {
          if (!stopped) scheduler.done();
        });
    },
    (t) => t.bitmap.close(),
  );

  const take = (now: number) => {
    if (stopped || now - lastTaken < minGap) return;
    if (video.readyState < 2 || video.videoWidth === 0) return;
    lastTaken = now;
    frames++;
    meter.frameIn(now);
    // One copy at a time: a frame presented while the previous is still being copied is
    // dropped here rather than piling up copies.
    if (copying) {
      skippedWhileCopying++;
      return;
    }
    copying = true;
    const frame = frames;
    const width = video.videoWidth;
    const height = video.videoHeight;
    createImageBitmap(video).then(
      (bitmap) => {
        copying = false;
        if (stopped) {
          bitmap.close();
          return;
        }
        scheduler.offer({ bitmap, frame, takenAt: now, width, height });
        maxPending = Math.max(maxPending, scheduler.pending);
      },
      (err: unknown) => {
        copying = false;
        if (!stopped) fail(err);
      },
    );
  };

  type FrameCallbackVideo = HTMLVideoElement & {
    requestVideoFrameCallback(cb: (now: number, meta: { mediaTime: number }) => void): number;
    cancelVideoFrameCallback(handle: number): void;
  };
  const rvfc = 'requestVideoFrameCallback' in video ? (video as FrameCallbackVideo) : undefined;
  if (rvfc) {
    const onFrame = (now: number) => {
      if (stopped) return;
      handle = rvfc.requestVideoFrameCallback(onFrame);
      take(now);
    };
    handle = rvfc.requestVideoFrameCallback(onFrame);
  } else {
    timer = setInterval(() => {
      // Only a new frame counts: the same picture twice is no frame.
      if (video.currentTime === lastMediaTime) return;
      lastMediaTime = video.currentTime;
      take(performance.now());
    }, POLL_MS);
  }

  function stop(): void {
    if (stopped) return;
    stopped = true;
    if (handle !== undefined) rvfc?.cancelVideoFrameCallback(handle);
    if (timer !== undefined) clearInterval(timer);
    scheduler.clear();
    playing.release();
    onStop();
  }

  return {
    stats() {
      const now = performance.now();
      return {
        frames,
        results,
        dropped: scheduler.dropped + skippedWhileCopying,
        errors,
        ...meter.rates(now, startedAt),
        latencyP50: meter.latency(0.5),
        latencyP95: meter.latency(0.95),
        pending: scheduler.pending,
        maxPending,
      };
    },
    stop,
    get stopped() {
      return stopped;
    },
  };
}
