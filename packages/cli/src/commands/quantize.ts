import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { CalibrationMethod, ProgressEvent, QuantizeMode, TfjsModelJson } from '@outpost/quantize';
import {
  decodeModel,
  formatReport,
  formatTfjsReport,
  modelInputNames,
  quantize,
  quantizeTfjs,
  readFeedsDir,
  readLabels,
  readTfjsFeedsDir,
  tfjsInputNames,
} from '@outpost/quantize';
import type { Command, Io } from '../cli.js';
import { UsageError } from '../cli.js';

const usage = `usage: outpost quantize <in.onnx> --out <out.onnx> [options]
       outpost quantize <model.json> --out <dir> [--dtype uint8|uint16|float16]
                        [--tolerance <x> --calibration <dir> [--metric max-abs|keypoints]]

Quantizes an ONNX model to INT8, or a TF.js graph/layers model's weights to uint8, uint16 or
float16, and prints a report.

options:
  --out <file|dir>        where to write the quantized model (required); for TF.js, a folder
                          that gets model.json (same name as the input) and its shards
  --format <f>            onnx or tfjs (default: tfjs for a .json input, onnx otherwise)
  --dtype <d>             TF.js only: uint8 (affine per tensor, default), uint16 or float16
  --tolerance <x>         TF.js uint8 only: mixed precision by measurement. The model runs on
                          --calibration in Node; weights whose uint8 form moves the outputs
                          past <x> (vs the input model) stay float16, the rest become uint8
  --metric <m>            TF.js, with --tolerance: max-abs (any output value, default) or
                          keypoints ((y, x, score) triples such as MoveNet's: y and x only)
  --calibration <dir>     calibration inputs: .npy files (float32, or int32 for TF.js, one input
                          tensor each), or, for models with several inputs, one subfolder per
                          sample holding <input name>.npy; needed for --mode qdq and auto, and
                          for --tolerance
  --mode <m>              weights: int8 weights only (4x smaller, fp32 speed)
                          qdq:     static INT8 on every Conv/MatMul/Gemm
                          auto:    QDQ only where measured faster and accurate (default with
                                   --calibration; weights without)
  --method <m>            activation ranges: minmax (default), percentile, or entropy (the
                          KL-divergence threshold TensorRT uses: clips long tails)
  --percentile <p>        percentile for --method percentile (default 99.99)
  --eval <dir>            held-out inputs for the report (same layout as --calibration; for
                          TF.js with --tolerance too)
  --labels <file.npy>     one class per row of --eval, for top-1 accuracy
  --label-output <name>   the output compared with --labels (default: the first)
  --runs <n>              timed runs per measurement (default 20; 0 skips timing)
  --report <file>         also write the report as JSON
  --json                  print the report as JSON instead of tables`;

const MODES: readonly QuantizeMode[] = ['weights', 'qdq', 'auto'];

function progressPrinter(io: Io): (e: ProgressEvent) => void {
  return (e) => io.err(`  ${e.step}${e.total ? ` ${e.done ?? 0}/${e.total}` : ''}…`);
}

