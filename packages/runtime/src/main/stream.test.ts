import { describe, expect, it } from 'vitest';
import { NewestWins, StreamMeter, percentile } from './stream.js';

describe('NewestWins: frame scheduling when the model is slower than the camera', () => {
  function harness() {
    const sent: number[] = [];
    const dropped: number[] = [];
    const s = new NewestWins<number>(
      (f) => sent.push(f),
      (f) => dropped.push(f),
    );
    return { s, sent, dropped };
  }

  it('sends at once when idle, then the newest waiting frame when the run finishes', () => {
    const { s, sent, dropped } = harness();
    s.offer(1);
    expect(sent).toEqual([1]);
    for (let f = 2; f <= 6; f++) s.offer(f);
    // 2..5 each waited and were replaced by a newer one: dropped (closed), in order.
    expect(dropped).toEqual([2, 3, 4, 5]);
    expect(s.dropped).toBe(4);
    expect(s.pending).toBe(2);
    s.done();
    expect(sent).toEqual([1, 6]);
    expect(s.pending).toBe(1);
    s.done();
    expect(s.pending).toBe(0);
    s.offer(7);
    expect(sent).toEqual([1, 6, 7]);
  });

  it('never holds more than one in flight and one waiting, whatever the rates', () => {
    const { s, sent, dropped } = harness();
    let max = 0;
    let inFlight = 0;
    // 30 frames per "second" against a model finishing one run every 4 frames.
    for (let f = 1; f <= 300; f++) {
      s.offer(f);
      max = Math.max(max, s.pending);
      if (f % 4 === 0) {
        s.done();
        inFlight++;
      }
    }
    expect(max).toBe(2);
    expect(sent.length + dropped.length + (s.pending - 1)).toBe(300);
    // Every frame sent after the first was the newest one at the time of sending.
    for (let i = 1; i < sent.length; i++) expect(sent[i]! % 4).toBe(0);
    expect(inFlight).toBe(75);
  });

  it('clear closes the waiting frame without counting it as dropped', () => {
    const { s, dropped } = harness();
    s.offer(1);
    s.offer(2);
    s.clear();
    expect(dropped).toEqual([2]);
    expect(s.dropped).toBe(0);
    expect(s.pending).toBe(1);
  });
});

describe('StreamMeter and percentile', () => {
  it('nearest-rank percentiles', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([5], 0.95)).toBe(5);
    const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(v, 0.5)).toBe(50);
    expect(percentile(v, 0.95)).toBe(95);
  });

  it('fps over the last two seconds, latency over the last results', () => {
    const m = new StreamMeter(2000, 3);
    for (let i = 0; i <= 120; i++) m.frameIn((i * 1000) / 30);
    for (let i = 0; i <= 40; i++) m.result(i * 100, i);
    const { fpsIn, fpsOut } = m.rates(4000, 0);
    expect(fpsIn).toBeCloseTo(30, 0);
    expect(fpsOut).toBeCloseTo(10, 0);
    // Only the last 3 latencies are kept: 38, 39, 40.
    expect(m.latency(0.5)).toBe(39);
    expect(m.latency(0.95)).toBe(40);
  });

  it('a stream younger than the window is measured over its age', () => {
    const m = new StreamMeter(2000);
    for (let t = 0; t < 500; t += 50) m.frameIn(t);
    expect(m.rates(500, 0).fpsIn).toBeCloseTo(20, 5);
  });
});
