// A real signed repository on disk, served on loopback by @outpost/server (what `outpost serve`
// runs), that the OTA section publishes to while a page is open: e2e/support/test-repo.ts in
// plain JavaScript, built on the packages' dist, so the bench needs no TypeScript loader.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import {
  addRelease,
  encodeGolden,
  generateKey,
  initRepository,
  setChannel,
} from '../../packages/protocol/dist/index.js';
import { createServer, writeRepoChanges } from '../../packages/server/dist/index.js';

const ROLES = ['root', 'timestamp', 'snapshot', 'targets', 'channels'];

export class BenchRepo {
  /** @private */
  constructor(dir, url, state, keys, close) {
    this.dir = dir;
    this.url = url;
    this.state = state;
    this.keys = keys;
    this.close = close;
  }

  static async create() {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-bench-repo-'));
    const keys = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, [await generateKey()]])));
    const init = await initRepository({
      roles: Object.fromEntries(ROLES.map((r) => [r, { keys: keys[r], threshold: 1 }])),
      now: Date.now(),
    });
    await writeRepoChanges(dir, init);
    const app = createServer({ repo: dir });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${app.server.address().port}`;
    return new BenchRepo(dir, url, init.state, keys, async () => {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    });
  }

  /** The root metadata an app ships. */
  get trustedRoot() {
    return this.state.root;
  }

  /**
   * Publishes one ONNX file as `version` and points the stable channel at it, as `outpost
   * publish` then `outpost promote` do (sign, write blobs and metadata to disk).
   */
  async publish(model, version, file, bytes, golden) {
    const release = {
      model,
      version,
      files: [{ variant: 'fp32', file, format: 'onnx', primary: true, bytes: new Uint8Array(bytes) }],
      ...(golden ? { golden: encodeGolden(golden) } : {}),
    };
    const r = await addRelease(this.state, release, this.keys, Date.now());
    await writeRepoChanges(this.dir, r);
    this.state = r.state;
    const c = await setChannel(
      this.state,
      { channel: 'stable', model, version, rolloutBp: 10000 },
      this.keys,
      Date.now(),
    );
    await writeRepoChanges(this.dir, c);
    this.state = c.state;
  }

  async dispose() {
    await this.close();
  }
}

const { onnx } = onnxProto;

/** An ONNX model with another doc string: other bytes (a new blob), the same answers. */
export function withDocString(bytes, doc) {
  const m = onnx.ModelProto.decode(bytes);
  m.docString = doc;
  return onnx.ModelProto.encode(m).finish();
}

export const repoPath = (path) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
