import type { TensorMap } from '@outpost/core';
import { METRIC } from '@outpost/protocol';
import { describe, expect, it } from 'vitest';
import { ShadowStats } from '../telemetry/shadow.js';
import { SHADOW_OVERLAP_SHARE, ShadowServer, ShadowTap } from './shadow.js';

const KEY = { model: 'digits', version: '1.1.0', liveVersion: '1.0.0' };
const SPEC = { metric: 'top1' as const, output: 'logits' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Until `tap`'s shadow has answered (however long a loaded machine takes). */
const answered = async (tap: ShadowTap) => {
  while (!tap.idle) await sleep(1);
};
const feeds = (): TensorMap => ({ x: { type: 'float32', data: Float32Array.from([1, 2, 3]), dims: [1, 3] } });
const logits = (...v: number[]): TensorMap => ({
  logits: { type: 'float32', data: Float32Array.from(v), dims: [1, v.length] },
});

/** A tap and a server joined by a real MessageChannel; the shadow "model" answers what `answer` says, after `runMs`. */
function pair(
  answer: (f: TensorMap) => TensorMap,
  runMs: number,
  sampleBp = 10000,
  random = Math.random,
  clock = () => performance.now(),
) {
  const { port1, port2 } = new MessageChannel();
  const stats = new ShadowStats();
  const ran: TensorMap[] = [];
  const tap = new ShadowTap(port1 as unknown as MessagePort, sampleBp, KEY, stats, random, clock);
  const server = new ShadowServer(
    port2 as unknown as MessagePort,
    SPEC,
    async (f) => {
      ran.push(f);
      await sleep(runMs);
      return answer(f);
    },
    () => ({ variant: 'fp32', backend: 'wasm' }),
  );
  return { tap, server, stats, ran, close: () => (tap.close(), server.close()) };
}

function figures(stats: ShadowStats) {
  const metrics = stats.collect();
  const hist = (name: string) => metrics.find((m) => m.name === name)?.histogram?.dataPoints[0];
  const sum = (name: string) => Number(metrics.find((m) => m.name === name)?.sum?.dataPoints[0]?.asInt ?? 0);
  const a = hist(METRIC.shadowAgreement);
  return {
    compared: Number(a?.count ?? 0),
    agreement: a ? a.sum / Number(a.count) : null,
    ratio: hist(METRIC.shadowLatencyRatio),
    skipped: sum(METRIC.shadowSkipped),
    attrs: Object.fromEntries((a?.attributes ?? []).map((kv) => [kv.key, Object.values(kv.value)[0]])),
  };
}

describe('shadow runs, worker side', () => {
  it('drops samples while the shadow is busy: never a queue; an answer frees it for the next', async () => {
    const s = pair(() => logits(0, 1, 0), 30);
    try {
      // Ten live runs back to back while one shadow run takes 30 ms: one goes, nine are skipped.
      for (let i = 0; i < 10; i++) s.tap.offer(feeds(), logits(0, 1, 0), 1);
      await sleep(10);
      await answered(s.tap);
      expect(s.ran).toHaveLength(1);
      const f = figures(s.stats);
      expect(f).toMatchObject({ compared: 1, agreement: 1, skipped: 9 });
      expect(f.attrs).toMatchObject({
        'outpost.model.version': '1.1.0',
        'outpost.shadow.live_version': '1.0.0',
        'outpost.backend': 'wasm',
      });
    } finally {
      s.close();
    }
    // Live runs apart from the shadow's: each sample goes once the previous answer came.
    const t = pair(() => logits(0, 1, 0), 5);
    try {
      for (let i = 0; i < 3; i++) {
        t.tap.offer(feeds(), logits(0, 1, 0), 1);
        await sleep(10);
        await answered(t.tap);
      }
      expect(t.ran).toHaveLength(3);
      expect(figures(t.stats)).toMatchObject({ compared: 3, skipped: 0 });
    } finally {
      t.close();
    }
  });

  it(`lets a shadow overlap at most ${SHADOW_OVERLAP_SHARE * 100}% of live runs: back to back, samples wait for credit`, async () => {
    // A clock the test moves: each live run takes 1 ms; `gap` ms pass between runs.
    let now = 0;
    let sampled = true;
    const s = pair(
      () => logits(0, 1),
      200,
      1000,
      () => (sampled ? 0 : 0.5),
      () => now,
    );
    const live = async (gap: number) => {
      now += gap;
      s.tap.offer(feeds(), logits(0, 1), 1);
      await sleep(0);
    };
    try {
      // Back to back: the first sample goes; the four runs during its 200 ms overlap it.
      await live(2);
      sampled = false;
      for (let i = 0; i < 4; i++) await live(1);
      await answered(s.tap); // at the clock's now
      sampled = true;
      // Credit 1 + 5 × 0.01 − 4 < 0: sampled runs are skipped until about 300 runs earn it back.
      now += 10;
      await live(1);
      expect(s.ran).toHaveLength(1);
      sampled = false;
      for (let i = 0; i < 290; i++) await live(1);
      sampled = true;
      await live(1);
      expect(s.ran).toHaveLength(1);
      sampled = false;
      for (let i = 0; i < 10; i++) await live(1);
      sampled = true;
      await live(1);
      await sleep(10);
      await answered(s.tap);
      expect(s.ran).toHaveLength(2);
      expect(figures(s.stats)).toMatchObject({ compared: 2, skipped: 2 });
    } finally {
      s.close();
    }
  });

  it('leaves the live outputs and inputs as they were (the shadow gets copies) and scores disagreement', async () => {
    const s = pair(() => logits(1, 0, 0), 1);
    try {
      const live = logits(0, 1, 0);
      const input = feeds();
      s.tap.offer(input, live, 2);
      await sleep(10);
      await answered(s.tap);
      expect([...(live.logits!.data as Float32Array)]).toEqual([0, 1, 0]);
      expect((live.logits!.data as Float32Array).buffer.byteLength).toBe(12);
      expect([...(input.x!.data as Float32Array)]).toEqual([1, 2, 3]);
      expect(s.ran[0]!.x!.data).not.toBe(input.x!.data);
      expect(figures(s.stats)).toMatchObject({ compared: 1, agreement: 0 });
    } finally {
      s.close();
    }
  });

  it('samples the share of runs it is given when live runs leave the shadow room', async () => {
    let i = 0;
    let now = 0;
    // A deterministic "random": 0, 0.1, …, 0.9 → 10% sampled at 1000 bp; 10 ms between 1 ms runs.
    const s = pair(
      () => logits(0, 1),
      0,
      1000,
      () => (i++ % 10) / 10,
      () => now,
    );
    try {
      for (let k = 0; k < 100; k++) {
        now += 10;
        s.tap.offer(feeds(), logits(0, 1), 1);
        await sleep(1);
        await answered(s.tap);
      }
      expect(s.ran).toHaveLength(10);
      expect(figures(s.stats)).toMatchObject({ compared: 10, skipped: 0 });
    } finally {
      s.close();
    }
  });
});
