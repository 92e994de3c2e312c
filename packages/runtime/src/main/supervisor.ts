/**
 * The circuit breaker of worker supervision: counts restarts in a sliding window and says
 * whether one more is allowed. Pure (the clock is passed in), so its rules are unit-tested.
 */
export class CircuitBreaker {
  private restarts: number[] = [];

  constructor(
    private readonly maxRestarts: number,
    private readonly windowMs: number,
  ) {}

  /** Records a crash at `now`; true when the worker may be restarted, false when the breaker is open. */
  crashed(now: number): boolean {
    this.restarts = this.restarts.filter((t) => now - t < this.windowMs);
    if (this.restarts.length >= this.maxRestarts) return false;
    this.restarts.push(now);
    return true;
  }

  /** Whether the breaker is open at `now`: `maxRestarts` restarts within the window. */
  open(now: number): boolean {
    return this.restarts.filter((t) => now - t < this.windowMs).length >= this.maxRestarts;
  }

  /** Restarts within the window at `now`. */
  count(now: number): number {
    return this.restarts.filter((t) => now - t < this.windowMs).length;
  }
}

/**
 * A watchdog for work that reports progress: `onStall` runs once when `ms` pass without a
 * {@link reset}; `ms` of 0 or less: never. The timer is the page's, so it fires whatever the
 * watched worker does (a hung worker cannot stop it).
 */
export class Stall {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(
    private readonly ms: number,
    private readonly onStall: () => void,
  ) {
    this.reset();
  }

  /** Progress: the full time again from now. */
  reset(): void {
    if (!(this.ms > 0) || this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onStall();
    }, this.ms);
  }

  /** The work is over, one way or another. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Runs `work` under a watchdog: `work` is handed the progress callback, and the watchdog stops
   * when it settles. `onStall` is to stop the worker, which fails the work.
   */
  static async watch<T>(ms: number, onStall: () => void, work: (progress: () => void) => Promise<T>): Promise<T> {
    const stall = new Stall(ms, onStall);
    try {
      return await work(() => stall.reset());
    } finally {
      stall.stop();
    }
  }
}
