import { MetadataError } from '@outpost/core';
import { canonicalize } from './canonical.js';
import { fromUtf8, utf8 } from './encoding.js';
import { sha256Hex } from './hash.js';
import type { MetaFile, RoleName, Root, Snapshot, Targets, Timestamp } from './metadata.js';
import { parseMetadata, type SignedOf } from './parse.js';
import { CHANNEL_PATHS, matchesPattern, metadataFile } from './paths.js';
import { meetsThreshold } from './sign.js';

/**
 * The client side of TUF (specification 1.0, section 5 "detailed client workflow"), over
 * WebCrypto, for page, worker and Node alike. A {@link TrustedSet} holds the newest metadata of
 * each role that has passed every check; {@link refreshMetadata} runs one update cycle against a
 * repository with one fixed time, and either moves the set forward or leaves it as it was.
 */

/** Byte caps for metadata whose length nothing pins yet (TUF 5.3/5.4; python-tuf's defaults). */
export const METADATA_CAPS = {
  root: 512 * 1024,
  timestamp: 16 * 1024,
  /** Used only when the pinning role gives no length. */
  other: 4 * 1024 * 1024,
} as const;

/** Root rotations followed in one cycle at most (a repository cannot keep a client busy forever). */
export const MAX_ROOT_ROTATIONS = 32;

/**
 * The raw metadata of each trusted role, as received. This is what a client persists: reading
 * it back re-runs every check, so a store edited behind the client's back is not trusted.
 */
export interface TrustedState {
  root: string;
  timestamp?: string;
  snapshot?: string;
  targets?: string;
  channels?: string;
}

/**
 * Fetches one metadata file by name (`3.root.json`, `timestamp.json`…), reading at most
 * `maxLength` bytes: past that it must fail. Resolves `null` when the file does not exist (404).
 */
export type MetadataFetcher = (file: string, maxLength: number) => Promise<Uint8Array | null>;

interface Trusted<T> {
  signed: T;
  raw: unknown;
  text: string;
}

function expired(expires: string, now: number): boolean {
  return Date.parse(expires) <= now;
}

/** The newest verified metadata of each role. */
export class TrustedSet {
  private constructor(
    private rootM: Trusted<Root>,
    private timestampM?: Trusted<Timestamp>,
    private snapshotM?: Trusted<Snapshot>,
    private targetsM?: Trusted<Targets>,
    private channelsM?: Trusted<Targets>,
  ) {}

  /**
   * Starts from the root the app ships. Its signatures are checked against itself (a shipped
   * root that does not meet its own threshold is a build error worth failing loudly on), but its
   * expiry is not: an old app must still be able to follow root rotations.
   */
  static async fromRoot(rootJson: string | Uint8Array): Promise<TrustedSet> {
    const bytes = typeof rootJson === 'string' ? utf8(rootJson) : rootJson;
    const env = parseMetadata('root', bytes);
    if (!(await meetsThreshold(env.raw, env.signatures, env.signed.keys, env.signed.roles.root))) {
      throw new MetadataError('METADATA_SIGNATURE', 'The trusted root is not signed by its own root keys', 'root');
    }
    return new TrustedSet({ signed: env.signed, raw: env.raw, text: fromUtf8(bytes) });
  }

  /**
   * Restores a persisted set on top of the shipped root. The stored root is used if it is
   * newer and self-signed; stored timestamp, snapshot and targets are re-verified and dropped
   * one by one from the first that fails (they will be fetched again), so a tampered store
   * can only cost a download, never trust. Expiry is not checked here: an installed model keeps
   * serving on expired metadata, it just cannot be updated from it.
   */
  static async restore(shippedRoot: string | Uint8Array, state: TrustedState | undefined): Promise<TrustedSet> {
    const shipped = await TrustedSet.fromRoot(shippedRoot);
    if (!state) return shipped;
    let set = shipped;
    try {
      const stored = await TrustedSet.fromRoot(state.root);
      if (stored.root.version >= shipped.root.version) set = stored;
    } catch {
      return shipped;
    }
    try {
      if (state.timestamp) await set.acceptTimestamp(utf8(state.timestamp), null);
      if (state.snapshot) await set.acceptSnapshot(utf8(state.snapshot), null);
      if (state.targets) await set.acceptTargets(utf8(state.targets), null);
      if (state.channels) await set.acceptChannels(utf8(state.channels), null);
    } catch {
      // Keep what verified; the rest is refetched on the next cycle.
    }
    return set;
  }

