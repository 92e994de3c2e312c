import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy, writeNpy } from '@outpost/quantize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';

const MODEL = new URL('../../../models/digits/digits.onnx', import.meta.url).pathname;
const sample = JSON.parse(readFileSync(new URL('../../../models/digits/sample.json', import.meta.url), 'utf8')) as {
  samples: { label: number; input: number[] }[];
};

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t) }, out, err };
}

describe('outpost quantize', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-cli-'));
    // The ten sample digits: calibration as ten files, evaluation as one batch with labels.
    mkdirSync(join(dir, 'calib'));
    mkdirSync(join(dir, 'eval'));
    sample.samples.forEach((s, i) => {
      writeFileSync(join(dir, 'calib', `digit${i}.npy`), writeNpy(Float32Array.from(s.input), [1, 1, 28, 28]));
    });
    const batch = Float32Array.from(sample.samples.flatMap((s) => s.input));
    writeFileSync(join(dir, 'eval', 'batch.npy'), writeNpy(batch, [10, 1, 28, 28]));
    writeFileSync(join(dir, 'labels.npy'), writeNpy(Float32Array.from(sample.samples.map((s) => s.label)), [10]));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the model and the JSON report, prints the report as JSON with --json', async () => {
    const { io, out, err } = capture();
    const args = ['quantize', MODEL, '--out', join(dir, 'q.onnx'), '--calibration', join(dir, 'calib')];
    const more = ['--mode', 'qdq', '--eval', join(dir, 'eval'), '--labels', join(dir, 'labels.npy')];
    const code = await run([...args, ...more, '--runs', '0', '--report', join(dir, 'r.json'), '--json'], io);
    expect(err.join('\n')).toContain('calibrating 10/10');
    expect(code).toBe(0);
    const report = JSON.parse(out.join('\n'));
    expect(report).toEqual(JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8')));
    expect(report.mode).toBe('qdq');
    expect(report.size.output).toBe(readFileSync(join(dir, 'q.onnx')).length);
    expect(report.size.ratio).toBeLessThan(0.35);
    expect(report.accuracy).toMatchObject({ samples: 10, fp32: 1 });
    expect(report.accuracy.int8).toBeGreaterThanOrEqual(0.9);
    expect(report.calibration).toEqual({ method: { kind: 'minmax' }, samples: 10 });
  });

  it('defaults to weight-only without calibration data and prints tables', async () => {
    const { io, out } = capture();
    const code = await run(['quantize', MODEL, '--out', join(dir, 'w.onnx'), '--runs', '0'], io);
    expect(code).toBe(0);
    expect(out.join('\n')).toMatch(/^mode weights: 108\.8 KiB -> \d+\.\d KiB \(0\.\d+x\)/);
    expect(readFileSync(join(dir, 'w.onnx')).length).toBeLessThan(0.35 * readFileSync(MODEL).length);
  });

  it('exits 2 with the usage on a bad command line, 1 on bad data', async () => {
    const a = capture();
    expect(await run(['quantize', MODEL], a.io)).toBe(2);
    expect(a.err.join('\n')).toMatch(/--out is required[\s\S]*usage: outpost quantize/);
    const b = capture();
    expect(await run(['quantize', MODEL, '--out', join(dir, 'x.onnx'), '--mode', 'qdq'], b.io)).toBe(2);
    expect(b.err.join('\n')).toContain('--mode qdq needs --calibration');
    const c = capture();
    expect(await run(['frobnicate'], c.io)).toBe(2);
    expect(c.err.join('\n')).toMatch(/unknown command frobnicate[\s\S]*quantize/);
    const d = capture();
    writeFileSync(join(dir, 'bad.npy'), 'not numpy');
    mkdirSync(join(dir, 'bad'));
    writeFileSync(join(dir, 'bad', 'x.npy'), 'not numpy');
    const bad = ['quantize', MODEL, '--out', join(dir, 'y.onnx'), '--calibration', join(dir, 'bad')];
    expect(await run(bad, d.io)).toBe(1);
    expect(d.err.join('\n')).toContain('[CALIBRATION_DATA] not a .npy file');
  });

  it('--help lists the subcommands', async () => {
    const { io, out } = capture();
    expect(await run(['--help'], io)).toBe(0);
    expect(out.join('\n')).toMatch(/quantize\s+quantize an ONNX model/);
    expect(readNpy(writeNpy(Float32Array.of(1), [1])).dims).toEqual([1]);
  });
});
