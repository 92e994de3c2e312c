import { generateKey, type KeyAlgorithm, type SigningKey } from './keys.js';
import type { RoleName } from './metadata.js';
import { initRepository, type MetadataFiles, type PublishedBlob, type RepoState, type Signers } from './repository.js';
import { targetUrlPath } from './paths.js';
import type { MetadataFetcher } from './trust.js';

/**
 * An in-memory repository for tests (here and in the runtime's): files by repository path, a
 * fetcher over them, and the keys of every role.
 */
export class MemoryRepo {
  readonly files = new Map<string, Uint8Array<ArrayBuffer>>();
  /** Every metadata fetch, in order (to assert what a client asked for). */
  readonly fetched: string[] = [];

  private constructor(
    public state: RepoState,
    readonly keys: Record<RoleName, SigningKey[]>,
  ) {}

  static async create(now: number, alg: KeyAlgorithm = 'ecdsa'): Promise<MemoryRepo> {
    const roles = ['root', 'timestamp', 'snapshot', 'targets', 'channels'] as const;
    const keys = Object.fromEntries(
      await Promise.all(roles.map(async (r): Promise<[RoleName, SigningKey[]]> => [r, [await generateKey(alg)]])),
    ) as Record<RoleName, SigningKey[]>;
    const init = await initRepository({
      roles: Object.fromEntries(roles.map((r) => [r, { keys: keys[r], threshold: 1 }])) as never,
      now,
    });
    const repo = new MemoryRepo(init.state, keys);
    repo.write(init.files);
    return repo;
  }

  get signers(): Signers {
    return this.keys;
  }

  /** Applies the result of a repository function. */
  apply(result: { state: RepoState; files: MetadataFiles; blobs?: PublishedBlob[] }): void {
    this.state = result.state;
    this.write(result.files);
    for (const b of result.blobs ?? []) this.files.set(targetUrlPath(b.path, b.target.hashes.sha256), b.bytes);
  }

  write(files: MetadataFiles): void {
    for (const [name, bytes] of Object.entries(files)) this.files.set(`metadata/${name}`, bytes);
  }

  /** The root apps ship (`metadata/1.root.json`) as text. */
  rootText(version = 1): string {
    return new TextDecoder().decode(this.files.get(`metadata/${version}.root.json`));
  }

  readonly fetcher: MetadataFetcher = async (file, maxLength) => {
    this.fetched.push(file);
    const bytes = this.files.get(`metadata/${file}`);
    if (!bytes) return null;
    if (bytes.length > maxLength) throw new RangeError(`${file} over cap ${maxLength}`);
    return bytes;
  };
}