  get root(): Root {
    return this.rootM.signed;
  }
  get timestamp(): Timestamp | undefined {
    return this.timestampM?.signed;
  }
  get snapshot(): Snapshot | undefined {
    return this.snapshotM?.signed;
  }
  get targets(): Targets | undefined {
    return this.targetsM?.signed;
  }
  get channels(): Targets | undefined {
    return this.channelsM?.signed;
  }

  /** What to persist (see {@link TrustedState}). */
  state(): TrustedState {
    const out: TrustedState = { root: this.rootM.text };
    if (this.timestampM) out.timestamp = this.timestampM.text;
    if (this.snapshotM) out.snapshot = this.snapshotM.text;
    if (this.targetsM) out.targets = this.targetsM.text;
    if (this.channelsM) out.channels = this.channelsM.text;
    return out;
  }

  private async verified<R extends RoleName>(
    role: R,
    bytes: Uint8Array,
    keys: Root['keys'],
    roleKeys: { keyids: string[]; threshold: number },
  ): Promise<Trusted<SignedOf[R]>> {
    const env = parseMetadata(role, bytes);
    if (!(await meetsThreshold(env.raw, env.signatures, keys, roleKeys))) {
      throw new MetadataError(
        'METADATA_SIGNATURE',
        `${role} metadata lacks ${roleKeys.threshold} valid signature(s) from its keys`,
        role,
      );
    }
    return { signed: env.signed, raw: env.raw, text: fromUtf8(bytes) };
  }

  /**
   * TUF 5.3.4-5.3.8: root N+1 must be signed by a threshold of root N's keys and of its own, and
   * be exactly version N+1. Timestamp and snapshot are dropped if their keys rotated (5.3.11).
   */
  async acceptRoot(bytes: Uint8Array): Promise<void> {
    const cur = this.rootM.signed;
    const env = parseMetadata('root', bytes);
    const byOld = await meetsThreshold(env.raw, env.signatures, cur.keys, cur.roles.root);
    const byNew = await meetsThreshold(env.raw, env.signatures, env.signed.keys, env.signed.roles.root);
    if (!byOld || !byNew) {
      throw new MetadataError(
        'METADATA_SIGNATURE',
        `root v${env.signed.version} is not signed by the threshold of both the trusted and its own root keys`,
        'root',
      );
    }
    if (env.signed.version !== cur.version + 1) {
      throw new MetadataError(
        'METADATA_ROLLBACK',
        `root v${env.signed.version} does not follow the trusted v${cur.version}`,
        'root',
      );
    }
    // A key id the new root no longer lists is a rotation too (and must not reach canonicalize
    // as `undefined`, which throws a TypeError).
    const rotated = (r: 'timestamp' | 'snapshot') =>
      canonicalize(cur.roles[r]) !== canonicalize(env.signed.roles[r]) ||
      cur.roles[r].keyids.some(
        (id) => canonicalize(cur.keys[id] ?? null) !== canonicalize(env.signed.keys[id] ?? null),
      );
    if (rotated('timestamp')) this.timestampM = this.snapshotM = undefined;
    else if (rotated('snapshot')) this.snapshotM = undefined;
    this.rootM = { signed: env.signed, raw: env.raw, text: fromUtf8(bytes) };
  }

  /** `now` is null only when restoring (expiry is an update-time rule). */
  async acceptTimestamp(bytes: Uint8Array, now: number | null): Promise<'updated' | 'unchanged'> {
    const root = this.rootM.signed;
    const next = await this.verified('timestamp', bytes, root.keys, root.roles.timestamp);
    const cur = this.timestampM;
    if (cur) {
      const v = next.signed.version;
      if (v < cur.signed.version) {
        throw new MetadataError(
          'METADATA_ROLLBACK',
          `timestamp v${v} is older than the trusted v${cur.signed.version}`,
          'timestamp',
        );
      }
      if (v === cur.signed.version) {
        if (canonicalize(next.raw) !== canonicalize(cur.raw)) {
          throw new MetadataError('METADATA_ROLLBACK', `timestamp v${v} differs from the trusted v${v}`, 'timestamp');
        }
        if (now !== null && expired(next.signed.expires, now)) {
          throw new MetadataError('METADATA_EXPIRED', `timestamp expired at ${next.signed.expires}`, 'timestamp');
        }
        return 'unchanged';
      }
      const snapV = next.signed.meta['snapshot.json'].version;
      if (snapV < cur.signed.meta['snapshot.json'].version) {
        throw new MetadataError('METADATA_ROLLBACK', `timestamp points to an older snapshot v${snapV}`, 'timestamp');
      }
    }
    if (now !== null && expired(next.signed.expires, now)) {
      throw new MetadataError('METADATA_EXPIRED', `timestamp expired at ${next.signed.expires}`, 'timestamp');
    }
    this.timestampM = next;
    return 'updated';
  }

