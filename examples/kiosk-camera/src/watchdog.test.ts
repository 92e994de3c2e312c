import { describe, expect, it } from 'vitest';
import { Watchdog, describe as say } from './watchdog.js';

describe('Watchdog: when to rebuild the camera pipeline', () => {
  const options = { silentMs: 4000, errorsInARow: 3 };

  it('quiet while results come', () => {
    const w = new Watchdog(0, options);
    for (let t = 100; t < 20_000; t += 100) {
      w.result(t);
      expect(w.check(t + 50)).toBeUndefined();
    }
  });

  it('a fatal error (the worker crashed) at once', () => {
    const w = new Watchdog(0, options);
    w.error('The Outpost worker failed', true);
    expect(w.check(1)).toEqual({ kind: 'stopped', message: 'The Outpost worker failed' });
    expect(say(w.check(1)!)).toMatch(/stream stopped/);
  });

  it('errors only when they come in a row; a result in between resets the count', () => {
    const w = new Watchdog(0, options);
    w.error('bad', false);
    w.error('bad', false);
    w.result(10);
    w.error('bad', false);
    expect(w.check(20)).toBeUndefined();
    w.error('bad', false);
    w.error('lost device', false);
    expect(w.check(30)).toMatchObject({ kind: 'errors', count: 3, message: 'lost device' });
  });

  it('silence past silentMs (a hung or vanished worker), and reset starts over', () => {
    const w = new Watchdog(0, options);
    w.result(1000);
    expect(w.check(5000)).toBeUndefined();
    expect(w.check(5001)).toEqual({ kind: 'silent', forMs: 4001 });
    w.reset(6000);
    expect(w.check(9000)).toBeUndefined();
  });
});
