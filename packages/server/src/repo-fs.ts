import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  TrustedSet,
  metadataFile,
  sha256Hex,
  targetUrlPath,
  type Envelope,
  type MetadataFetcher,
  type MetadataFiles,
  type PublishedBlob,
  type RepoState,
  type Root,
  type Snapshot,
  type Targets,
  type Timestamp,
} from '@outpost/protocol';

/**
 * A repository on disk: `metadata/` and `targets/` under one folder, as `outpost serve` serves
 * it. Reading checks every signature first; writing puts blobs, then versioned metadata, then
 * `timestamp.json` last, so a client reading at any moment never sees a timestamp that points at
 * files not there yet.
 */

/** File names in `metadata/` that can be metadata: `timestamp.json` or `<version>.<role>.json`. */
const METADATA_NAME = /^(?:[1-9][0-9]{0,9}\.)?[a-z][a-z0-9_-]{0,63}\.json$/;

const isMissing = (e: unknown) => (e as { code?: string }).code === 'ENOENT';

/**
 * A {@link MetadataFetcher} over `<dir>/metadata/`: a missing file is `null`, a file over the
 * cap fails before it is read. `onFetch` sees each file name asked for (to name it in errors).
 */
export function fsMetadataFetcher(dir: string, onFetch?: (file: string) => void): MetadataFetcher {
  return async (file, maxLength) => {
    onFetch?.(file);
    if (!METADATA_NAME.test(file)) return null;
    const path = join(dir, 'metadata', file);
    try {
      const { size } = await stat(path);
      if (size > maxLength) throw new RangeError(`metadata/${file} has ${size} bytes, over its ${maxLength}-byte cap`);
      return new Uint8Array(await readFile(path));
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
  };
}

/** The newest root version on disk (`N.root.json` with the highest N). */
async function newestRoot(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(join(dir, 'metadata'));
  } catch (e) {
    if (isMissing(e)) throw new Error(`${dir} is not an Outpost repository (no metadata/ folder)`);
    throw e;
  }
  const versions = names.map((n) => /^([1-9][0-9]*)\.root\.json$/.exec(n)?.[1]).filter((v) => v !== undefined);
  if (!versions.length) throw new Error(`${join(dir, 'metadata')} has no root metadata`);
  return Math.max(...versions.map(Number));
}

/** Options of {@link loadRepoState}. */
export interface LoadOptions {
  /**
   * The root to start from (what apps ship).
   * @defaultValue the repository's own `metadata/1.root.json`
   */
  trustedRoot?: Uint8Array;
}

/**
 * Loads the current signed state of a repository, checking it as a client would (from the
 * trusted root through every root rotation, then timestamp, snapshot, targets and channels:
 * signatures, thresholds, pinned versions, lengths and hashes), so a publisher never re-signs
 * metadata someone edited on disk. Expiry is not checked: re-signing is how it is fixed. Errors
 * name the file at fault (`metadata/3.targets.json: …`).
 */
export async function loadRepoState(dir: string, options: LoadOptions = {}): Promise<RepoState> {
  const fetch = fsMetadataFetcher(dir);
  const parse = <T>(bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes)) as Envelope<T>;
  /** Reads one metadata file and runs a check on it, naming the file if either fails. */
  const step = async (file: string, check: (bytes: Uint8Array) => Promise<unknown>) => {
    const bytes = await fetch(file, Number.MAX_SAFE_INTEGER);
    if (!bytes) throw new Error(`metadata/${file} is missing`);
    try {
      await check(bytes);
    } catch (e) {
      throw new Error(`metadata/${file}: ${(e as Error).message}`, { cause: e });
    }
    return bytes;
  };
  let trusted: TrustedSet | undefined;
  let rootBytes = options.trustedRoot;
  if (rootBytes) trusted = await TrustedSet.fromRoot(rootBytes);
  else rootBytes = await step(metadataFile('root', 1), async (b) => (trusted = await TrustedSet.fromRoot(b)));
  const set = trusted!;
  const newest = await newestRoot(dir);
  for (let v = set.root.version + 1; v <= newest; v++) {
    rootBytes = await step(metadataFile('root', v), (b) => set.acceptRoot(b));
  }
  const tsBytes = await step(metadataFile('timestamp'), (b) => set.acceptTimestamp(b, null));
  const timestamp = parse<Timestamp>(tsBytes);
  const snapFile = metadataFile('snapshot', timestamp.signed.meta['snapshot.json'].version);
  const snapshot = parse<Snapshot>(await step(snapFile, (b) => set.acceptSnapshot(b, null)));
  const pinned = (role: 'targets' | 'channels') => {
    const pin = snapshot.signed.meta[`${role}.json`];
    if (!pin) throw new Error(`metadata/${snapFile} does not list ${role}.json`);
    return metadataFile(role, pin.version);
  };
  const targets = parse<Targets>(await step(pinned('targets'), (b) => set.acceptTargets(b, null)));
  const channels = parse<Targets>(await step(pinned('channels'), (b) => set.acceptChannels(b, null)));
  return { root: parse<Root>(rootBytes), timestamp, snapshot, targets, channels };
}

