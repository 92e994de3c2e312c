/** Why the watchdog restarts the pipeline. */
export type Trouble =
  | { kind: 'stopped'; message: string }
  | { kind: 'errors'; message: string; count: number }
  | { kind: 'silent'; forMs: number };

/** Defaults of {@link Watchdog}. */
export const WATCHDOG_DEFAULTS = {
  /** No result for this long, with frames coming, means the worker hangs or is gone. */
  silentMs: 4000,
  /** This many failed frames in a row mean the session is broken (a lost GPU device). */
  errorsInARow: 3,
};

/**
 * Decides when the camera pipeline (runtime, model, stream) must be rebuilt: the stream
 * stopped on a fatal error (the worker crashed), frames keep failing, or results stopped coming
 * without any error (a worker that hangs or vanished). Pure: it is fed times and events.
 */
export class Watchdog {
  private lastResult: number;
  private inARow = 0;
  private trouble: Trouble | undefined;

  constructor(
    now: number,
    private readonly options = WATCHDOG_DEFAULTS,
  ) {
    this.lastResult = now;
  }

  /** A frame's result arrived. */
  result(now: number): void {
    this.lastResult = now;
    this.inARow = 0;
  }

  /** A frame failed; `stopped`: the stream stopped because of it. */
  error(message: string, stopped: boolean): void {
    this.inARow++;
    if (stopped) this.trouble ??= { kind: 'stopped', message };
    else if (this.inARow >= this.options.errorsInARow) this.trouble ??= { kind: 'errors', message, count: this.inARow };
  }

  /** What is wrong at `now`, if anything. */
  check(now: number): Trouble | undefined {
    if (this.trouble) return this.trouble;
    const forMs = now - this.lastResult;
    return forMs > this.options.silentMs ? { kind: 'silent', forMs } : undefined;
  }

  /** The pipeline was rebuilt: start watching afresh from `now`. */
  reset(now: number): void {
    this.lastResult = now;
    this.inARow = 0;
    this.trouble = undefined;
  }
}

/** The trouble in words, for the screen. */
export function describe(t: Trouble): string {
  switch (t.kind) {
    case 'stopped':
      return `the stream stopped: ${t.message}`;
    case 'errors':
      return `${t.count} frames in a row failed: ${t.message}`;
    case 'silent':
      return `no result for ${(t.forMs / 1000).toFixed(1)} s (worker hung or gone)`;
  }
}
