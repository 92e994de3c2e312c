import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CircuitBreaker, Stall } from './supervisor.js';

describe('CircuitBreaker', () => {
  it('allows maxRestarts restarts in the window, then opens until the oldest leaves it', () => {
    const b = new CircuitBreaker(3, 60_000);
    expect(b.crashed(0)).toBe(true);
    expect(b.crashed(10_000)).toBe(true);
    expect(b.open(10_000)).toBe(false);
    expect(b.crashed(20_000)).toBe(true);
    expect(b.open(20_000)).toBe(true);
    // A fourth crash within the window: no restart.
    expect(b.crashed(30_000)).toBe(false);
    expect(b.count(30_000)).toBe(3);
    // The first restart left the window at 60 s: one more is allowed.
    expect(b.open(60_000)).toBe(false);
    expect(b.crashed(60_000)).toBe(true);
    expect(b.open(60_001)).toBe(true);
  });

  it('with maxRestarts 0 never restarts', () => {
    const b = new CircuitBreaker(0, 60_000);
    expect(b.crashed(0)).toBe(false);
    expect(b.open(0)).toBe(true);
  });
});

describe('Stall', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('fires once after ms without progress; each reset gives the full time again; stop ends it for good', () => {
    let fired = 0;
    const s = new Stall(1000, () => fired++);
    vi.advanceTimersByTime(900);
    s.reset();
    vi.advanceTimersByTime(900);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(100);
    expect(fired).toBe(1);
    vi.advanceTimersByTime(5000);
    expect(fired).toBe(1);

    const t = new Stall(1000, () => fired++);
    t.stop();
    t.reset(); // late progress after the end does not arm it again
    vi.advanceTimersByTime(5000);
    expect(fired).toBe(1);
  });

  it('with 0 ms never fires', () => {
    let fired = 0;
    const s = new Stall(0, () => fired++);
    s.reset();
    vi.advanceTimersByTime(1e9);
    expect(fired).toBe(0);
  });
});

describe('Stall.watch', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('hands the work its progress callback and stops watching once the work settles', async () => {
    let fired = 0;
    let done!: (v: string) => void;
    let progress!: () => void;
    const watched = Stall.watch(
      1000,
      () => fired++,
      (p) => {
        progress = p;
        return new Promise<string>((r) => (done = r));
      },
    );
    vi.advanceTimersByTime(900);
    progress();
    vi.advanceTimersByTime(900);
    expect(fired).toBe(0);
    done('ok');
    await expect(watched).resolves.toBe('ok');
    vi.advanceTimersByTime(5000);
    expect(fired).toBe(0);
  });
});