  private async checkPinned(role: string, bytes: Uint8Array, pin: MetaFile | undefined): Promise<void> {
    if (!pin) throw new MetadataError('METADATA_MISMATCH', `${role} is not listed by the role that pins it`, role);
    if (pin.length !== undefined && bytes.length !== pin.length) {
      throw new MetadataError('METADATA_MISMATCH', `${role} has ${bytes.length} bytes, ${pin.length} pinned`, role);
    }
    if (pin.hashes && (await sha256Hex(new Uint8Array(bytes))) !== pin.hashes.sha256) {
      throw new MetadataError('METADATA_MISMATCH', `${role} does not match its pinned hash`, role);
    }
  }

  /** TUF 5.5: pinned by timestamp; no targets file may go back or disappear. */
  async acceptSnapshot(bytes: Uint8Array, now: number | null): Promise<'updated' | 'unchanged'> {
    const pin = this.timestampM?.signed.meta['snapshot.json'];
    await this.checkPinned('snapshot', bytes, pin);
    const root = this.rootM.signed;
    const next = await this.verified('snapshot', bytes, root.keys, root.roles.snapshot);
    if (next.signed.version !== pin?.version) {
      throw new MetadataError(
        'METADATA_MISMATCH',
        `snapshot v${next.signed.version} is not the v${pin?.version} timestamp pins`,
        'snapshot',
      );
    }
    const cur = this.snapshotM;
    if (cur) {
      for (const [file, m] of Object.entries(cur.signed.meta)) {
        const n = next.signed.meta[file];
        if (!n || n.version < m.version) {
          throw new MetadataError(
            'METADATA_ROLLBACK',
            `snapshot v${next.signed.version} rolls back ${file}`,
            'snapshot',
          );
        }
      }
    }
    if (now !== null && expired(next.signed.expires, now)) {
      throw new MetadataError('METADATA_EXPIRED', `snapshot expired at ${next.signed.expires}`, 'snapshot');
    }
    const same = cur && canonicalize(cur.raw) === canonicalize(next.raw);
    this.snapshotM = next;
    return same ? 'unchanged' : 'updated';
  }

  /** TUF 5.6: pinned by snapshot, signed by the targets keys. */
  async acceptTargets(bytes: Uint8Array, now: number | null): Promise<void> {
    const pin = this.snapshotM?.signed.meta['targets.json'];
    await this.checkPinned('targets', bytes, pin);
    const root = this.rootM.signed;
    const next = await this.verified('targets', bytes, root.keys, root.roles.targets);
    if (next.signed.version !== pin?.version) {
      throw new MetadataError(
        'METADATA_MISMATCH',
        `targets v${next.signed.version} is not the pinned v${pin?.version}`,
        'targets',
      );
    }
    if (now !== null && expired(next.signed.expires, now)) {
      throw new MetadataError('METADATA_EXPIRED', `targets expired at ${next.signed.expires}`, 'targets');
    }
    this.targetsM = next;
    if (this.channelsM && !this.channelsRole()) this.channelsM = undefined;
  }

  private channelsRole() {
    return this.targetsM?.signed.delegations?.roles.find((r) => r.name === 'channels');
  }

