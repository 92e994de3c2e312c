// Telemetry cost per `run` (issue 5: <= 10 µs): the worker's recording path, measured in Node
// on the built @outpost/runtime (dist/telemetry), with the peer (the same loop without
// telemetry) in the same run. Warm-up, then repeated rounds; medians.
import { pathToFileURL } from 'node:url';
import { median } from './stats.mjs';

const { Recorder } = await import(new URL('../../packages/runtime/dist/telemetry/index.js', import.meta.url).href);

/** Per-run µs of: the bare loop, + recording (sample, clock, histogram, counters), + drift of a 10-value output. */
export async function telemetryCost({ runs = 200_000, rounds = 7 } = {}) {
  const drift = { threshold: 0.2, windowRuns: 1000, inputs: false };
  const rec = new Recorder({ sampleRate: 1, drift });
  rec.setReference('m', '1', {
    tensors: { logits: { edges: Array.from({ length: 11 }, (_, i) => i / 10), counts: Array(10).fill(10) } },
  });
  const s = rec.seriesOf({ model: 'm', version: '1', variant: '', backend: 'wasm' });
  const plain = rec.seriesOf({ model: 'n', version: '1', variant: '', backend: 'wasm' });
  const outputs = { logits: { data: new Float32Array([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95]) } };
  let sink = 0;
  const loops = {
    bare: () => {
      for (let i = 0; i < runs; i++) sink += i % 97;
    },
    record: () => {
      for (let i = 0; i < runs; i++) {
        if (rec.sampled()) {
          const t0 = performance.now();
          rec.run(plain, performance.now() - t0 + (i % 97));
        }
      }
    },
    recordDrift: () => {
      for (let i = 0; i < runs; i++) {
        if (rec.sampled()) {
          const t0 = performance.now();
          rec.run(s, performance.now() - t0 + (i % 97));
          rec.tensors(s, outputs);
        }
      }
    },
  };
  const times = { bare: [], record: [], recordDrift: [] };
  for (let r = 0; r < rounds + 1; r++) {
    for (const [name, fn] of Object.entries(loops)) {
      const t0 = performance.now();
      fn();
      const us = ((performance.now() - t0) * 1000) / runs;
      if (r > 0) times[name].push(us); // round 0 is the warm-up
    }
    rec.collect();
  }
  if (sink === -1) console.log(sink);
  const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
  return {
    runs,
    rounds,
    bareUs: m.bare,
    recordUs: m.record - m.bare,
    recordDriftUs: m.recordDrift - m.bare,
  };
}

export function telemetryLine(r) {
  return (
    `Telemetry per run (Node, built recorder; median of ${r.rounds} rounds of ${r.runs} runs, bare loop subtracted): ` +
    `${r.recordUs.toFixed(3)} µs recording, ${r.recordDriftUs.toFixed(3)} µs with drift binning of a 10-value output`
  );
}

/** The target row (the shape report.mjs's targetTable prints). */
export function telemetryTargets(r) {
  return [
    {
      name: 'telemetry cost per run (drift on)',
      value: `${r.recordDriftUs.toFixed(2)} µs`,
      limit: '<= 10 µs',
      pass: r.recordDriftUs <= 10,
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await telemetryCost();
  console.log(telemetryLine(r));
  for (const t of telemetryTargets(r)) console.log(`${t.name}: ${t.value} (${t.limit}) ${t.pass ? 'PASS' : 'MISS'}`);
}
