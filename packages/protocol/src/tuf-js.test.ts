import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Updater } from 'tuf-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addRelease, setChannel } from './repository.js';
import { MemoryRepo } from './test-repo.js';
import type { KeyAlgorithm } from './keys.js';

/**
 * The format test: tuf-js (the TUF client npm and sigstore use, on Node's crypto) refreshes a
 * repository this package wrote, follows the delegation to `channels`, and downloads and
 * verifies targets. If our canonical JSON, key ids, signature encoding (DER for ECDSA) or
 * consistent-snapshot layout drifted from TUF, it would refuse.
 */
describe.each<KeyAlgorithm>(['ecdsa', 'ed25519'])('tuf-js reads an Outpost repository (%s keys)', (alg) => {
  let dir: string;
  let server: Server;
  let base: string;
  const model = Uint8Array.from({ length: 2_500_000 }, (_, i) => (i * 7) & 255);

  beforeAll(async () => {
    const now = Date.now();
    const repo = await MemoryRepo.create(now, alg);
    repo.apply(
      await addRelease(
        repo.state,
        {
          model: 'digits',
          version: '1.0.0',
          files: [{ variant: 'fp32', file: 'digits.onnx', format: 'onnx', primary: true, bytes: model }],
          golden: new TextEncoder().encode('{"inputs":{},"outputs":{},"tolerance":0.0001}'),
        },
        repo.signers,
        now,
      ),
    );
    repo.apply(
      await setChannel(
        repo.state,
        { channel: 'stable', model: 'digits', version: '1.0.0', rolloutBp: 500 },
        repo.signers,
        now,
      ),
    );
    dir = await mkdtemp(join(tmpdir(), 'outpost-tufjs-'));
    for (const [path, bytes] of repo.files) {
      await mkdir(join(dir, 'repo', path, '..'), { recursive: true });
      await writeFile(join(dir, 'repo', path), bytes);
    }
    await mkdir(join(dir, 'client', 'meta'), { recursive: true });
    await mkdir(join(dir, 'client', 'targets'), { recursive: true });
    await writeFile(join(dir, 'client', 'meta', 'root.json'), repo.rootText());
    server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).slice(1);
      readFile(join(dir, 'repo', path)).then(
        (b) => res.end(b),
        () => {
          res.statusCode = 404;
          res.end();
        },
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  it('refreshes, resolves delegated channel targets and verifies downloads', async () => {
    const updater = new Updater({
      metadataBaseUrl: `${base}/metadata`,
      targetBaseUrl: `${base}/targets`,
      metadataDir: join(dir, 'client', 'meta'),
      targetDir: join(dir, 'client', 'targets'),
    });
    await updater.refresh();
    const info = await updater.getTargetInfo('models/digits/1.0.0/fp32/digits.onnx');
    expect(info?.length).toBe(model.length);
    const path = await updater.downloadTarget(info!, join(dir, 'client', 'targets', 'digits.onnx'));
    expect(Buffer.compare(await readFile(path), Buffer.from(model))).toBe(0);
    // The channel pointer lives in the delegated role; tuf-js walks the delegation to find it.
    const channel = await updater.getTargetInfo('channels/stable/digits.json');
    const cpath = await updater.downloadTarget(channel!, join(dir, 'client', 'targets', 'stable.json'));
    expect(JSON.parse(await readFile(cpath, 'utf8'))).toMatchObject({ version: '1.0.0', rolloutBp: 500 });
    expect(await updater.getTargetInfo('models/digits/1.0.0/golden.json')).toBeDefined();
  });
});
