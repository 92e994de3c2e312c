import type { CalibrationMethod, Range } from './calibrate.js';
import { collectRanges } from './calibrate.js';
import { CalibrationDataError } from './errors.js';
import type { OutputError } from './evaluate.js';
import { accuracy, compareOutputs, relativeError } from './evaluate.js';
import type { NormalizeSummary } from './normalize.js';
import { normalizeModel } from './normalize.js';
import type { NodeProto } from './onnx.js';
import { decodeModel, encodeModel, getIntAttribute } from './onnx.js';
import { insertQdq, qdqCandidates, qdqTensors } from './qdq.js';
import type { Feeds, Outputs } from './runtime.js';
import { runAll, timeInterleaved } from './runtime.js';
import { weightSensitivity } from './sensitivity.js';
import type { QuantizedWeightInfo } from './weights.js';
import { quantizeWeights } from './weights.js';

/**
 * What to quantize.
 * - `weights`: weight-only INT8 (4x smaller, fp32 speed). Needs no calibration data; with it,
 *   weights whose int8 error is an outlier stay fp32 ({@link KeepFloatOptions}).
 * - `qdq`: static QDQ INT8 on every Conv/MatMul/Gemm (weights int8, activations uint8).
 * - `auto`: QDQ only for the op groups measured faster with small error, weight-only elsewhere.
 */
export type QuantizeMode = 'weights' | 'qdq' | 'auto';

/** A progress event for long steps. */
export interface ProgressEvent {
  /** What is running, in words. */
  step: string;
  /** Items done, when counted. */
  done?: number;
  /** Items in all, when counted. */
  total?: number;
}

/**
 * How {@link quantize} picks weights to keep in fp32. Int8 on a few weights can cost most of a
 * model's error: PP-OCRv4 det's re-parameterised 1x1 convs hold an identity branch folded into
 * the diagonal (1.2 beside 0.007 in one output channel), so a per-channel int8 scale rounds
 * the rest of that channel away. Each weight is measured alone on the calibration inputs; the
 * most harmful are kept in fp32 one by one, each only if the output error then drops, while the
 * file stays within `maxSizeRatio`.
 */
export interface KeepFloatOptions {
  /**
   * A weight is a candidate when int8 on it alone gives at least this share of the
   * all-int8 weight-only model's relative error…
   * @defaultValue 0.1
   */
  minShare?: number;
  /**
   * …and at least this many times the median weight's: where every weight costs about the same,
   * that is what int8 costs this model, and no weight is worth keeping fp32.
   * @defaultValue 4
   */
  minOverMedian?: number;
  /**
   * Largest output size, as a share of the input file, that weights kept in fp32 may bring the
   * model to.
   * @defaultValue 0.35
   */
  maxSizeRatio?: number;
  /**
   * Calibration inputs the errors are measured on (the first ones); each weight costs one
   * session and this many runs.
   * @defaultValue 4
   */
  samples?: number;
}

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /**
   * What to quantize.
   * @defaultValue `'auto'` (`'weights'` when no calibration data is given)
   */
  mode?: QuantizeMode;
  /** Calibration inputs (fp32), one feed per run. Needed for `qdq` and `auto`. */
  calibration?: readonly Feeds[];
  /**
   * How activation ranges are taken.
   * @defaultValue `{ kind: 'minmax' }`
   */
  method?: CalibrationMethod;
  /** Held-out inputs for the report, with one label per row of `labelOutput` if known. */
  evaluation?: { feeds: readonly Feeds[]; labels?: readonly number[] };
  /**
   * The output whose argmax is compared with the labels.
   * @defaultValue the model's first output
   */
  labelOutput?: string;
  /**
   * Timed runs per measurement (25th percentile of CPU time, after 3 warm-up runs). 0 skips timing (and makes
   * `auto` behave like `weights`).
   * @defaultValue 20
   */
  timingRuns?: number;
  /**
   * How much relative error (mean |int8 - fp32| / mean |fp32|, worst output, first 8
   * calibration inputs) `auto`'s QDQ groups may add, in all, on top of the weight-only model's.
   * Measured on top of weight-only because that is the floor every output has: PP-OCR det's
   * weight-only error alone is 0.057.
   * @defaultValue 0.05
   */
  maxRelativeError?: number;
  /**
   * Speed-up over the current choice a group needs before `auto` takes it (timing noise is a
   * few percent).
   * @defaultValue 1.05
   */
  minSpeedup?: number;
  /**
   * Which weights stay fp32 because int8 on them costs too much of the output's accuracy,
   * measured on the calibration inputs (see {@link KeepFloatOptions}); `false` makes every weight int8.
   * Without calibration inputs every weight is int8.
   * Used by `weights` and `auto`; `qdq` quantizes every weight.
   * @defaultValue `{ minShare: 0.1, minOverMedian: 4, maxSizeRatio: 0.35, samples: 4 }`
   */
  keepFloat?: KeepFloatOptions | false;
  /** Called on long steps. */
  onProgress?: (event: ProgressEvent) => void;
}

