import { chunkHashes, CHUNK_SIZE, sha256Hex } from './hash.js';
import { utf8 } from './encoding.js';
import type { SigningKey } from './keys.js';
import {
  DEFAULT_EXPIRY,
  SPEC_VERSION,
  expiryAt,
  type ChannelInfo,
  type Envelope,
  type ModelFileInfo,
  type RoleName,
  type Root,
  type Snapshot,
  type TargetFile,
  type Targets,
  type Timestamp,
} from './metadata.js';
import {
  CHANNEL_PATHS,
  assertSafeName,
  channelPath,
  goldenPath,
  metadataFile,
  modelFilePath,
  referencePath,
  rolloutPlanPath,
  comparePath,
} from './paths.js';
import { checkCompareSpec, type CompareInfo, type CompareSpec } from './compare.js';
import { checkRolloutPlan, type RolloutPlan, type RolloutPlanInfo } from './rollout.js';
import { decodeReference } from './telemetry.js';
import { signMetadata } from './sign.js';

/**
 * The publishing side: pure functions from one repository state to the next. Each returns the
 * new state and the files to write (name relative to `metadata/` → bytes); the CLI and the
 * server do the I/O. Every change re-signs the roles it touches, then snapshot and timestamp.
 */

/** The current signed metadata of every role. */
export interface RepoState {
  root: Envelope<Root>;
  targets: Envelope<Targets>;
  channels: Envelope<Targets>;
  snapshot: Envelope<Snapshot>;
  timestamp: Envelope<Timestamp>;
}

/** Signers available for a change; only the roles it touches are needed. */
export type Signers = Partial<Record<RoleName, SigningKey[]>>;

/** Role lifetimes in seconds (see {@link DEFAULT_EXPIRY}). */
export type Expiry = Partial<Record<RoleName, number>>;

/** Metadata files to write, by name within `metadata/`. */
export type MetadataFiles = Record<string, Uint8Array<ArrayBuffer>>;

/** The bytes a role's envelope is stored as (what snapshot and timestamp pin). */
export function encodeEnvelope(env: Envelope<unknown>): Uint8Array<ArrayBuffer> {
  return utf8(`${JSON.stringify(env, null, 2)}\n`);
}

function need(signers: Signers, role: RoleName): SigningKey[] {
  const keys = signers[role];
  if (!keys?.length) throw new TypeError(`Signing ${role} metadata needs the ${role} key(s)`);
  return keys;
}

const keyMap = (keys: SigningKey[]) => Object.fromEntries(keys.map((k) => [k.keyid, k.public]));

/** Options of {@link initRepository}. */
export interface InitOptions {
  /** Public keys per role, with their thresholds. */
  roles: Record<RoleName, { keys: SigningKey[]; threshold: number }>;
  now: number;
  expiry?: Expiry;
}

async function reSnapshot(
  state: Omit<RepoState, 'snapshot' | 'timestamp'> & Partial<RepoState>,
  changed: MetadataFiles,
  signers: Signers,
  now: number,
  expiry: Expiry,
): Promise<{ state: RepoState; files: MetadataFiles }> {
  const files: MetadataFiles = { ...changed };
  const meta: Snapshot['meta'] = {};
  for (const role of ['targets', 'channels'] as const) {
    const env = state[role];
    const bytes = files[metadataFile(role, env.signed.version)] ?? encodeEnvelope(env);
    meta[`${role}.json`] = {
      version: env.signed.version,
      length: bytes.length,
      hashes: { sha256: await sha256Hex(bytes) },
    };
  }
  const snapshot = await signMetadata<Snapshot>(
    {
      _type: 'snapshot',
      spec_version: SPEC_VERSION,
      version: (state.snapshot?.signed.version ?? 0) + 1,
      expires: expiryAt(now, expiry.snapshot ?? DEFAULT_EXPIRY.snapshot),
      meta,
    },
    need(signers, 'snapshot'),
  );
  const snapBytes = encodeEnvelope(snapshot);
  files[metadataFile('snapshot', snapshot.signed.version)] = snapBytes;
  const timestamp = await signTimestamp(
    state.timestamp?.signed.version ?? 0,
    snapshot,
    snapBytes,
    signers,
    now,
    expiry,
  );
  files[metadataFile('timestamp')] = encodeEnvelope(timestamp);
  return { state: { ...state, snapshot, timestamp }, files };
}