  /**
   * TUF 5.6.7 for the one delegation: pinned by snapshot, signed by the keys targets delegates
   * to, and trusted only for paths the delegation names (and never outside `channels/`).
   */
  async acceptChannels(bytes: Uint8Array, now: number | null): Promise<void> {
    const role = this.channelsRole();
    const targets = this.targetsM?.signed;
    if (!role || !targets?.delegations) {
      throw new MetadataError('METADATA_MISMATCH', 'targets delegates no channels role', 'channels');
    }
    const pin = this.snapshotM?.signed.meta['channels.json'];
    await this.checkPinned('channels', bytes, pin);
    const next = await this.verified('channels', bytes, targets.delegations.keys, role);
    if (next.signed.version !== pin?.version) {
      throw new MetadataError(
        'METADATA_MISMATCH',
        `channels v${next.signed.version} is not the pinned v${pin?.version}`,
        'channels',
      );
    }
    for (const path of Object.keys(next.signed.targets)) {
      const allowed =
        role.paths.some((p) => matchesPattern(path, p)) && CHANNEL_PATHS.some((p) => matchesPattern(path, p));
      if (!allowed) {
        throw new MetadataError('METADATA_MISMATCH', `channels signs ${path}, outside its delegation`, 'channels');
      }
    }
    if (now !== null && expired(next.signed.expires, now)) {
      throw new MetadataError('METADATA_EXPIRED', `channels expired at ${next.signed.expires}`, 'channels');
    }
    this.channelsM = next;
  }
}

/** What one update cycle did. */
export interface RefreshResult {
  /** Root versions followed in this cycle. */
  rootRotations: number;
  /** False when the timestamp had not changed (nothing new to look at). */
  changed: boolean;
}

/**
 * One TUF update cycle (5.3-5.6) with one fixed `now` (ms since the epoch; U6): root rotations,
 * timestamp, snapshot, targets and the channels delegation. On any refusal it throws a
 * `MetadataError` and the set keeps everything it trusted before that step.
 */
export async function refreshMetadata(
  trusted: TrustedSet,
  fetch: MetadataFetcher,
  now: number,
): Promise<RefreshResult> {
  let rootRotations = 0;
  for (; rootRotations < MAX_ROOT_ROTATIONS; rootRotations++) {
    const bytes = await fetch(metadataFile('root', trusted.root.version + 1), METADATA_CAPS.root);
    if (!bytes) break;
    await trusted.acceptRoot(bytes);
  }
  if (expired(trusted.root.expires, now)) {
    throw new MetadataError('METADATA_EXPIRED', `root expired at ${trusted.root.expires}`, 'root');
  }
  const ts = await fetch(metadataFile('timestamp'), METADATA_CAPS.timestamp);
  if (!ts) throw new MetadataError('METADATA_FORMAT', 'The repository has no timestamp.json', 'timestamp');
  const tsResult = await trusted.acceptTimestamp(ts, now);

  const need = async (role: 'snapshot' | 'targets' | 'channels', pin: MetaFile | undefined) => {
    const file = trusted.root.consistent_snapshot && pin ? metadataFile(role, pin.version) : metadataFile(role);
    const bytes = await fetch(file, pin?.length ?? METADATA_CAPS.other);
    if (!bytes) throw new MetadataError('METADATA_MISMATCH', `${file} is missing from the repository`, role);
    return bytes;
  };
  const tsPin = trusted.timestamp?.meta['snapshot.json'];
  if (tsResult === 'updated' || trusted.snapshot?.version !== tsPin?.version) {
    await trusted.acceptSnapshot(await need('snapshot', tsPin), now);
  } else if (trusted.snapshot && expired(trusted.snapshot.expires, now)) {
    throw new MetadataError('METADATA_EXPIRED', `snapshot expired at ${trusted.snapshot.expires}`, 'snapshot');
  }
  const snap = trusted.snapshot;
  const tPin = snap?.meta['targets.json'];
  if (trusted.targets?.version !== tPin?.version) await trusted.acceptTargets(await need('targets', tPin), now);
  else if (trusted.targets && expired(trusted.targets.expires, now)) {
    throw new MetadataError('METADATA_EXPIRED', `targets expired at ${trusted.targets.expires}`, 'targets');
  }
  const cPin = snap?.meta['channels.json'];
  if (cPin && trusted.targets?.delegations?.roles.some((r) => r.name === 'channels')) {
    if (trusted.channels?.version !== cPin.version) await trusted.acceptChannels(await need('channels', cPin), now);
    else if (trusted.channels && expired(trusted.channels.expires, now)) {
      throw new MetadataError('METADATA_EXPIRED', `channels expired at ${trusted.channels.expires}`, 'channels');
    }
  }
  return { rootRotations, changed: tsResult === 'updated' || rootRotations > 0 };
}
