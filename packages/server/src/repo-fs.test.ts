import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addRelease,
  generateKey,
  initRepository,
  targetUrlPath,
  type RoleName,
  type Signers,
  type SigningKey,
} from '@outpost/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRepoState, withRepoLock, writeRepoChanges } from './repo-fs.js';

const ROLES: RoleName[] = ['root', 'timestamp', 'snapshot', 'targets', 'channels'];
const T0 = Date.UTC(2026, 10, 1);

describe('repository on disk', () => {
  let dir: string;
  let signers: Signers;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-repofs-'));
    const keys = Object.fromEntries(await Promise.all(ROLES.map(async (r) => [r, [await generateKey()]]))) as Record<
      RoleName,
      SigningKey[]
    >;
    signers = keys;
    const init = await initRepository({
      roles: Object.fromEntries(ROLES.map((r) => [r, { keys: keys[r], threshold: 1 }])) as never,
      now: T0,
    });
    await writeRepoChanges(dir, init);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  const release = async (version: string, bytes: Uint8Array<ArrayBuffer>) =>
    addRelease(
      await loadRepoState(dir),
      {
        model: 'digits',
        version,
        files: [{ variant: 'fp32', file: 'digits.onnx', format: 'onnx', primary: true, bytes }],
      },
      signers,
      T0,
    );

  it('loads back what it wrote, and the next change builds on it', async () => {
    const r = await release('1.0.0', new Uint8Array(100).fill(1));
    const written = await writeRepoChanges(dir, r);
    expect(written.at(-1)).toBe('metadata/timestamp.json');
    expect(written[0]).toBe(targetUrlPath(r.blobs[0]!.path, r.blobs[0]!.target.hashes.sha256));
    const state = await loadRepoState(dir);
    expect(state.targets.signed.version).toBe(2);
    expect(state.timestamp.signed.version).toBe(2);
    expect(Object.keys(state.targets.signed.targets)).toEqual(['models/digits/1.0.0/fp32/digits.onnx']);
  });

  it('never overwrites a blob with other bytes, and then leaves timestamp.json as it was', async () => {
    const r = await release('1.1.0', new Uint8Array(100).fill(2));
    const blob = join(dir, targetUrlPath(r.blobs[0]!.path, r.blobs[0]!.target.hashes.sha256));
    await writeRepoChanges(dir, { files: {}, blobs: [{ ...r.blobs[0]!, bytes: new Uint8Array(100).fill(2) }] });
    await writeFile(blob, new Uint8Array(100).fill(3)); // someone put other bytes under that name
    const before = await readFile(join(dir, 'metadata/timestamp.json'));
    await expect(writeRepoChanges(dir, r)).rejects.toThrow(/already exists with other bytes/);
    expect(Buffer.compare(await readFile(join(dir, 'metadata/timestamp.json')), before)).toBe(0);
    expect(await readFile(blob)).toEqual(Buffer.alloc(100, 3));
    expect((await readdir(join(dir, 'metadata'))).some((n) => n.startsWith('.tmp-'))).toBe(false);
    expect((await loadRepoState(dir)).targets.signed.version).toBe(2);
  });

  it('refuses to load metadata edited on disk, naming the file', async () => {
    const copy = await mkdtemp(join(tmpdir(), 'outpost-repofs-edit-'));
    try {
      const { cp } = await import('node:fs/promises');
      await cp(dir, copy, { recursive: true });
      const p = join(copy, 'metadata/2.targets.json');
      await writeFile(p, (await readFile(p, 'utf8')).replace('"length": 100', '"length": 101'));
      await expect(loadRepoState(copy)).rejects.toThrow(/^metadata\/2\.targets\.json: /);
    } finally {
      await rm(copy, { recursive: true, force: true });
    }
  });

  it('lets one command at a time change the repository', async () => {
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    let release!: () => void;
    const first = withRepoLock(dir, () => {
      entered();
      return new Promise<void>((r) => (release = r));
    });
    await inside;
    await expect(withRepoLock(dir, async () => undefined)).rejects.toThrow(/another outpost command/);
    release();
    await first;
    await expect(withRepoLock(dir, async () => 'free')).resolves.toBe('free');
  });
});