async function signTimestamp(
  prevVersion: number,
  snapshot: Envelope<Snapshot>,
  snapBytes: Uint8Array<ArrayBuffer>,
  signers: Signers,
  now: number,
  expiry: Expiry,
): Promise<Envelope<Timestamp>> {
  return signMetadata<Timestamp>(
    {
      _type: 'timestamp',
      spec_version: SPEC_VERSION,
      version: prevVersion + 1,
      expires: expiryAt(now, expiry.timestamp ?? DEFAULT_EXPIRY.timestamp),
      meta: {
        'snapshot.json': {
          version: snapshot.signed.version,
          length: snapBytes.length,
          hashes: { sha256: await sha256Hex(snapBytes) },
        },
      },
    },
    need(signers, 'timestamp'),
  );
}

/**
 * A new repository: root v1 (written as `1.root.json`, the root apps ship), empty targets that
 * delegate `channels/*` to the channels role, empty channels, snapshot and timestamp.
 */
export async function initRepository(opts: InitOptions): Promise<{ state: RepoState; files: MetadataFiles }> {
  const { roles, now } = opts;
  const expiry = opts.expiry ?? {};
  const signers: Signers = Object.fromEntries(Object.entries(roles).map(([r, v]) => [r, v.keys]));
  const top = ['root', 'timestamp', 'snapshot', 'targets'] as const;
  const root = await signMetadata<Root>(
    {
      _type: 'root',
      spec_version: SPEC_VERSION,
      version: 1,
      expires: expiryAt(now, expiry.root ?? DEFAULT_EXPIRY.root),
      consistent_snapshot: true,
      keys: Object.assign({}, ...top.map((r) => keyMap(roles[r].keys))) as Root['keys'],
      roles: Object.fromEntries(
        top.map((r) => [r, { keyids: roles[r].keys.map((k) => k.keyid), threshold: roles[r].threshold }]),
      ) as Root['roles'],
    },
    roles.root.keys,
  );
  const targets = await signMetadata<Targets>(
    {
      _type: 'targets',
      spec_version: SPEC_VERSION,
      version: 1,
      expires: expiryAt(now, expiry.targets ?? DEFAULT_EXPIRY.targets),
      targets: {},
      delegations: {
        keys: keyMap(roles.channels.keys),
        roles: [
          {
            name: 'channels',
            keyids: roles.channels.keys.map((k) => k.keyid),
            threshold: roles.channels.threshold,
            terminating: true,
            paths: CHANNEL_PATHS,
          },
        ],
      },
    },
    roles.targets.keys,
  );
  const channels = await signMetadata<Targets>(
    {
      _type: 'targets',
      spec_version: SPEC_VERSION,
      version: 1,
      expires: expiryAt(now, expiry.channels ?? DEFAULT_EXPIRY.channels),
      targets: {},
    },
    roles.channels.keys,
  );
  const files: MetadataFiles = {
    [metadataFile('root', 1)]: encodeEnvelope(root),
    [metadataFile('targets', 1)]: encodeEnvelope(targets),
    [metadataFile('channels', 1)]: encodeEnvelope(channels),
  };
  return reSnapshot({ root, targets, channels }, files, signers, now, expiry);
}

/**
 * The next version of a targets-type role (`targets` or the `channels` delegation) with
 * `added` entries, signed by that role, then snapshot and timestamp on top.
 */
async function addTargets(
  state: RepoState,
  role: 'targets' | 'channels',
  added: Record<string, TargetFile>,
  signers: Signers,
  now: number,
  expiry: Expiry,
): Promise<{ state: RepoState; files: MetadataFiles }> {
  const cur = state[role].signed;
  const env = await signMetadata<Targets>(
    {
      ...cur,
      version: cur.version + 1,
      expires: expiryAt(now, expiry[role] ?? DEFAULT_EXPIRY[role]),
      targets: { ...cur.targets, ...added },
    },
    need(signers, role),
  );
  return reSnapshot(
    { ...state, [role]: env },
    { [metadataFile(role, env.signed.version)]: encodeEnvelope(env) },
    signers,
    now,
    expiry,
  );
}

/** One file to publish as part of a model version. */
export interface PublishFile {
  variant: string;
  /** Name within the variant. */
  file: string;
  format: 'onnx' | 'tfjs';
  primary: boolean;
  bytes: Uint8Array<ArrayBuffer>;
  backends?: string[];
  requires?: string[];
}

/** A target entry (and where its blob goes) for bytes to publish. */
export interface PublishedBlob {
  path: string;
  target: TargetFile;
  bytes: Uint8Array<ArrayBuffer>;
}