/** `outpost quantize`. */
export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'quantize an ONNX model to INT8 (weight-only, static QDQ, or measured auto), or TF.js weights',
  usage,
  async run(args, io) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          out: { type: 'string' },
          calibration: { type: 'string' },
          mode: { type: 'string' },
          method: { type: 'string', default: 'minmax' },
          percentile: { type: 'string', default: '99.99' },
          eval: { type: 'string' },
          labels: { type: 'string' },
          'label-output': { type: 'string' },
          runs: { type: 'string', default: '20' },
          report: { type: 'string' },
          json: { type: 'boolean', default: false },
          format: { type: 'string' },
          dtype: { type: 'string' },
          tolerance: { type: 'string' },
          metric: { type: 'string' },
        },
      });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { values: v, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError('give exactly one input model');
    if (!v.out) throw new UsageError('--out is required');
    const format = v.format ?? (positionals[0]!.toLowerCase().endsWith('.json') ? 'tfjs' : 'onnx');
    if (format !== 'onnx' && format !== 'tfjs') throw new UsageError('--format must be onnx or tfjs');
    if (format === 'tfjs') {
      const onnxOnly = ['mode', 'labels', 'label-output'] as const;
      const given = onnxOnly.filter((k) => v[k] !== undefined);
      if (given.length) throw new UsageError(`--${given.join(', --')} only apply to ONNX models`);
      return quantizeTfjsFiles(positionals[0]!, v.out, v.dtype ?? 'uint8', v, io);
    }
    for (const k of ['dtype', 'tolerance', 'metric'] as const)
      if (v[k] !== undefined) throw new UsageError(`--${k} only applies to TF.js models (ONNX is int8)`);
    const mode = v.mode as QuantizeMode | undefined;
    if (mode !== undefined && !MODES.includes(mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}`);
    if (mode && mode !== 'weights' && !v.calibration) throw new UsageError(`--mode ${mode} needs --calibration`);
    if (v.labels && !v.eval) throw new UsageError('--labels needs --eval');
    const runs = Number(v.runs);
    const percentile = Number(v.percentile);
    if (!Number.isInteger(runs) || runs < 0) throw new UsageError('--runs must be a whole number ≥ 0');
    let method: CalibrationMethod;
    if (v.method === 'minmax') method = { kind: 'minmax' };
    else if (v.method === 'entropy') method = { kind: 'entropy' };
    else if (v.method === 'percentile' && percentile > 50 && percentile <= 100)
      method = { kind: 'percentile', percentile };
    else throw new UsageError('--method must be minmax, entropy or percentile (with 50 < --percentile ≤ 100)');

    const input = new Uint8Array(await readFile(positionals[0]!));
    const inputs = modelInputNames(decodeModel(input));
    const calibration = v.calibration ? await readFeedsDir(v.calibration, inputs) : undefined;
    const evaluation = v.eval
      ? {
          feeds: await readFeedsDir(v.eval, inputs),
          ...(v.labels ? { labels: await readLabels(v.labels) } : {}),
        }
      : undefined;

    const { model, report } = await quantize(input, {
      ...(mode ? { mode } : {}),
      ...(calibration ? { calibration } : {}),
      ...(evaluation ? { evaluation } : {}),
      ...(v['label-output'] ? { labelOutput: v['label-output'] } : {}),
      method,
      timingRuns: runs,
      onProgress: progressPrinter(io),
    });
    await writeFile(v.out, model);
    const json = JSON.stringify(report, null, 2);
    if (v.report) await writeFile(v.report, json + '\n');
    io.out(v.json ? json : `${formatReport(report)}\nwrote ${v.out}`);
    return 0;
  },
};

async function quantizeTfjsFiles(
  input: string,
  out: string,
  dtype: string,
  v: {
    report?: string | undefined;
    json?: boolean | undefined;
    tolerance?: string | undefined;
    metric?: string | undefined;
    calibration?: string | undefined;
    eval?: string | undefined;
  },
  io: Io,
): Promise<number> {
  if (dtype !== 'uint8' && dtype !== 'uint16' && dtype !== 'float16')
    throw new UsageError('--dtype must be uint8, uint16 or float16');
  const tolerance = v.tolerance === undefined ? undefined : Number(v.tolerance);
  if (tolerance === undefined) {
    const given = (['calibration', 'eval', 'metric'] as const).filter((k) => v[k] !== undefined);
    if (given.length) throw new UsageError(`--${given.join(', --')} need --tolerance for TF.js models`);
  } else {
    if (!(tolerance >= 0)) throw new UsageError('--tolerance must be a number ≥ 0');
    if (dtype !== 'uint8') throw new UsageError('--tolerance applies to --dtype uint8');
    if (!v.calibration) throw new UsageError('--tolerance needs --calibration');
  }
  const metric = v.metric ?? 'max-abs';
  if (metric !== 'max-abs' && metric !== 'keypoints') throw new UsageError('--metric must be max-abs or keypoints');
  const modelJson = JSON.parse(await readFile(input, 'utf8')) as TfjsModelJson;
  const target = join(out, basename(input));
  if (resolve(target) === resolve(input)) throw new UsageError('--out must not be the input model’s own folder');
  const names = tolerance === undefined ? [] : tfjsInputNames(modelJson);
  const from = dirname(input);
  const {
    modelJson: q,
    shards,
    report,
  } = await quantizeTfjs(modelJson, async (path) => new Uint8Array(await readFile(join(from, path))), {
    dtype,
    ...(tolerance !== undefined
      ? {
          tolerance,
          metric,
          calibration: await readTfjsFeedsDir(v.calibration!, names),
          ...(v.eval ? { evaluation: await readTfjsFeedsDir(v.eval, names) } : {}),
          onProgress: progressPrinter(io),
        }
      : {}),
  });
  await mkdir(out, { recursive: true });
  for (const s of shards) await writeFile(join(out, s.path), s.data);
  await writeFile(target, JSON.stringify(q));
  const json = JSON.stringify(report, null, 2);
  if (v.report) await writeFile(v.report, json + '\n');
  io.out(v.json ? json : `${formatTfjsReport(report)}\nwrote ${target} and ${shards.length} shard(s)`);
  return 0;
}
