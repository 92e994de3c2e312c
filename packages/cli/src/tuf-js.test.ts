import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '@outpost/server';
import type { FastifyInstance } from 'fastify';
import { Updater } from 'tuf-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';

async function outpost(...args: string[]): Promise<string> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  expect(err.join('\n')).toBe('');
  expect(code).toBe(0);
  return out.join('\n');
}

/**
 * The format test the OTA issue asks for: tuf-js (the TUF client npm and sigstore use, on Node's
 * own crypto) refreshes a repository that `outpost publish` wrote, served by `outpost serve`'s
 * server, walks the delegation to the channels role, and downloads and verifies an ONNX variant,
 * every file of a TF.js variant, the golden file and the channel pointer.
 */
describe.each(['ecdsa', 'ed25519'])('tuf-js reads a repository outpost publish wrote (%s keys)', (algorithm) => {
  let dir: string;
  let app: FastifyInstance;
  let base: string;
  const onnx = Uint8Array.from({ length: 1_500_000 }, (_, i) => (i * 7) & 255); // two chunks
  const shards = [Uint8Array.from({ length: 4096 }, (_, i) => i & 255), Uint8Array.from({ length: 77 }, () => 9)];
  const modelJson = JSON.stringify({
    format: 'graph-model',
    modelTopology: {},
    weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: [] }],
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-tufjs-cli-'));
    await mkdir(join(dir, 'tfjs'));
    await writeFile(join(dir, 'digits.onnx'), onnx);
    await writeFile(join(dir, 'tfjs/model.json'), modelJson);
    await writeFile(join(dir, 'tfjs/group1-shard1of2.bin'), shards[0]!);
    await writeFile(join(dir, 'tfjs/group1-shard2of2.bin'), shards[1]!);
    await writeFile(join(dir, 'golden.json'), '{"inputs":{},"outputs":{},"tolerance":0.001}');
    const repo = join(dir, 'repo');
    const keys = join(dir, 'keys');
    await outpost('keygen', '--out', keys, '--algorithm', algorithm);
    await outpost('init', '--repo', repo, '--keys', keys);
    const common = ['--repo', repo, '--keys', keys, '--name', 'digits'];
    await outpost('publish', join(dir, 'digits.onnx'), ...common, '--version', '1.0.0', '--channel', 'stable');
    await outpost(
      'publish',
      ...['--variant', `fp32=${join(dir, 'digits.onnx')}`, '--variant', `tfjs=${join(dir, 'tfjs/model.json')}`],
      ...['--golden', join(dir, 'golden.json'), ...common, '--version', '1.1.0', '--channel', 'stable'],
      ...['--rollout-bp', '500'],
    );
    await mkdir(join(dir, 'client/meta'), { recursive: true });
    await mkdir(join(dir, 'client/targets'), { recursive: true });
    await writeFile(join(dir, 'client/meta/root.json'), await readFile(join(repo, 'metadata/1.root.json')));
    app = createServer({ repo });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refreshes, follows the channels delegation and verifies every downloaded file', async () => {
    const updater = new Updater({
      metadataBaseUrl: `${base}/metadata`,
      targetBaseUrl: `${base}/targets`,
      metadataDir: join(dir, 'client/meta'),
      targetDir: join(dir, 'client/targets'),
    });
    await updater.refresh();
    const fetchTarget = async (path: string) => {
      const info = await updater.getTargetInfo(path);
      expect(info, path).toBeDefined();
      const local = await updater.downloadTarget(info!, join(dir, 'client/targets', path.replaceAll('/', '_')));
      return readFile(local);
    };
    // Buffer.compare, not toEqual: a deep equal over 1.5 MB takes seconds.
    const same = (a: Uint8Array, b: Uint8Array) => expect(Buffer.compare(a, b)).toBe(0);
    same(await fetchTarget('models/digits/1.1.0/fp32/digits.onnx'), onnx);
    expect(String(await fetchTarget('models/digits/1.1.0/tfjs/model.json'))).toBe(modelJson);
    same(await fetchTarget('models/digits/1.1.0/tfjs/group1-shard1of2.bin'), shards[0]!);
    same(await fetchTarget('models/digits/1.1.0/tfjs/group1-shard2of2.bin'), shards[1]!);
    expect(JSON.parse(String(await fetchTarget('models/digits/1.1.0/golden.json')))).toEqual({
      inputs: {},
      outputs: {},
      tolerance: 0.001,
    });
    // The pointer lives in the delegated channels role; tuf-js finds it by walking the delegation.
    const pointer = JSON.parse(String(await fetchTarget('channels/stable/digits.json')));
    expect(pointer).toEqual({
      kind: 'channel',
      channel: 'stable',
      model: 'digits',
      version: '1.1.0',
      rolloutBp: 500,
      previous: '1.0.0',
    });
    expect(await updater.getTargetInfo('models/digits/9.9.9/fp32/digits.onnx')).toBeUndefined();
  });
});