/** Describes a model file as a signed target, with its chunk hashes. */
export async function describeModelFile(model: string, version: string, f: PublishFile): Promise<PublishedBlob> {
  for (const [n, what] of [
    [model, 'model name'],
    [version, 'version'],
    [f.variant, 'variant'],
    [f.file, 'file name'],
  ] as const) {
    assertSafeName(n, what);
  }
  const info: ModelFileInfo = {
    kind: 'model-file',
    model,
    version,
    variant: f.variant,
    file: f.file,
    format: f.format,
    primary: f.primary,
    chunkSize: CHUNK_SIZE,
    chunks: await chunkHashes(f.bytes),
  };
  if (f.backends) info.backends = f.backends;
  if (f.requires) info.requires = f.requires;
  return {
    path: modelFilePath(model, version, f.variant, f.file),
    target: { length: f.bytes.length, hashes: { sha256: await sha256Hex(f.bytes) }, custom: { outpost: info } },
    bytes: f.bytes,
  };
}

/**
 * Adds a model version (all its variants, its golden file, its drift reference and its rollout
 * plan at once) to targets. The rollout plan is signed here, by the offline targets key, so the
 * online controller that follows it can never change it. A version
 * that is already signed is refused: the same version with other bytes is exactly what clients
 * reject (U5), so the repository never produces it.
 */
export async function addRelease(
  state: RepoState,
  release: {
    model: string;
    version: string;
    files: PublishFile[];
    golden?: Uint8Array<ArrayBuffer>;
    reference?: Uint8Array<ArrayBuffer>;
    rolloutPlan?: RolloutPlan;
    /** How the version's outputs are compared with the live model's when it runs as a shadow. */
    compare?: CompareSpec;
  },
  signers: Signers,
  now: number,
  expiry: Expiry = {},
): Promise<{ state: RepoState; files: MetadataFiles; blobs: PublishedBlob[] }> {
  const { model, version } = release;
  const prefix = `models/${model}/${version}/`;
  if (Object.keys(state.targets.signed.targets).some((p) => p.startsWith(prefix))) {
    throw new TypeError(`${model}@${version} is already published; publish a new version`);
  }
  if (!release.files.some((f) => f.primary)) throw new TypeError('A release needs at least one primary file');
  const blobs = await Promise.all(release.files.map((f) => describeModelFile(model, version, f)));
  if (release.golden) {
    blobs.push({
      path: goldenPath(model, version),
      target: {
        length: release.golden.length,
        hashes: { sha256: await sha256Hex(release.golden) },
        custom: { outpost: { kind: 'golden', model, version } },
      },
      bytes: release.golden,
    });
  }
  if (release.reference) {
    decodeReference(release.reference);
    blobs.push({
      path: referencePath(model, version),
      target: {
        length: release.reference.length,
        hashes: { sha256: await sha256Hex(release.reference) },
        custom: { outpost: { kind: 'reference', model, version } },
      },
      bytes: release.reference,
    });
  }
  if (release.rolloutPlan) {
    const info: RolloutPlanInfo = { kind: 'rollout-plan', model, version, ...checkRolloutPlan(release.rolloutPlan) };
    const bytes = utf8(`${JSON.stringify(info, null, 2)}\n`);
    blobs.push({
      path: rolloutPlanPath(model, version),
      target: { length: bytes.length, hashes: { sha256: await sha256Hex(bytes) }, custom: { outpost: info } },
      bytes,
    });
  }
  if (release.compare) {
    const info: CompareInfo = { kind: 'compare', model, version, ...checkCompareSpec(release.compare) };
    const bytes = utf8(`${JSON.stringify(info, null, 2)}\n`);
    blobs.push({
      path: comparePath(model, version),
      target: { length: bytes.length, hashes: { sha256: await sha256Hex(bytes) }, custom: { outpost: info } },
      bytes,
    });
  }
  const next = await addTargets(
    state,
    'targets',
    Object.fromEntries(blobs.map((b) => [b.path, b.target])),
    signers,
    now,
    expiry,
  );
  return { ...next, blobs };
}

/**
 * Points a channel at a version (promote, rollout widening, rollback). Needs only the channels
 * key (online, held by the rollout controller), which can choose among signed versions but never
 * add one: the version must already be in targets.
 */
