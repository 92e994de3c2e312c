import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';

async function outpost(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (t: string) => out.push(t), err: (t: string) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('outpost publish --reference', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-ref-'));
    await writeFile(join(dir, 'm.onnx'), new Uint8Array(500).fill(7));
    await writeFile(
      join(dir, 'reference.json'),
      JSON.stringify({ tensors: { y: { edges: [0, 0.5, 1], counts: [3, 7] } } }),
    );
    await writeFile(join(dir, 'bad.json'), JSON.stringify({ tensors: { y: { edges: [0, 1], counts: [3, 7] } } }));
    for (const args of [
      ['keygen', '--out', join(dir, 'keys')],
      ['init', '--repo', join(dir, 'repo'), '--keys', join(dir, 'keys')],
    ]) {
      expect((await outpost(...args)).code).toBe(0);
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const publish = (version: string, reference: string) =>
    outpost(
      'publish',
      join(dir, 'm.onnx'),
      ...['--repo', join(dir, 'repo'), '--keys', join(dir, 'keys'), '--name', 'm', '--version', version],
      ...['--reference', reference, '--json'],
    );

  it('signs the reference as models/<name>/<version>/reference.json next to the model', async () => {
    const r = await publish('1.0.0', join(dir, 'reference.json'));
    expect(r.err).toBe('');
    const summary = JSON.parse(r.out) as { reference: { url: string; length: number } };
    expect(summary.reference.url).toMatch(/^targets\/models\/m\/1\.0\.0\/[0-9a-f]{64}\.reference\.json$/);
    expect(await readFile(join(dir, 'repo', summary.reference.url), 'utf8')).toBe(
      await readFile(join(dir, 'reference.json'), 'utf8'),
    );
    expect((await outpost('verify', '--repo', join(dir, 'repo'))).code).toBe(0);
  });

  it('refuses a reference whose bins do not line up, naming the file', async () => {
    const r = await publish('1.1.0', join(dir, 'bad.json'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('bad.json');
    expect(r.err).toContain('one longer');
  });
});