/** Defaults of {@link QuantizeOptions}. */
export const QUANTIZE_DEFAULTS = {
  mode: 'auto',
  method: { kind: 'minmax' },
  timingRuns: 20,
  maxRelativeError: 0.05,
  minSpeedup: 1.05,
  keepFloat: { minShare: 0.1, minOverMedian: 4, maxSizeRatio: 0.35, samples: 4 },
} as const satisfies QuantizeOptions;

/** One weight measured for {@link KeepFloatOptions}, and what was chosen for it. */
export interface WeightChoice {
  /** The weight initializer's name. */
  name: string;
  /** The op types using it. */
  ops: string[];
  /** Number of values. */
  elements: number;
  /** Relative error with only this weight int8. */
  relativeError: number;
  /** Relative error of the weight-only model with this weight and those kept before it fp32, when tried. */
  keptRelativeError?: number;
  /** Whether the weight stays fp32. */
  float: boolean;
  /** Why. */
  reason: string;
}

/** One op group `auto` measured, and what it chose. */
export interface GroupChoice {
  /** Group name: `Conv`, `Conv 1x1`, `Conv depthwise`, `MatMul`, `Gemm`. */
  group: string;
  /** Nodes in the group. */
  nodes: number;
  /** CPU ms per run with the choices so far (this group weight-only), timed interleaved with `int8Ms`. */
  baselineMs: number;
  /** CPU ms per run with this group QDQ as well. */
  int8Ms: number;
  /** Relative error with this group QDQ added (see {@link QuantizeOptions.maxRelativeError}). */
  relativeError: number;
  /** Whether the group is QDQ in the output. */
  qdq: boolean;
  /**
   * Nodes of the group left out of this trial: the group as a whole was faster but over the
   * error budget, and QDQ on each of these alone broke it.
   */
  leftOut?: string[];
  /** Why. */
  reason: string;
}

/** What a run did and measured. */
export interface QuantizeReport {
  mode: QuantizeMode;
  /** File sizes in bytes (input as given, output as written). */
  size: { input: number; output: number; ratio: number };
  normalize: NormalizeSummary;
  /** Weights stored as int8, and their element count. */
  weights: { tensors: number; elements: number };
  /** Nodes quantized with QDQ. */
  qdqNodes: string[];
  /**
   * The weights measured for keeping in fp32: the relative error of the weight-only model with
   * every weight int8 and with the chosen ones fp32, and each weight that was a candidate or
   * among the ten most harmful, most harmful first.
   */
  keepFloat?: {
    samples: number;
    allInt8RelativeError: number;
    relativeError: number;
    weights: WeightChoice[];
  };
  calibration?: { method: CalibrationMethod; samples: number };
  /** `auto`'s measurements, in the order tried. */
  groups: GroupChoice[];
  /** `auto`: the weight-only model's relative error, the floor its error budget adds to. */
  weightOnlyRelativeError?: number;
  /** CPU time per run (25th percentile, runs interleaved, 1 thread) on the first calibration or evaluation feed. */
  timing?: { fp32Ms: number; int8Ms: number; speedup: number; runs: number };
  /** Per-output error against the fp32 model. */
  errors: { calibration?: OutputError[]; evaluation?: OutputError[] };
  /** Top-1 accuracy on the evaluation set, when labels are given. */
  accuracy?: { output: string; samples: number; fp32: number; int8: number };
}