export async function setChannel(
  state: RepoState,
  pointer: Omit<ChannelInfo, 'kind'>,
  signers: Signers,
  now: number,
  expiry: Expiry = {},
): Promise<{ state: RepoState; files: MetadataFiles; blobs: PublishedBlob[] }> {
  assertSafeName(pointer.channel, 'channel');
  assertSafeName(pointer.model, 'model name');
  const signed = (v: string) =>
    Object.values(state.targets.signed.targets).some(
      (t) =>
        t.custom?.outpost?.kind === 'model-file' &&
        t.custom.outpost.model === pointer.model &&
        t.custom.outpost.version === v,
    );
  for (const v of [pointer.version, pointer.previous, pointer.ab?.version, pointer.shadow?.version]) {
    if (v !== undefined && !signed(v)) throw new TypeError(`${pointer.model}@${v} is not published`);
  }
  const isBp = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 10000;
  if (!isBp(pointer.rolloutBp)) throw new TypeError('rolloutBp must be an integer from 0 to 10000');
  if (pointer.ab && !isBp(pointer.ab.shareBp)) throw new TypeError('ab.shareBp must be an integer from 0 to 10000');
  if (pointer.shadow) {
    if (!isBp(pointer.shadow.sampleBp)) throw new TypeError('shadow.sampleBp must be an integer from 0 to 10000');
    // How a shadow is judged is signed offline with its release; the online key cannot supply it.
    if (!state.targets.signed.targets[comparePath(pointer.model, pointer.shadow.version)]) {
      throw new TypeError(
        `${pointer.model}@${pointer.shadow.version} has no signed comparison (outpost publish --compare): it cannot run as a shadow`,
      );
    }
  }
  const info: ChannelInfo = { kind: 'channel', ...pointer };
  if (info.previous === undefined) delete info.previous;
  if (info.ab === undefined) delete info.ab;
  else info.ab = { version: info.ab.version, shareBp: info.ab.shareBp };
  if (info.shadow === undefined) delete info.shadow;
  else info.shadow = { version: info.shadow.version, sampleBp: info.shadow.sampleBp };
  const bytes = utf8(`${JSON.stringify(info, null, 2)}\n`);
  const path = channelPath(pointer.channel, pointer.model);
  const target: TargetFile = {
    length: bytes.length,
    hashes: { sha256: await sha256Hex(bytes) },
    custom: { outpost: info },
  };
  const next = await addTargets(state, 'channels', { [path]: target }, signers, now, expiry);
  return { ...next, blobs: [{ path, target, bytes }] };
}

/** Re-signs the timestamp only (kept fresh by whoever holds the online timestamp key). */
export async function refreshTimestamp(
  state: RepoState,
  snapshotBytes: Uint8Array<ArrayBuffer>,
  signers: Signers,
  now: number,
  expiry: Expiry = {},
): Promise<{ state: RepoState; files: MetadataFiles }> {
  const timestamp = await signTimestamp(
    state.timestamp.signed.version,
    state.snapshot,
    snapshotBytes,
    signers,
    now,
    expiry,
  );
  return { state: { ...state, timestamp }, files: { [metadataFile('timestamp')]: encodeEnvelope(timestamp) } };
}

/**
 * Root rotation (U9): root N+1 with new keys or thresholds, signed by the current root keys
 * and by the new ones, so a client trusting root N can follow. Timestamp and snapshot are then
 * re-signed by their (possibly new) keys.
 */
export async function rotateRoot(
  state: RepoState,
  roles: Partial<Record<'root' | 'timestamp' | 'snapshot' | 'targets', { keys: SigningKey[]; threshold: number }>>,
  signers: Signers & { oldRoot: SigningKey[] },
  now: number,
  expiry: Expiry = {},
): Promise<{ state: RepoState; files: MetadataFiles }> {
  const cur = state.root.signed;
  const nextRoles = { ...cur.roles };
  const keys = { ...cur.keys };
  for (const [role, spec] of Object.entries(roles)) {
    nextRoles[role as keyof typeof nextRoles] = { keyids: spec.keys.map((k) => k.keyid), threshold: spec.threshold };
    Object.assign(keys, keyMap(spec.keys));
  }
  const used = new Set(Object.values(nextRoles).flatMap((r) => r.keyids));
  for (const id of Object.keys(keys)) if (!used.has(id)) delete keys[id];
  const newRootKeys = roles.root?.keys ?? signers.root ?? [];
  const byId = new Map([...signers.oldRoot, ...newRootKeys].map((k) => [k.keyid, k]));
  const root = await signMetadata<Root>(
    {
      ...cur,
      version: cur.version + 1,
      expires: expiryAt(now, expiry.root ?? DEFAULT_EXPIRY.root),
      keys,
      roles: nextRoles,
    },
    [...byId.values()],
  );
  const files: MetadataFiles = { [metadataFile('root', root.signed.version)]: encodeEnvelope(root) };
  return reSnapshot({ ...state, root }, files, signers, now, expiry);
}