/** Bytes written so far out of the total, for a progress bar. */
export type WriteProgress = (done: number, total: number) => void;

/** What a repository function returned: metadata files to write and blobs to store. */
export interface RepoChanges {
  files: MetadataFiles;
  blobs?: PublishedBlob[];
}

const tmpName = (path: string) => join(dirname(path), `.tmp-${randomBytes(6).toString('hex')}`);

async function writeTemp(path: string, bytes: Uint8Array, onBytes: (n: number) => void): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    const step = 4 << 20;
    for (let at = 0; at < bytes.length; at += step) {
      const part = bytes.subarray(at, Math.min(bytes.length, at + step));
      await fh.write(part);
      onBytes(part.length);
    }
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

/**
 * Writes `bytes` at `path` unless a file is there already: identical bytes are left alone
 * (`false`), different bytes are an error. The file appears whole (hard link of a synced
 * temporary file, which also fails rather than overwrite if another writer got there first).
 */
async function writeOnce(path: string, bytes: Uint8Array, onBytes: (n: number) => void): Promise<boolean> {
  const same = async () => {
    try {
      const existing = new Uint8Array(await readFile(path));
      if (existing.length === bytes.length && (await sha256Hex(existing)) === (await sha256Hex(new Uint8Array(bytes))))
        return true;
    } catch (e) {
      if (isMissing(e)) return null;
      throw e;
    }
    throw new Error(`${path} already exists with other bytes; refusing to overwrite it`);
  };
  if (await same()) {
    onBytes(bytes.length);
    return false;
  }
  const tmp = await writeTemp(path, bytes, onBytes);
  try {
    await link(tmp, path);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EEXIST' || !(await same())) throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}

/**
 * Writes the result of a repository function: blobs first (content-addressed, never replacing
 * other bytes), then the new versioned metadata files, and `timestamp.json` last by rename, so
 * the repository switches to the new state in one step. Returns the paths written, relative to
 * `dir` (blobs already present are skipped).
 */
export async function writeRepoChanges(
  dir: string,
  changes: RepoChanges,
  onProgress?: WriteProgress,
): Promise<string[]> {
  const blobs = changes.blobs ?? [];
  const files = Object.entries(changes.files);
  const total = blobs.reduce((n, b) => n + b.bytes.length, 0) + files.reduce((n, [, b]) => n + b.length, 0);
  let done = 0;
  const tick = (n: number) => {
    done += n;
    onProgress?.(done, total);
  };
  const written: string[] = [];
  for (const b of blobs) {
    const rel = targetUrlPath(b.path, b.target.hashes.sha256);
    if (await writeOnce(join(dir, rel), b.bytes, tick)) written.push(rel);
  }
  const timestampName = metadataFile('timestamp');
  for (const [name, bytes] of files) {
    if (name === timestampName) continue;
    if (!METADATA_NAME.test(name)) throw new Error(`Refusing to write metadata named ${name}`);
    if (await writeOnce(join(dir, 'metadata', name), bytes, tick)) written.push(`metadata/${name}`);
  }
  const ts = changes.files[timestampName];
  if (ts) {
    const path = join(dir, 'metadata', timestampName);
    const tmp = await writeTemp(path, ts, tick);
    await rename(tmp, path);
    written.push(`metadata/${timestampName}`);
  }
  return written;
}

/**
 * Runs `fn` holding the repository's lock file (`.outpost.lock`), so two commands never sign
 * the same metadata versions at once. A lock left by a crashed command is named in the error.
 */
export async function withRepoLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const path = join(dir, '.outpost.lock');
  let fh;
  try {
    fh = await open(path, 'wx');
  } catch (e) {
    if ((e as { code?: string }).code === 'EEXIST') {
      throw new Error(`${path} exists: another outpost command is changing this repository (if none is, remove it)`);
    }
    throw e;
  }
  try {
    await fh.writeFile(`${process.pid}\n`);
    await fh.close();
    return await fn();
  } finally {
    await rm(path, { force: true });
  }
}
