import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';

async function outpost(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (t) => out.push(t), err: (t) => err.push(t), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('outpost promote with an experiment running on the channel', () => {
  let dir: string;
  let repo: string;
  let keys: string;
  const repoArgs = () => ['--repo', repo, '--keys', keys, '--name', 'digits'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-cli-channel-'));
    repo = join(dir, 'repo');
    keys = join(dir, 'keys');
    expect((await outpost('keygen', '--out', keys)).code).toBe(0);
    expect((await outpost('init', '--repo', repo, '--keys', keys)).code).toBe(0);
    for (const [i, v] of ['1.0.0', '1.1.0', '1.2.0'].entries()) {
      const file = join(dir, `${v}.onnx`);
      await writeFile(
        file,
        Uint8Array.from({ length: 300 }, (_, k) => (k * (i + 3)) & 255),
      );
      const extra = v === '1.0.0' ? ['--channel', 'stable'] : v === '1.2.0' ? ['--compare', 'top1:logits'] : [];
      const r = await outpost('publish', file, ...repoArgs(), '--version', v, ...extra);
      expect(r.code, r.err).toBe(0);
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps a shadow of another version, and drops it when its own version is promoted', async () => {
    let r = await outpost(
      'shadow',
      'start',
      ...repoArgs(),
      '--channel',
      'stable',
      '--version',
      '1.2.0',
      '--sample-bp',
      '1000',
    );
    expect(r.code, r.err).toBe(0);
    r = await outpost('promote', ...repoArgs(), '--channel', 'stable', '--version', '1.1.0', '--json');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({
      version: '1.1.0',
      previous: '1.0.0',
      shadow: { version: '1.2.0', sampleBp: 1000 },
    });
    r = await outpost('promote', ...repoArgs(), '--channel', 'stable', '--version', '1.2.0', '--json');
    expect(r.code, r.err).toBe(0);
    const pointer = JSON.parse(r.out) as Record<string, unknown>;
    expect(pointer).toMatchObject({ version: '1.2.0', previous: '1.1.0' });
    expect(pointer.shadow).toBeUndefined();
  });
});