/** The quantized model and its report. */
export interface QuantizeResult {
  model: Uint8Array;
  report: QuantizeReport;
}

/** The group `auto` measures a node in: depthwise and pointwise convs behave differently in int8. */
export function opGroup(node: NodeProto, weightDims: readonly number[]): string {
  if (node.opType !== 'Conv') return node.opType;
  if (getIntAttribute(node, 'group', 1) > 1) return 'Conv depthwise';
  return weightDims.length > 2 && weightDims.slice(2).every((d) => d === 1) ? 'Conv 1x1' : 'Conv';
}

/** Builds the int8 model: weight-only everywhere but `keepFloat`, QDQ on `qdqNodes`. */
function build(
  fp32: Uint8Array,
  qdqNodes: ReadonlySet<string>,
  ranges: ReadonlyMap<string, Range>,
  keepFloat: ReadonlySet<string>,
): Uint8Array {
  const model = decodeModel(fp32);
  const qdqWeights = new Set(model.graph!.node.filter((n) => qdqNodes.has(n.name)).map((n) => n.input[1] ?? ''));
  const weights = quantizeWeights(model, qdqWeights, keepFloat);
  if (qdqNodes.size > 0) insertQdq(model, { nodes: qdqNodes, ranges, weights });
  return encodeModel(model);
}

/**
 * Picks the weights to keep fp32 (see {@link KeepFloatOptions}): measures each weight alone,
 * then, most harmful first, keeps each candidate whose fp32 form lowers the weight-only model's
 * error while the file stays within the size budget.
 */
async function chooseFloatWeights(
  fp32: Uint8Array,
  inputBytes: number,
  feeds: readonly Feeds[],
  o: Required<KeepFloatOptions>,
  progress: (e: ProgressEvent) => void,
): Promise<{ keep: Set<string>; report: NonNullable<QuantizeReport['keepFloat']> }> {
  const none = new Map<string, Range>();
  const ref = await runAll(fp32, feeds);
  const errorOf = async (bytes: Uint8Array) => relativeError(compareOutputs(ref, await runAll(bytes, feeds)));
  const keep = new Set<string>();
  const allInt8 = await errorOf(build(fp32, new Set(), none, keep));
  const measured = await weightSensitivity(fp32, feeds, ref, (done, total) =>
    progress({ step: 'measuring each weight in int8', done, total }),
  );
  const median = measured[Math.floor(measured.length / 2)]?.relativeError ?? 0;
  let current = allInt8;
  const weights: WeightChoice[] = [];
  for (const [i, w] of measured.entries()) {
    const reason =
      w.relativeError < o.minShare * allInt8
        ? `below ${o.minShare} of the all-int8 error`
        : w.relativeError < o.minOverMedian * median
          ? `below ${o.minOverMedian} x the median weight's error (${median.toPrecision(3)})`
          : '';
    if (reason && i >= 10) continue;
    const choice: WeightChoice = { ...w, float: false, reason };
    weights.push(choice);
    if (reason) continue;
    progress({ step: `trying ${w.name} in fp32` });
    const trial = new Set([...keep, w.name]);
    const bytes = build(fp32, new Set(), none, trial);
    if (bytes.length > o.maxSizeRatio * inputBytes) {
      choice.reason = `over the size budget (${(bytes.length / inputBytes).toFixed(3)}x > ${o.maxSizeRatio}x)`;
      continue;
    }
    const err = await errorOf(bytes);
    choice.keptRelativeError = err;
    if (err < current) {
      choice.float = true;
      choice.reason = `fp32: error ${current.toFixed(4)} -> ${err.toFixed(4)}`;
      keep.add(w.name);
      current = err;
    } else {
      choice.reason = `fp32 did not lower the error (${err.toFixed(4)} >= ${current.toFixed(4)})`;
    }
  }
  return { keep, report: { samples: feeds.length, allInt8RelativeError: allInt8, relativeError: current, weights } };
}

/**
 * Quantizes an ONNX model to INT8. The model is first normalised (Constant nodes to
 * initializers, opset ≥ 13); see {@link QuantizeMode} for what each mode produces.
 */
