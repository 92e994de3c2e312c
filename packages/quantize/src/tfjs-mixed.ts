import type {
  TfjsEncoded,
  TfjsMixedReport,
  TfjsModelJson,
  TfjsQuantizeOptions,
  TfjsSource,
  TfjsWeightDtype,
} from './tfjs.js';
import { TFJS_QUANTIZE_DEFAULTS } from './tfjs.js';
import type { MeasuredWeight } from './tfjs-measure.js';
import { outputError, scoreError, TfjsEvaluator } from './tfjs-measure.js';

type Encode = (name: string, x: Float32Array, dtype: TfjsWeightDtype) => TfjsEncoded;

/**
 * Chooses uint8 or the fallback per float32 weight so the model's output error against the
 * source stays within `tolerance` on the calibration inputs, with as many bytes in uint8 as
 * the search finds:
 * 1. weights under `minElements` keep the fallback (cheap, and they weigh little);
 * 2. each other weight is measured alone in uint8 (its sensitivity);
 * 3. weights go uint8 in order of sensitivity (larger first on ties): a binary search finds the
 *    longest prefix within tolerance, then each remaining weight that alone is within
 *    tolerance is tried on top and kept if the whole stays within it.
 * Errors do not add up exactly (a keypoint can flip between heatmap cells), hence the second
 * pass; every accepted state is measured, never predicted.
 *
 * Fills `choice` (every float32 weight) and `sensitivity` (measured weights).
 */
export async function chooseMixed(
  modelJson: TfjsModelJson,
  sources: readonly TfjsSource[],
  encode: Encode,
  options: TfjsQuantizeOptions & { tolerance: number },
  choice: Map<string, TfjsWeightDtype>,
  sensitivity: Map<string, number>,
): Promise<TfjsMixedReport> {
  const { tolerance } = options;
  const metric = options.metric ?? TFJS_QUANTIZE_DEFAULTS.metric;
  const fallback = options.fallback ?? TFJS_QUANTIZE_DEFAULTS.fallback;
  const minElements = options.minElements ?? TFJS_QUANTIZE_DEFAULTS.minElements;
  const progress = options.onProgress ?? (() => {});
  const calibration = await TfjsEvaluator.create(modelJson, options.calibration ?? []);

  // Every float32 weight in three forms: as in the source, uint8, fallback (all as float32 bytes
  // with a plain manifest entry, so each trial only swaps arrays).
  const plain = (s: TfjsSource, v: Float32Array): MeasuredWeight => ({
    spec: { name: s.entry.name, shape: s.entry.shape, dtype: 'float32' },
    bytes: new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
  });
  const floats = sources.filter((s) => s.values);
  const forms = new Map<
    string,
    { source: MeasuredWeight; uint8: MeasuredWeight; fallback: MeasuredWeight; size: number }
  >();
  for (const s of floats) {
    const name = s.entry.name;
    forms.set(name, {
      source: plain(s, s.values!),
      uint8: plain(s, encode(name, s.values!, 'uint8').decoded),
      fallback: plain(s, encode(name, s.values!, fallback).decoded),
      size: s.values!.length,
    });
  }
  const weightsFor = (uint8: ReadonlySet<string>, rest: 'source' | 'fallback'): MeasuredWeight[] =>
    sources.map((s) => {
      const f = forms.get(s.entry.name);
      if (!f) return { spec: s.entry as MeasuredWeight['spec'], bytes: s.bytes };
      return uint8.has(s.entry.name) ? f.uint8 : f[rest];
    });

  let trials = 0;
  const measure = async (uint8: ReadonlySet<string>, rest: 'source' | 'fallback' = 'fallback') => {
    trials++;
    return outputError(await calibration.run(weightsFor(uint8, rest)), reference, metric);
  };
  progress({
    step: `running the source model on ${options.calibration!.length} inputs (TF.js ${calibration.backend})`,
  });
  const reference = await calibration.run(weightsFor(new Set(), 'source'));
  const all = new Set(forms.keys());
  const large = [...forms].filter(([, f]) => f.size >= minElements).map(([n]) => n);
  const allUint8Error = await measure(all);
  const smallKeptError = await measure(new Set(large));
  const floor = await measure(new Set());

  let chosen = new Set<string>();
  if (allUint8Error <= tolerance) chosen = all;
  else if (smallKeptError <= tolerance) chosen = new Set(large);
  else if (floor <= tolerance) {
    for (const [i, name] of large.entries()) {
      progress({ step: 'measuring each weight alone in uint8', done: i, total: large.length });
      sensitivity.set(name, await measure(new Set([name]), 'source'));
    }
    const order = [...large].sort(
      (a, b) => sensitivity.get(a)! - sensitivity.get(b)! || forms.get(b)!.size - forms.get(a)!.size,
    );
    // Longest prefix within tolerance (prefix 0, all fallback, is: `floor` passed).
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      progress({ step: `searching the uint8 prefix (${lo}-${hi} of ${order.length})` });
      if ((await measure(new Set(order.slice(0, mid)))) <= tolerance) lo = mid;
      else hi = mid - 1;
    }
    chosen = new Set(order.slice(0, lo));
    const rest = order.slice(lo).filter((n) => sensitivity.get(n)! <= tolerance);
    for (const [i, name] of rest.entries()) {
      progress({ step: 'trying the remaining weights one by one', done: i, total: rest.length });
      const next = new Set([...chosen, name]);
      if ((await measure(next)) <= tolerance) chosen = next;
    }
  }
  // else: even the fallback alone is off by more than the tolerance; nothing goes uint8.

  for (const name of forms.keys()) choice.set(name, chosen.has(name) ? 'uint8' : fallback);
  const finalWeights = weightsFor(chosen, 'fallback');
  const got = await calibration.run(finalWeights);
  trials++;
  const error: TfjsMixedReport['error'] = { calibration: outputError(got, reference, metric) };
  const scores: NonNullable<TfjsMixedReport['scoreError']> = { calibration: scoreError(got, reference) };
  if (options.evaluation?.length) {
    progress({ step: `checking on ${options.evaluation.length} evaluation inputs` });
    const evaluation = await TfjsEvaluator.create(modelJson, options.evaluation);
    const want = await evaluation.run(weightsFor(new Set(), 'source'));
    const have = await evaluation.run(finalWeights);
    error.evaluation = outputError(have, want, metric);
    scores.evaluation = scoreError(have, want);
  }
  return {
    tolerance,
    metric,
    fallback,
    minElements,
    backend: calibration.backend,
    trials,
    allUint8Error,
    smallKeptError,
    error,
    ...(metric === 'keypoints' ? { scoreError: scores } : {}),
    uint8: chosen.size,
    kept: forms.size - chosen.size,
  };
}
