import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres } from '../../server/src/testing/postgres-cluster.js';
import { run } from './cli.js';

function capture(extra: { signal?: AbortSignal } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (t: string) => out.push(t), err: (t: string) => err.push(t), ...extra }, out, err };
}

async function outpost(...args: string[]) {
  const c = capture();
  const code = await run(args, c.io);
  return { code, out: c.out.join('\n'), err: c.err.join('\n') };
}

async function ok(...args: string[]) {
  const r = await outpost(...args);
  expect(r.err, `outpost ${args.join(' ')}`).toBe('');
  expect(r.code).toBe(0);
  return r.out;
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

describe('outpost keygen, init, publish, promote, rollback, verify', () => {
  let dir: string;
  let keys: string;
  let repo: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-repo-'));
    keys = join(dir, 'keys');
    repo = join(dir, 'repo');
    await mkdir(join(dir, 'models/tfjs'), { recursive: true });
    await writeFile(join(dir, 'models/digits.onnx'), bytes(3000, 1));
    await writeFile(join(dir, 'models/digits.int8.onnx'), bytes(1200, 2));
    // A TF.js model whose manifest lists two shards: all three files go out as one variant.
    await writeFile(
      join(dir, 'models/tfjs/model.json'),
      JSON.stringify({
        format: 'graph-model',
        modelTopology: {},
        weightsManifest: [{ paths: ['group1-shard1of2.bin', 'group1-shard2of2.bin'], weights: [] }],
      }),
    );
    await writeFile(join(dir, 'models/tfjs/group1-shard1of2.bin'), bytes(2048, 3));
    await writeFile(join(dir, 'models/tfjs/group1-shard2of2.bin'), bytes(100, 4));
    await writeFile(
      join(dir, 'golden.json'),
      JSON.stringify({
        inputs: { x: { type: 'float32', dims: [1], base64: 'AAAAAA==' } },
        outputs: {},
        tolerance: 1e-3,
      }),
    );
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keygen writes one key pair per role, private keys 0600 and never printed; refuses to overwrite', async () => {
    const out = await ok('keygen', '--out', keys, '--json');
    expect(out).not.toMatch(/PRIVATE KEY/);
    const made = JSON.parse(out) as { keys: { role: string; keyid: string; privateKey: string; publicKey: string }[] };
    expect(made.keys.map((k) => k.role)).toEqual(['root', 'targets', 'snapshot', 'timestamp', 'channels']);
    for (const k of made.keys) {
      expect((await stat(k.privateKey)).mode & 0o777).toBe(0o600);
      expect(await readFile(k.privateKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
      const pub = JSON.parse(await readFile(k.publicKey, 'utf8'));
      expect(pub).toMatchObject({ keyid: k.keyid, keytype: 'ecdsa', scheme: 'ecdsa-sha2-nistp256' });
    }
    const before = await readFile(join(keys, 'root.key'), 'utf8');
    const again = await outpost('keygen', '--out', keys);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/root\.key exists; pass --force/);
    expect(await readFile(join(keys, 'root.key'), 'utf8')).toBe(before);
    const text = await ok('keygen', '--out', join(dir, 'other-keys'), '--algorithm', 'ed25519', '--roles', 'root:2');
    expect(text).not.toMatch(/PRIVATE KEY/);
    expect((await readdir(join(dir, 'other-keys'))).sort()).toEqual([
      'root-2.key',
      'root-2.pub.json',
      'root.key',
      'root.pub.json',
    ]);
    expect((await outpost('keygen', '--out', keys, '--roles', 'admin')).code).toBe(2);
  });

  it('init writes the trusted root and refuses a non-empty folder or too few keys', async () => {
    const out = await ok('init', '--repo', repo, '--keys', keys);
    expect(out).toContain(`trusted root: ${join(repo, 'metadata', '1.root.json')}`);
    expect((await readdir(join(repo, 'metadata'))).sort()).toEqual([
      '1.channels.json',
      '1.root.json',
      '1.snapshot.json',
      '1.targets.json',
      'timestamp.json',
    ]);
    const again = await outpost('init', '--repo', repo, '--keys', keys);
    expect(again.code).toBe(1);
    expect(again.err).toContain('is not empty');
    const two = await outpost('init', '--repo', join(dir, 'r2'), '--keys', keys, '--threshold', 'root=2');
    expect(two.err).toContain('root needs 2 key(s)');
  });

  it('publish writes every variant (ONNX, TF.js with its shards), the golden file and the channel; verify passes', async () => {
    const v1 = await ok(
      'publish',
      `fp32=${join(dir, 'models/digits.onnx')}`,
      ...['--repo', repo, '--keys', keys, '--name', 'digits', '--version', '1.0.0', '--channel', 'stable'],
    );
    expect(v1).toContain('stable: digits → 1.0.0 for every device');
    const out = await ok(
      'publish',
      ...['--variant', `fp32=${join(dir, 'models/digits.onnx')}`],
      ...['--variant', `int8=${join(dir, 'models/digits.int8.onnx')}`, '--backends', 'int8=wasm'],
      ...['--variant', `tfjs=${join(dir, 'models/tfjs')}`, '--requires', 'tfjs=shader-f16'],
      ...['--golden', join(dir, 'golden.json'), '--repo', repo, '--keys', keys, '--name', 'digits'],
      ...['--version', '1.1.0', '--channel', 'stable', '--rollout-bp', '1000', '--json'],
    );
    const r = JSON.parse(out);
    expect(r.variants.map((v: { id: string }) => v.id)).toEqual(['fp32', 'int8', 'tfjs']);
    expect(r.variants[1]).toMatchObject({ format: 'onnx', backends: ['wasm'] });
    expect(r.variants[2]).toMatchObject({ format: 'tfjs', requires: ['shader-f16'] });
    expect(r.variants[2].files.map((f: { name: string }) => f.name)).toEqual([
      'model.json',
      'group1-shard1of2.bin',
      'group1-shard2of2.bin',
    ]);
    expect(r.channel).toEqual({
      channel: 'stable',
      model: 'digits',
      version: '1.1.0',
      rolloutBp: 1000,
      previous: '1.0.0',
    });
    for (const f of r.variants.flatMap((v: { files: { url: string; length: number }[] }) => v.files)) {
      expect((await stat(join(repo, f.url))).size).toBe(f.length);
    }
    expect(await readFile(join(repo, r.golden.url), 'utf8')).toBe(await readFile(join(dir, 'golden.json'), 'utf8'));

    const verified = await ok('verify', '--repo', repo, '--json');
    expect(JSON.parse(verified)).toMatchObject({ ok: true, problems: [], targets: 8 });

    const same = await outpost(
      'publish',
      `fp32=${join(dir, 'models/digits.int8.onnx')}`,
      ...['--repo', repo, '--keys', keys, '--name', 'digits', '--version', '1.1.0'],
    );
    expect(same.code).toBe(1);
    expect(same.err).toContain('already published');
    expect((await readdir(repo)).includes('.outpost.lock')).toBe(false);
  });

  it('promote widens a rollout and rollback points back, with only the online keys', async () => {
    const online = join(dir, 'online-keys');
    await mkdir(online);
    for (const role of ['channels', 'snapshot', 'timestamp']) {
      for (const f of [`${role}.key`, `${role}.pub.json`]) await cp(join(keys, f), join(online, f));
    }
    const common = ['--repo', repo, '--keys', online, '--name', 'digits', '--channel', 'stable'];
    const wider = JSON.parse(await ok('promote', ...common, '--version', '1.1.0', '--rollout-bp', '5000', '--json'));
    expect(wider).toMatchObject({ version: '1.1.0', rolloutBp: 5000, previous: '1.0.0' });
    const back = JSON.parse(await ok('rollback', ...common, '--json'));
    expect(back).toEqual({ kind: 'channel', channel: 'stable', model: 'digits', version: '1.0.0', rolloutBp: 10000 });
    const nothing = await outpost('rollback', ...common);
    expect(nothing.code).toBe(2);
    expect(nothing.err).toContain('no version before 1.0.0');
    expect(await ok('rollback', ...common, '--to', '1.1.0')).toContain('stable: digits → 1.1.0 for every device');
    // The online keys cannot publish (targets key missing), nor point at an unsigned version.
    const publish = await outpost(
      'publish',
      join(dir, 'models/digits.onnx'),
      ...common.slice(0, 6),
      '--version',
      '2.0.0',
    );
    expect(publish.err).toContain('signing targets metadata needs 1');
    expect((await outpost('promote', ...common, '--version', '9.9.9')).err).toContain('not published');
    // Keys of another repository are not this one's.
    await ok('keygen', '--out', join(dir, 'foreign-keys'));
    const foreign = await outpost('promote', ...common, '--keys', join(dir, 'foreign-keys'), '--version', '1.0.0');
    expect(foreign.code).toBe(1);
    expect(foreign.err).toContain("1 other channels key(s) there are not this repository's");
    expect(await ok('verify', '--repo', repo)).toMatch(/is valid: .*channels v\d+; 8 target file\(s\)/);
  });

  it('verify fails, naming the file, on a tampered blob, a tampered metadata byte and a missing file', async () => {
    const target = JSON.parse(await ok('verify', '--repo', repo, '--json'));
    expect(target.ok).toBe(true);
    const { targets } = target.versions;
    const blobDir = join('targets/models/digits/1.1.0/tfjs');
    const shard = (await readdir(join(repo, blobDir))).find((n) => n.endsWith('group1-shard1of2.bin'))!;
    const cases: [string, (copy: string) => Promise<void>, RegExp][] = [
      [
        'blob byte',
        async (copy) => {
          const p = join(copy, blobDir, shard);
          const b = await readFile(p);
          b[1500]! ^= 1;
          await writeFile(p, b);
        },
        new RegExp(`${shard}: SHA-256 does not match`),
      ],
      [
        'metadata byte',
        async (copy) => {
          const p = join(copy, 'metadata', `${targets}.targets.json`);
          await writeFile(p, (await readFile(p, 'utf8')).replace('"length": 3000', '"length": 3001'));
        },
        new RegExp(`metadata/${targets}\\.targets\\.json: targets does not match its pinned hash`),
      ],
      ['missing blob', async (copy) => unlink(join(copy, blobDir, shard)), new RegExp(`${shard}: missing`)],
      [
        'missing metadata',
        async (copy) => unlink(join(copy, 'metadata', `${targets}.targets.json`)),
        new RegExp(`metadata/${targets}\\.targets\\.json is missing`),
      ],
    ];
    for (const [name, tamper, expected] of cases) {
      const copy = join(dir, `tampered-${name.replace(' ', '-')}`);
      await cp(repo, copy, { recursive: true });
      await tamper(copy);
      const r = await outpost('verify', '--repo', copy, '--root', join(repo, 'metadata/1.root.json'));
      expect([name, r.code]).toEqual([name, 1]);
      expect(r.err).toMatch(expected);
    }
  });

  it('timestamp re-signs only the timestamp; verify reports expired metadata', async () => {
    const short = join(dir, 'short');
    await cp(repo, short, { recursive: true });
    const online = join(dir, 'online-keys');
    const before = JSON.parse(await readFile(join(short, 'metadata/timestamp.json'), 'utf8')).signed.version;
    const r = JSON.parse(
      await ok('timestamp', '--repo', short, '--keys', online, '--expires', 'timestamp=1s', '--json'),
    );
    expect(r.version).toBe(before + 1);
    await new Promise((res) => setTimeout(res, 1100));
    const v = await outpost('verify', '--repo', short);
    expect(v.code).toBe(1);
    expect(v.err).toMatch(/timestamp metadata v\d+ expired at/);
    await ok('timestamp', '--repo', short, '--keys', online);
    expect((await outpost('verify', '--repo', short)).code).toBe(0);
  });

  it('serve answers until its signal stops it', async () => {
    const ac = new AbortController();
    const c = capture({ signal: ac.signal });
    const done = run(['serve', '--repo', repo, '--port', '0', '--json'], c.io);
    for (let i = 0; i < 100 && !c.out.length; i++) await new Promise((r) => setTimeout(r, 20));
    const { url } = JSON.parse(c.out[0]!);
    const res = await fetch(`${url}/metadata/1.root.json`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(await readFile(join(repo, 'metadata/1.root.json'), 'utf8'));
    ac.abort();
    expect(await done).toBe(0);
  });

  it('serve takes telemetry with tokens from the environment, into <data>/outpost.db, kept across restarts', async () => {
    const data = join(dir, 'telemetry-data');
    const env = { OUTPOST_DEVICE_TOKEN: 'fleet-a,fleet-b', OUTPOST_ADMIN_TOKEN: 'admin' };
    const start = async () => {
      const ac = new AbortController();
      const c = capture({ signal: ac.signal });
      const done = run(['serve', '--repo', repo, '--port', '0', '--json', '--data', data], { ...c.io, env });
      for (let i = 0; i < 200 && !c.out.length; i++) await new Promise((r) => setTimeout(r, 20));
      const info = JSON.parse(c.out[0]!);
      return { url: info.url as string, info, stop: () => (ac.abort(), done) };
    };
    const body = JSON.stringify({
      resourceMetrics: [
        {
          resource: { attributes: [{ key: 'outpost.device.id', value: { stringValue: 'cli-device' } }] },
          scopeMetrics: [
            {
              metrics: [
                { name: 'outpost.run.count', sum: { aggregationTemporality: 1, dataPoints: [{ asInt: '3' }] } },
              ],
            },
          ],
        },
      ],
    });
    const send = (url: string, token: string) =>
      fetch(`${url}/v1/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': 'b-1' },
        body,
      });
    let s = await start();
    expect(s.info.telemetry).toBe(join(data, 'outpost.db'));
    expect((await send(s.url, 'fleet-b')).status).toBe(200);
    expect((await send(s.url, 'nope')).status).toBe(401);
    expect(await s.stop()).toBe(0);
    expect((await stat(join(data, 'outpost.db'))).isFile()).toBe(true);

    s = await start();
    expect((await send(s.url, 'fleet-a')).status).toBe(200); // a retry after the restart: not counted again
    const devices = await fetch(`${s.url}/api/devices`, { headers: { authorization: 'Bearer admin' } });
    expect(devices.status).toBe(200);
    const list = (await devices.json()) as { deviceId: string; batches: number }[];
    expect(list).toEqual([expect.objectContaining({ deviceId: 'cli-device', batches: 1 })]);
    expect((await fetch(`${s.url}/api/devices`)).status).toBe(401);
    expect(await s.stop()).toBe(0);
  });

  it('serve --database keeps telemetry in PostgreSQL, and prints the URL without its password', async () => {
    const pg = await startPostgres();
    try {
      const url = new URL(await pg.createDatabase());
      url.password = 'secret-pw';
      const ac = new AbortController();
      const c = capture({ signal: ac.signal });
      const env = { OUTPOST_DEVICE_TOKEN: 'fleet', OUTPOST_ADMIN_TOKEN: 'admin', OUTPOST_DATABASE_URL: url.toString() };
      const done = run(['serve', '--repo', repo, '--port', '0', '--json'], { ...c.io, env });
      for (let i = 0; i < 200 && !c.out.length; i++) await new Promise((r) => setTimeout(r, 20));
      if (!c.out.length) throw new Error(c.err.join('\n'));
      const info = JSON.parse(c.out[0]!) as { url: string; telemetry: string };
      expect(info.telemetry).toMatch(/^postgres:\/\/outpost:\*\*\*@127\.0\.0\.1:\d+\/outpost_test_/);
      expect(c.out.join('') + c.err.join('')).not.toContain('secret-pw');
      const res = await fetch(`${info.url}/v1/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer fleet', 'idempotency-key': 'pg-1' },
        body: JSON.stringify({
          resourceMetrics: [
            { resource: { attributes: [{ key: 'outpost.device.id', value: { stringValue: 'pg-device' } }] } },
          ],
        }),
      });
      expect(res.status).toBe(200);
      const devices = await fetch(`${info.url}/api/devices`, { headers: { authorization: 'Bearer admin' } });
      expect(await devices.json()).toEqual([expect.objectContaining({ deviceId: 'pg-device', batches: 1 })]);
      ac.abort();
      expect(await done).toBe(0);
      expect((await outpost('serve', '--repo', repo, '--database', 'mysql://x')).err).toMatch(/postgres:\/\//);
    } finally {
      await pg.stop();
    }
  });

  it('draws progress bars only on a TTY', async () => {
    const writes: string[] = [];
    const tty = Object.assign(
      new (await import('node:stream')).Writable({ write: (c, _e, cb) => (writes.push(String(c)), cb()) }),
      {
        isTTY: true,
        columns: 100,
        cursorTo: (_x: number, cb?: () => void) => (cb?.(), true),
        clearLine: (_d: number, cb?: () => void) => (cb?.(), true),
        moveCursor: (_x: number, _y: number, cb?: () => void) => (cb?.(), true),
      },
    );
    const c = capture();
    const code = await run(['verify', '--repo', repo], { ...c.io, stderr: tty });
    expect(code).toBe(0);
    expect(writes.join('')).toContain('hashing');
    const drawn = writes.length;
    const plain = capture();
    await run(['verify', '--repo', repo, '--json'], { ...plain.io, stderr: tty });
    expect(writes.length).toBe(drawn); // --json: no control characters for scripts
  });
});
