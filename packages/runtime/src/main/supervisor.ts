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