export async function quantize(input: Uint8Array, options: QuantizeOptions = {}): Promise<QuantizeResult> {
  const calibration = options.calibration ?? [];
  const mode = options.mode ?? (calibration.length ? QUANTIZE_DEFAULTS.mode : 'weights');
  const method = options.method ?? QUANTIZE_DEFAULTS.method;
  const runs = options.timingRuns ?? QUANTIZE_DEFAULTS.timingRuns;
  const maxError = options.maxRelativeError ?? QUANTIZE_DEFAULTS.maxRelativeError;
  const minSpeedup = options.minSpeedup ?? QUANTIZE_DEFAULTS.minSpeedup;
  const progress = options.onProgress ?? (() => undefined);
  if (mode !== 'weights' && calibration.length === 0) {
    throw new CalibrationDataError(`mode ${mode} needs calibration inputs`);
  }

  progress({ step: 'normalising' });
  const model = decodeModel(input);
  const normalize = normalizeModel(model);
  const fp32 = encodeModel(model);

  let keep = new Set<string>();
  let keepReport: QuantizeReport['keepFloat'];
  if (mode !== 'qdq' && options.keepFloat !== false && calibration.length) {
    const o = { ...QUANTIZE_DEFAULTS.keepFloat, ...options.keepFloat };
    ({ keep, report: keepReport } = await chooseFloatWeights(
      fp32,
      input.length,
      calibration.slice(0, o.samples),
      o,
      progress,
    ));
  }

  const probe = decodeModel(fp32);
  const weights: Map<string, QuantizedWeightInfo> = quantizeWeights(probe, new Set(), keep);
  const candidates = mode === 'weights' ? [] : qdqCandidates(probe, weights);
  let ranges = new Map<string, Range>();
  if (candidates.length > 0) {
    ranges = await collectRanges(decodeModel(fp32), qdqTensors(candidates), calibration, method, (done, total) =>
      progress({ step: 'calibrating', done, total }),
    );
  }

  const timingFeed = calibration[0] ?? options.evaluation?.feeds[0];
  const groups: GroupChoice[] = [];
  let chosen = new Set<string>(mode === 'qdq' ? candidates.map((n) => n.name) : []);
  let autoBaseline: number | undefined;
  if (mode === 'auto' && candidates.length > 0 && runs > 0 && timingFeed) {
    const errorFeeds = calibration.slice(0, 8);
    const ref = await runAll(fp32, errorFeeds);
    const byGroup = new Map<string, string[]>();
    for (const n of candidates) {
      const g = opGroup(n, weights.get(n.input[1] ?? '')?.dims ?? []);
      byGroup.set(g, [...(byGroup.get(g) ?? []), n.name]);
    }
    let current = build(fp32, chosen, ranges, keep);
    const errorOf = async (bytes: Uint8Array) => relativeError(compareOutputs(ref, await runAll(bytes, errorFeeds)));
    const floor = await errorOf(current);
    autoBaseline = floor;
    /** QDQ on `names` on top of the current choice: timed against it (a win twice) and its error. */
    const measure = async (group: string, names: readonly string[], leftOut?: string[]) => {
      const trial = new Set([...chosen, ...names]);
      const bytes = build(fp32, trial, ranges, keep);
      // Each comparison is timed interleaved against the current choice, and a win is timed
      // again: on a shared machine one measurement can be off by 2x either way.
      let [currentMs, int8Ms] = await timeInterleaved(current, bytes, timingFeed, runs);
      const err = await errorOf(bytes);
      if (currentMs / int8Ms >= minSpeedup) {
        const [again, againInt8] = await timeInterleaved(current, bytes, timingFeed, runs);
        if (again / againInt8 < currentMs / int8Ms) [currentMs, int8Ms] = [again, againInt8];
      }
      const faster = currentMs / int8Ms >= minSpeedup;
      const accurate = err <= floor + maxError;
      const qdq = faster && accurate;
      const choice: GroupChoice = {
        group,
        nodes: names.length,
        baselineMs: currentMs,
        int8Ms,
        relativeError: err,
        qdq,
        reason: qdq
          ? `${(currentMs / int8Ms).toFixed(2)}x faster, error ${err.toFixed(4)}`
          : !faster
            ? `not faster (${(currentMs / int8Ms).toFixed(2)}x < ${minSpeedup}x)`
            : `error ${err.toFixed(4)} > weight-only ${floor.toFixed(4)} + ${maxError}`,
        ...(leftOut ? { leftOut } : {}),
      };
      groups.push(choice);
      if (qdq) {
        chosen = trial;
        current = bytes;
      }
      return { faster, accurate };
    };
    let i = 0;
    for (const [group, names] of byGroup) {
      progress({ step: `measuring QDQ ${group}`, done: i++, total: byGroup.size });
      const { faster, accurate } = await measure(group, names);
      if (!faster || accurate || names.length < 2) continue;
      // Faster but too far off: one node can carry the error (PP-OCR det's first conv, whose
      // output channels differ in range by 10^4 before its batch norm, so a per-tensor uint8
      // range loses most of them). Leave out the nodes that break the budget alone, try the rest.
      progress({ step: `measuring QDQ ${group} node by node` });
      const leftOut: string[] = [];
      for (const name of names) {
        if ((await errorOf(build(fp32, new Set([...chosen, name]), ranges, keep))) > floor + maxError)
          leftOut.push(name);
      }
      const rest = names.filter((n) => !leftOut.includes(n));
      if (leftOut.length && rest.length) await measure(`${group} (${rest.length} of ${names.length})`, rest, leftOut);
    }
  }

  progress({ step: 'writing the int8 model' });
  let output = build(fp32, chosen, ranges, keep);
  if (mode === 'auto' && chosen.size > 0 && timingFeed) {
    // The groups were each measured against the previous choice; check the sum against fp32
    // too, twice, and fall back to weight-only (= fp32 speed) if it loses both times.
    progress({ step: 'checking the choice against fp32' });
    const slower = async () => {
      const [a, b] = await timeInterleaved(fp32, output, timingFeed, runs);
      return a / b < 1;
    };
    if ((await slower()) && (await slower())) {
      groups.forEach((g) => {
        if (g.qdq) {
          g.qdq = false;
          g.reason += '; dropped: the combined model was slower than fp32';
        }
      });
      chosen = new Set();
      output = build(fp32, chosen, ranges, keep);
    }
  }

  const report: QuantizeReport = {
    mode,
    size: { input: input.length, output: output.length, ratio: output.length / input.length },
    normalize,
    weights: { tensors: weights.size, elements: [...weights.values()].reduce((a, w) => a + w.q.length, 0) },
    qdqNodes: [...chosen],
    ...(keepReport ? { keepFloat: keepReport } : {}),
    ...(calibration.length ? { calibration: { method, samples: calibration.length } } : {}),
    groups,
    ...(autoBaseline !== undefined ? { weightOnlyRelativeError: autoBaseline } : {}),
    errors: {},
  };

  progress({ step: 'evaluating' });
  const compare = async (feeds: readonly Feeds[]): Promise<[Outputs[], Outputs[]]> => [
    await runAll(fp32, feeds),
    await runAll(output, feeds),
  ];
  if (calibration.length) {
    const [a, b] = await compare(calibration);
    report.errors.calibration = compareOutputs(a, b);
  }
  const evaluation = options.evaluation;
  if (evaluation?.feeds.length) {
    const [a, b] = await compare(evaluation.feeds);
    report.errors.evaluation = compareOutputs(a, b);
    if (evaluation.labels) {
      const name = options.labelOutput ?? Object.keys(a[0] ?? {})[0] ?? '';
      report.accuracy = {
        output: name,
        samples: evaluation.labels.length,
        fp32: accuracy(a, name, evaluation.labels),
        int8: accuracy(b, name, evaluation.labels),
      };
    }
  }
  if (runs > 0 && timingFeed) {
    progress({ step: 'timing fp32 against int8' });
    const [fp32Ms, int8Ms] = await timeInterleaved(fp32, output, timingFeed, runs);
    report.timing = { fp32Ms, int8Ms, speedup: fp32Ms / int8Ms, runs };
  }
  return { model: output, report };
}
