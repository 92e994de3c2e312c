import { MetadataError } from '@outpost/core';
import { sha256Hex } from './hash.js';
import { utf8 } from './encoding.js';
import type { ChannelInfo, ModelFileInfo, ShadowInfo, Targets } from './metadata.js';
import { channelPath, goldenPath, referencePath, targetUrlPath } from './paths.js';

/**
 * A model version as the signed targets describe it: its variants and their files, each with
 * the length, hash and chunk hashes a download is checked against.
 */
export interface Release {
  model: string;
  version: string;
  variants: ReleaseVariant[];
  golden?: ReleaseBlob;
  /** The reference output distribution drift is measured against (`DriftReference` JSON). */
  reference?: ReleaseBlob;
}

/** A target's bytes: where they are and what they must hash to. */
export interface ReleaseBlob {
  /** Target path (what the metadata signs). */
  path: string;
  /** Repository-relative URL path (content-addressed). */
  url: string;
  length: number;
  sha256: string;
}

export interface ReleaseFile extends ReleaseBlob {
  /** The file's name within its variant. */
  name: string;
  chunkSize: number;
  chunks: string[];
}

export interface ReleaseVariant {
  id: string;
  format: 'onnx' | 'tfjs';
  backends?: string[];
  requires?: string[];
  /** The primary file first. */
  files: ReleaseFile[];
}

/** The versions of a model the targets role signs, in publication order of their paths. */
export function modelVersions(targets: Targets, model: string): string[] {
  const out = new Set<string>();
  for (const t of Object.values(targets.targets)) {
    const o = t.custom?.outpost;
    if (o?.kind === 'model-file' && o.model === model) out.add(o.version);
  }
  return [...out];
}

/** The release of `model@version`, or null if the targets role does not sign it. */
export function releaseOf(targets: Targets, model: string, version: string): Release | null {
  const variants = new Map<string, ReleaseVariant>();
  for (const [path, t] of Object.entries(targets.targets)) {
    const o = t.custom?.outpost;
    if (o?.kind !== 'model-file' || o.model !== model || o.version !== version) continue;
    const info: ModelFileInfo = o;
    let v = variants.get(info.variant);
    if (!v) {
      v = { id: info.variant, format: info.format, files: [] };
      if (info.backends) v.backends = info.backends;
      if (info.requires) v.requires = info.requires;
      variants.set(info.variant, v);
    }
    const file: ReleaseFile = {
      path,
      url: targetUrlPath(path, t.hashes.sha256),
      length: t.length,
      sha256: t.hashes.sha256,
      name: info.file,
      chunkSize: info.chunkSize,
      chunks: info.chunks,
    };
    if (info.primary) v.files.unshift(file);
    else v.files.push(file);
  }
  if (variants.size === 0) return null;
  const release: Release = { model, version, variants: [...variants.values()] };
  const gp = goldenPath(model, version);
  const g = targets.targets[gp];
  if (g)
    release.golden = { path: gp, url: targetUrlPath(gp, g.hashes.sha256), length: g.length, sha256: g.hashes.sha256 };
  const rp = referencePath(model, version);
  const r = targets.targets[rp];
  if (r) {
    release.reference = {
      path: rp,
      url: targetUrlPath(rp, r.hashes.sha256),
      length: r.length,
      sha256: r.hashes.sha256,
    };
  }
  return release;
}

/**
 * A device's rollout bucket for one model version, 0-9999: the first 32 bits of
 * SHA-256(deviceId, model, version) modulo 10000. Deterministic per device, independent between
 * versions (the first 1% of one rollout is not always the first 1% of the next), and computed
 * from a random local id, never from anything that identifies the device.
 */
export async function rolloutBucket(deviceId: string, model: string, version: string): Promise<number> {
  const hex = await sha256Hex(utf8(`${deviceId}\n${model}\n${version}`));
  return parseInt(hex.slice(0, 8), 16) % 10000;
}

/** Which version a device on a channel should run, and why. */
export interface ChannelDecision {
  channel: ChannelInfo;
  /**
   * The version this device should run now: `channel.version` inside the rollout, else
   * `channel.previous`; null when outside the rollout with no previous (install nothing).
   */
  version: string | null;
  /** True when the device falls inside the rollout of `channel.version`. */
  inRollout: boolean;
  bucket: number;
  /**
   * The device's A/B arm when the channel runs an A/B test: `b` runs `channel.ab.version`, `a`
   * what the pointer gives it otherwise; null without a test.
   */
  arm: 'a' | 'b' | null;
  /** The version this device runs as a shadow, and on what share of runs; null when none (or it runs it live). */
  shadow: ShadowInfo | null;
}

/**
 * A device's A/B bucket on a channel, 0-9999: {@link rolloutBucket} keyed by the channel rather
 * than a version, so a device keeps its arm whatever versions the arms name, and the arms are
 * independent of any canary's buckets.
 */
export function abBucket(deviceId: string, model: string, channel: string): Promise<number> {
  // ':' is no character of a version name, so this key never equals a canary's.
  return rolloutBucket(deviceId, model, `ab:${channel}`);
}

/**
 * Resolves a channel pointer for one device. The pointer is signed by the online `channels`
 * role, which may only choose among versions the offline targets role signed: a pointer to a
 * version the targets role does not sign is refused.
 */
export async function decideChannel(
  targets: Targets,
  channels: Targets | undefined,
  channel: string,
  model: string,
  deviceId: string,
): Promise<ChannelDecision | null> {
  const entry = channels?.targets[channelPath(channel, model)]?.custom?.outpost;
  if (entry?.kind !== 'channel' || entry.model !== model || entry.channel !== channel) return null;
  for (const v of [entry.version, entry.previous, entry.ab?.version, entry.shadow?.version]) {
    if (v !== undefined && !releaseOf(targets, model, v)) {
      throw new MetadataError(
        'METADATA_MISMATCH',
        `channel ${channel} names ${model}@${v}, which targets does not sign`,
        'channels',
      );
    }
  }
  const bucket = await rolloutBucket(deviceId, model, entry.version);
  const inRollout = bucket < entry.rolloutBp;
  let version = inRollout ? entry.version : (entry.previous ?? null);
  let arm: ChannelDecision['arm'] = null;
  if (entry.ab) {
    arm = (await abBucket(deviceId, model, channel)) < entry.ab.shareBp ? 'b' : 'a';
    if (arm === 'b') version = entry.ab.version;
  }
  const shadow =
    entry.shadow && entry.shadow.sampleBp > 0 && version !== null && entry.shadow.version !== version
      ? { version: entry.shadow.version, sampleBp: entry.shadow.sampleBp }
      : null;
  return { channel: entry, version, inRollout, bucket, arm, shadow };
}
