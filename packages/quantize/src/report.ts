import type { OutputError } from './evaluate.js';
import type { QuantizeReport } from './quantize.js';

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
const num = (n: number) => (n === 0 ? '0' : Math.abs(n) >= 0.01 ? n.toFixed(4) : n.toExponential(2));

function errorRows(set: string, errors: readonly OutputError[] | undefined): string[][] {
  return (errors ?? []).map((e) => [set, e.output, num(e.maxAbs), num(e.meanAbs), num(e.refMeanAbs)]);
}

/** The report as plain-text tables for a terminal. */
export function formatReport(r: QuantizeReport): string {
  const out: string[] = [];
  out.push(
    `mode ${r.mode}: ${kb(r.size.input)} -> ${kb(r.size.output)} (${r.size.ratio.toFixed(3)}x); ` +
      `${r.weights.tensors} weights int8 (${r.weights.elements} values), ${r.qdqNodes.length} nodes QDQ`,
  );
  const n = r.normalize;
  out.push(
    `normalised: opset ${n.opsetBefore} -> ${n.opsetAfter}, ${n.constantsToInitializers} Constant nodes to initializers` +
      (Object.keys(n.rewritten).length ? `, rewritten ${JSON.stringify(n.rewritten)}` : ''),
  );
  if (r.calibration) {
    const m = r.calibration.method;
    out.push(
      `calibration: ${r.calibration.samples} inputs, ${m.kind === 'minmax' ? 'min-max' : m.kind === 'entropy' ? 'entropy (KL)' : `percentile ${m.percentile}`}`,
    );
  }
  if (r.keepFloat) {
    const k = r.keepFloat;
    const kept = k.weights.filter((w) => w.float);
    out.push(
      '',
      `weights kept fp32: ${kept.length} (${kept.reduce((a, w) => a + w.elements, 0)} values); weight-only relative error ` +
        `${num(k.allInt8RelativeError)} with every weight int8, ${num(k.relativeError)} as chosen (first ${k.samples} calibration inputs)`,
      table(
        ['weight', 'op', 'values', 'rel. error int8 alone', 'kept fp32 (+ earlier)', 'choice', 'why'],
        k.weights.map((w) => [
          w.name,
          [...new Set(w.ops)].join(','),
          String(w.elements),
          num(w.relativeError),
          w.keptRelativeError === undefined ? '' : num(w.keptRelativeError),
          w.float ? 'fp32' : 'int8',
          w.reason,
        ]),
      ),
    );
  }
  if (r.groups.length) {
    out.push(
      '',
      `auto: weight-only relative error ${num(r.weightOnlyRelativeError ?? 0)}; a group is QDQ if faster and within that + the budget`,
      table(
        ['group', 'nodes', 'before cpu ms', 'QDQ cpu ms', 'rel. error', 'choice', 'why'],
        r.groups.map((g) => [
          g.group,
          String(g.nodes),
          g.baselineMs.toFixed(3),
          g.int8Ms.toFixed(3),
          num(g.relativeError),
          g.qdq ? 'QDQ' : 'weights',
          g.leftOut ? `${g.reason}; left out: ${g.leftOut.join(', ')}` : g.reason,
        ]),
      ),
    );
  }
  const rows = [...errorRows('calibration', r.errors.calibration), ...errorRows('evaluation', r.errors.evaluation)];
  if (rows.length) out.push('', table(['set', 'output', 'max |err|', 'mean |err|', 'mean |fp32|'], rows));
  if (r.accuracy) {
    const a = r.accuracy;
    out.push(
      '',
      `accuracy (${a.output}, ${a.samples} samples): fp32 ${(a.fp32 * 100).toFixed(2)} %, int8 ${(a.int8 * 100).toFixed(2)} %`,
    );
  }
  if (r.timing) {
    const t = r.timing;
    out.push(
      `CPU time per run (p25 of ${t.runs} interleaved, 1 thread): fp32 ${t.fp32Ms.toFixed(3)} ms, int8 ${t.int8Ms.toFixed(3)} ms (${t.speedup.toFixed(2)}x)`,
    );
  }
  return out.join('\n');
}
