import type { ModelProto } from './onnx.js';
import { cloneModel, encodeModel, floatValueInfo } from './onnx.js';
import type { Feeds } from './runtime.js';
import { Session } from './runtime.js';

/** How activation ranges are taken from the calibration runs. */
export type CalibrationMethod =
  /** The smallest and largest value seen. */
  | { kind: 'minmax' }
  /**
   * The `percentile`-th and (100 - `percentile`)-th percentiles of each run's values, averaged
   * over runs: ignores rare outliers that would waste the uint8 range.
   */
  | { kind: 'percentile'; percentile: number };

/** An activation's calibrated range. */
export interface Range {
  min: number;
  max: number;
}

/** Values sorted for a percentile: at most this many (a strided sample of larger tensors). */
const PERCENTILE_SAMPLE = 1 << 20;

function percentiles(data: Float32Array, p: number): Range {
  const stride = Math.max(1, Math.ceil(data.length / PERCENTILE_SAMPLE));
  const sample =
    stride === 1
      ? data.slice()
      : Float32Array.from({ length: Math.floor(data.length / stride) }, (_, i) => data[i * stride]!);
  sample.sort();
  const at = (q: number) => sample[Math.min(sample.length - 1, Math.max(0, Math.round(q * (sample.length - 1))))]!;
  return { min: at(1 - p / 100), max: at(p / 100) };
}

function minMax(data: Float32Array): Range {
  let min = Infinity;
  let max = -Infinity;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/**
 * Runs the fp32 model over the calibration feeds with `tensors` added as graph outputs and
 * returns each tensor's range.
 */
export async function collectRanges(
  model: ModelProto,
  tensors: readonly string[],
  feeds: readonly Feeds[],
  method: CalibrationMethod,
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, Range>> {
  const probe = cloneModel(model);
  const graph = probe.graph!;
  const inputs = new Set(graph.input.map((i) => i.name));
  const outputs = new Set(graph.output.map((o) => o.name));
  const fetched = tensors.filter((t) => !inputs.has(t));
  graph.output = [...graph.output, ...fetched.filter((t) => !outputs.has(t)).map(floatValueInfo)];
  const session = await Session.open(encodeModel(probe));
  const perRun = new Map<string, Range[]>(tensors.map((t) => [t, []]));
  try {
    for (const [i, feed] of feeds.entries()) {
      const out = await session.run(feed, fetched);
      for (const t of tensors) {
        const data = out[t]?.data ?? feed[t]?.data;
        if (!data) throw new Error(`calibration: no float32 value for tensor ${t}`);
        perRun.get(t)!.push(method.kind === 'minmax' ? minMax(data) : percentiles(data, method.percentile));
      }
      onProgress?.(i + 1, feeds.length);
    }
  } finally {
    await session.release();
  }
  const ranges = new Map<string, Range>();
  for (const [t, runs] of perRun) {
    ranges.set(
      t,
      method.kind === 'minmax'
        ? { min: Math.min(...runs.map((r) => r.min)), max: Math.max(...runs.map((r) => r.max)) }
        : {
            min: runs.reduce((a, r) => a + r.min, 0) / runs.length,
            max: runs.reduce((a, r) => a + r.max, 0) / runs.length,
          },
    );
  }
  return ranges;
}
