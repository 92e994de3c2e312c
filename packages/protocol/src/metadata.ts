import type { CompareInfo } from './compare.js';
import type { RolloutPlanInfo } from './rollout.js';

/**
 * The repository's metadata, in The Update Framework's JSON format (specification 1.0): four
 * top-level roles (root, timestamp, snapshot, targets) plus one delegated role, `channels`, that
 * may only sign channel pointers (`channels/*`). Outpost's own fields ride in each target's
 * `custom.outpost`, which TUF clients carry through untouched.
 */

/** The TUF specification version the metadata declares. */
export const SPEC_VERSION = '1.0.31';

/** A public key as root (or a delegating role) lists it. */
export interface PublicKey {
  keytype: 'ecdsa' | 'ed25519';
  scheme: 'ecdsa-sha2-nistp256' | 'ed25519';
  keyval: { public: string };
}

/** Keys and how many of them must sign. */
export interface RoleKeys {
  keyids: string[];
  threshold: number;
}

/** The top-level role names. */
export type TopRole = 'root' | 'timestamp' | 'snapshot' | 'targets';

/** Every role this repository has: the top-level four and the `channels` delegation. */
export type RoleName = TopRole | 'channels';

interface SignedBase<T extends string> {
  _type: T;
  spec_version: string;
  version: number;
  /** UTC, `YYYY-MM-DDTHH:MM:SSZ`. */
  expires: string;
}

export interface Root extends SignedBase<'root'> {
  consistent_snapshot: boolean;
  keys: Record<string, PublicKey>;
  roles: Record<TopRole, RoleKeys>;
}

/** How one role pins the metadata file of another. */
export interface MetaFile {
  version: number;
  length?: number;
  hashes?: { sha256: string };
}

export interface Timestamp extends SignedBase<'timestamp'> {
  meta: { 'snapshot.json': MetaFile };
}

export interface Snapshot extends SignedBase<'snapshot'> {
  meta: Record<string, MetaFile>;
}

/** One target file: length and hash, with Outpost's description in `custom`. */
export interface TargetFile {
  length: number;
  hashes: { sha256: string };
  custom?: { outpost?: ModelFileInfo | ChannelInfo | GoldenInfo | ReferenceInfo | RolloutPlanInfo | CompareInfo };
}

export interface DelegatedRole extends RoleKeys {
  name: string;
  terminating: boolean;
  paths: string[];
}

export interface Targets extends SignedBase<'targets'> {
  targets: Record<string, TargetFile>;
  delegations?: { keys: Record<string, PublicKey>; roles: DelegatedRole[] };
}

/** A signed metadata file as it sits in the repository. */
export interface Envelope<T> {
  signed: T;
  signatures: { keyid: string; sig: string }[];
}

/** One file of one variant of one model version. */
export interface ModelFileInfo {
  kind: 'model-file';
  model: string;
  version: string;
  variant: string;
  /** The file's name within the variant (the model loader asks for it by this name). */
  file: string;
  format: 'onnx' | 'tfjs';
  /** Backends the variant is meant for; absent means any. */
  backends?: string[];
  /** Device features the variant needs, such as `shader-f16`. */
  requires?: string[];
  /** The variant's primary file (the ONNX model, the TF.js model.json). */
  primary: boolean;
  /** Chunk size of `chunks`, in bytes. */
  chunkSize: number;
  /** Hex SHA-256 of each chunk, so a download is verified as it arrives. */
  chunks: string[];
}

/**
 * A channel pointer: which version devices on `channel` run. `version` goes to devices whose
 * rollout bucket is below `rolloutBp` (basis points: 10000 = everyone); the others stay on, or
 * install, `previous`. All of it is signed by the online channels key, which may only name
 * versions the offline targets key signed.
 */
export interface ChannelInfo {
  kind: 'channel';
  channel: string;
  model: string;
  version: string;
  rolloutBp: number;
  previous?: string;
  /**
   * A shadow: devices also run `version` on `sampleBp` basis points of their real inputs, in a
   * separate worker, after the live result is back, and report how well it agrees with the live
   * model (by the comparison its release signs, `compare.json`). Never changes a live result.
   */
  shadow?: ShadowInfo;
  /**
   * An A/B test: devices whose A/B bucket (a hash of their install id, the model and the channel,
   * independent of the rollout bucket) is below `shareBp` run `version` (arm B); the others run
   * what the pointer gives them (arm A).
   */
  ab?: AbInfo;
}

/** A channel's shadow version and sample (see {@link ChannelInfo.shadow}). */
export interface ShadowInfo {
  version: string;
  /** Share of live runs also run by the shadow, in basis points. */
  sampleBp: number;
}

/** A channel's A/B arm B (see {@link ChannelInfo.ab}). */
export interface AbInfo {
  version: string;
  /** Share of the channel's devices in arm B, in basis points. */
  shareBp: number;
}

/** Golden inputs, outputs and tolerance of a model version (the file is JSON, see {@link GoldenFile}). */
export interface GoldenInfo {
  kind: 'golden';
  model: string;
  version: string;
}

/** A model version's reference output distribution for drift (the file is JSON, a `DriftReference`). */
export interface ReferenceInfo {
  kind: 'reference';
  model: string;
  version: string;
}

/** Contents of a golden target file: not signed JSON itself, so floats are fine here. */
export interface GoldenFile {
  inputs: Record<string, EncodedTensor>;
  outputs: Record<string, EncodedTensor>;
  tolerance: number;
}

/** A tensor in JSON: little-endian bytes in base64. */
export interface EncodedTensor {
  type: string;
  dims: number[];
  base64: string;
}

/** Default lifetimes of each role's metadata, in seconds. */
export const DEFAULT_EXPIRY = {
  root: 365 * 86400,
  targets: 90 * 86400,
  channels: 30 * 86400,
  snapshot: 7 * 86400,
  timestamp: 86400,
} as const satisfies Record<RoleName, number>;

/** TUF's expiry format: ISO 8601 UTC to the second. */
export function expiryAt(nowMs: number, seconds: number): string {
  return new Date(nowMs + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
