import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addRelease,
  encodeEnvelope,
  encodeGolden,
  generateKey,
  signMetadata,
  initRepository,
  setChannel,
  type ChannelInfo,
  type CompareSpec,
  type KeyAlgorithm,
  type PublishFile,
  type RepoState,
  type RoleName,
  type SigningKey,
} from '@outpost/protocol';
import { createServer, writeRepoChanges } from '@outpost/server';

const ROLES = ['root', 'timestamp', 'snapshot', 'targets', 'channels'] as const;

/**
 * A real repository on disk, served by `outpost serve`'s server on loopback, that a spec
 * publishes to while a page is open. Keys are made fresh per repository.
 */
export class TestRepo {
  private constructor(
    readonly dir: string,
    readonly url: string,
    private state: RepoState,
    private readonly keys: Record<RoleName, SigningKey[]>,
    private readonly close: () => Promise<void>,
    /** The clock metadata is signed with. */
    public now: number,
  ) {}

  static async create(now = Date.now(), algorithm: KeyAlgorithm = 'ecdsa'): Promise<TestRepo> {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-e2e-repo-'));
    const keys = Object.fromEntries(
      await Promise.all(ROLES.map(async (r): Promise<[RoleName, SigningKey[]]> => [r, [await generateKey(algorithm)]])),
    ) as Record<RoleName, SigningKey[]>;
    const init = await initRepository({
      roles: Object.fromEntries(ROLES.map((r) => [r, { keys: keys[r], threshold: 1 }])) as never,
      now,
    });
    await writeRepoChanges(dir, init);
    const app = createServer({ repo: dir });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    return new TestRepo(
      dir,
      url,
      init.state,
      keys,
      async () => {
        await app.close();
        await rm(dir, { recursive: true, force: true });
      },
      now,
    );
  }

  /** The root metadata an app ships. */
  get trustedRoot(): object {
    return this.state.root;
  }

  async publish(
    model: string,
    version: string,
    files: Omit<PublishFile, 'bytes'> & { bytes: Uint8Array },
    golden?: Parameters<typeof encodeGolden>[0],
    extra: { compare?: CompareSpec } = {},
  ): Promise<void> {
    const release = {
      model,
      version,
      files: [{ ...files, bytes: new Uint8Array(files.bytes) }],
      ...(golden ? { golden: encodeGolden(golden) } : {}),
      ...extra,
    };
    const r = await addRelease(this.state, release, this.keys, this.now);
    await writeRepoChanges(this.dir, r);
    this.state = r.state;
  }

  async point(model: string, version: string, rolloutBp = 10000, previous?: string, channel = 'stable'): Promise<void> {
    const r = await setChannel(
      this.state,
      { channel, model, version, rolloutBp, ...(previous ? { previous } : {}) },
      this.keys,
      this.now,
    );
    await writeRepoChanges(this.dir, r);
    this.state = r.state;
  }

  /** Signs a channel pointer as given (shadow, A/B arm and all). */
  async pointWith(pointer: Omit<ChannelInfo, 'kind'>): Promise<void> {
    const r = await setChannel(this.state, pointer, this.keys, this.now);
    await writeRepoChanges(this.dir, r);
    this.state = r.state;
  }

  /**
   * Replaces `timestamp.json` with a newer one that is signed by a key the root does not list,
   * or not signed at all (U3). The next publish writes a proper one again.
   */
  async forgeTimestamp(mode: 'foreign-key' | 'unsigned'): Promise<void> {
    const ts = this.state.timestamp.signed;
    const next = { ...ts, version: ts.version + 1 };
    const env =
      mode === 'foreign-key' ? await signMetadata(next, [await generateKey()]) : { signed: next, signatures: [] };
    await writeFile(join(this.dir, 'metadata/timestamp.json'), encodeEnvelope(env));
  }

  async dispose(): Promise<void> {
    await this.close();
  }
}
