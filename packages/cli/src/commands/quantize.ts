import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { CalibrationMethod, ProgressEvent, QuantizeMode } from '@outpost/quantize';
import { decodeModel, formatReport, modelInputNames, quantize, readFeedsDir, readLabels } from '@outpost/quantize';
import type { Command, Io } from '../cli.js';
import { UsageError } from '../cli.js';

const usage = `usage: outpost quantize <in.onnx> --out <out.onnx> [options]

Quantizes an ONNX model to INT8 and prints a report.

options:
  --out <file>            where to write the quantized model (required)
  --calibration <dir>     calibration inputs: .npy files (float32, one input tensor each), or,
                          for models with several inputs, one subfolder per sample holding
                          <input name>.npy; needed for --mode qdq and auto
  --mode <m>              weights: int8 weights only (4x smaller, fp32 speed)
                          qdq:     static INT8 on every Conv/MatMul/Gemm
                          auto:    QDQ only where measured faster and accurate (default with
                                   --calibration; weights without)
  --method <m>            activation ranges: minmax (default) or percentile
  --percentile <p>        percentile for --method percentile (default 99.99)
  --eval <dir>            held-out inputs for the report (same layout as --calibration)
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
  summary: 'quantize an ONNX model to INT8 (weight-only, static QDQ, or measured auto)',
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
        },
      });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const { values: v, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError('give exactly one input model');
    if (!v.out) throw new UsageError('--out is required');
    const mode = v.mode as QuantizeMode | undefined;
    if (mode !== undefined && !MODES.includes(mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}`);
    if (mode && mode !== 'weights' && !v.calibration) throw new UsageError(`--mode ${mode} needs --calibration`);
    if (v.labels && !v.eval) throw new UsageError('--labels needs --eval');
    const runs = Number(v.runs);
    const percentile = Number(v.percentile);
    if (!Number.isInteger(runs) || runs < 0) throw new UsageError('--runs must be a whole number ≥ 0');
    let method: CalibrationMethod;
    if (v.method === 'minmax') method = { kind: 'minmax' };
    else if (v.method === 'percentile' && percentile > 50 && percentile <= 100)
      method = { kind: 'percentile', percentile };
    else throw new UsageError('--method must be minmax or percentile (with 50 < --percentile ≤ 100)');

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
