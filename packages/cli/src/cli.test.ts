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

  it('--method entropy calibrates by KL divergence and says so in the report', async () => {
    const { io, out } = capture();
    const args = ['quantize', MODEL, '--out', join(dir, 'e.onnx'), '--calibration', join(dir, 'calib')];
    const code = await run([...args, '--mode', 'qdq', '--method', 'entropy', '--runs', '0'], io);
    expect(code).toBe(0);
    expect(out.join('\n')).toContain('calibration: 10 inputs, entropy (KL)');
    const bad = capture();
    expect(await run([...args, '--method', 'kl'], bad.io)).toBe(2);
    expect(bad.err.join('\n')).toContain('--method must be minmax, entropy or percentile');
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

  it('quantizes a TF.js model.json and its shards to uint8 or float16 (format from the .json)', async () => {
    const src = join(dir, 'tfjs');
    mkdirSync(src);
    const kernel = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i) * 0.5);
    const ids = Int32Array.of(7, -3);
    const bin = new Uint8Array(kernel.byteLength + ids.byteLength);
    bin.set(new Uint8Array(kernel.buffer));
    bin.set(new Uint8Array(ids.buffer), kernel.byteLength);
    writeFileSync(join(src, 'w.bin'), bin);
    const manifest = [
      {
        paths: ['w.bin'],
        weights: [
          { name: 'k', shape: [8, 8], dtype: 'float32' },
          { name: 'ids', shape: [2], dtype: 'int32' },
        ],
      },
    ];
    writeFileSync(join(src, 'model.json'), JSON.stringify({ format: 'graph-model', weightsManifest: manifest }));

    const a = capture();
    const out8 = join(dir, 'tfjs-u8');
    expect(await run(['quantize', join(src, 'model.json'), '--out', out8, '--json'], a.io)).toBe(0);
    const report = JSON.parse(a.out.join('\n'));
    expect(report).toMatchObject({ format: 'tfjs', dtype: 'uint8', quantized: 1, untouched: 1 });
    expect(report.size).toMatchObject({ input: 264, output: 64 + 8 });
    const model = JSON.parse(readFileSync(join(out8, 'model.json'), 'utf8'));
    expect(model.format).toBe('graph-model');
    expect(model.weightsManifest[0].paths).toEqual(['group1-shard1of1.bin']);
    expect(model.weightsManifest[0].weights[0].quantization).toMatchObject({ dtype: 'uint8' });
    expect(model.weightsManifest[0].weights[1]).toEqual(manifest[0]!.weights[1]);
    const shard = readFileSync(join(out8, 'group1-shard1of1.bin'));
    expect(shard.length).toBe(72);
    expect([...new Int32Array(shard.buffer.slice(shard.byteOffset + 64, shard.byteOffset + 72))]).toEqual([7, -3]);

    const b = capture();
    const out16 = join(dir, 'tfjs-f16');
    const args = ['quantize', join(src, 'model.json'), '--out', out16, '--dtype', 'float16'];
    expect(await run(args, b.io)).toBe(0);
    expect(b.out.join('\n')).toMatch(/^tfjs float16: weights 0\.3 KiB -> 0\.1 KiB \(0\.515x; 0\.515x of float32\)/);

    const u16 = capture();
    const outU16 = join(dir, 'tfjs-u16');
    expect(
      await run(['quantize', join(src, 'model.json'), '--out', outU16, '--dtype', 'uint16', '--json'], u16.io),
    ).toBe(0);
    expect(JSON.parse(u16.out.join('\n')).size).toMatchObject({ input: 264, output: 128 + 8, float32: 264 });
    const m16 = JSON.parse(readFileSync(join(outU16, 'model.json'), 'utf8'));
    expect(m16.weightsManifest[0].weights[0].quantization).toMatchObject({ dtype: 'uint16' });
    for (const [extra, message] of [
      [['--tolerance', '0.01'], '--tolerance applies to --dtype uint8'],
      [['--dtype', 'uint8', '--tolerance', '0.01'], '--tolerance needs --calibration'],
      [['--dtype', 'uint8', '--calibration', dir], '--calibration need --tolerance'],
      [['--dtype', 'uint8', '--tolerance', 'x', '--calibration', dir], '--tolerance must be a number'],
    ] as const) {
      const f = capture();
      const base = extra[0] === '--tolerance' ? args : args.slice(0, 4);
      expect(await run([...base, ...extra], f.io)).toBe(2);
      expect(f.err.join('\n')).toContain(message);
    }
    expect(readFileSync(join(out16, 'group1-shard1of1.bin')).length).toBe(128 + 8);

    const c = capture();
    expect(await run(['quantize', join(src, 'model.json'), '--out', src], c.io)).toBe(2);
    expect(c.err.join('\n')).toContain('must not be the input model');
    const d = capture();
    expect(await run([...args.slice(0, 4), '--dtype', 'int4'], d.io)).toBe(2);
    const e = capture();
    expect(await run(['quantize', MODEL, '--out', join(dir, 'z.onnx'), '--dtype', 'float16'], e.io)).toBe(2);
    expect(e.err.join('\n')).toContain('--dtype only applies to TF.js');
  });
});
