import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from './supervisor.js';

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
