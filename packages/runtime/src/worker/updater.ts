import { DownloadError, IntegrityError, NotCachedError, type ModelSource, type RepositoryConfig } from '@outpost/core';
import {
  TrustedSet,
  channelPath,
  decideChannel,
  decodeGolden,
  httpMetadataFetcher,
  readCapped,
  decodeReference,
  refreshMetadata,
  releaseOf,
  sha256Hex,
  type ChannelDecision,
  type MetadataFetcher,
  type DriftReference,
  type Release,
  type ReleaseBlob,
} from '@outpost/protocol';
import type { UpdateState } from '../store/index.js';

/** What the repository says a device should run for one model, after every check. */
export interface Plan {
  name: string;
  release: Release;
  decision: ChannelDecision;
}

/** Outcome of one metadata refresh: values, not exceptions (the caller decides what is fatal). */
export type RefreshOutcome = { ok: true; changed: boolean } | { ok: false; offline: boolean; error: Error };

/**
 * The worker's view of a signed repository: trusted metadata restored from IndexedDB and moved
 * forward by TUF update cycles, channel decisions for this device, and model sources built from
 * signed target entries (so every byte downloaded is checked against a signed hash).
 */
export class Updater {
  private trusted: TrustedSet | undefined;

  constructor(
    readonly config: RepositoryConfig,
    private readonly state: UpdateState,
    /** Milliseconds since the epoch; read once per update cycle (U6). */
    private readonly now: () => Promise<number>,
  ) {}

  private base(): string {
    return this.config.url.endsWith('/') ? this.config.url : `${this.config.url}/`;
  }

  /** The trusted set: restored from the store on first use, re-verified on the way. */
  async trust(): Promise<TrustedSet> {
    if (!this.trusted) {
      const stored = await this.state.trust(this.config.url);
      this.trusted = await TrustedSet.restore(this.config.trustedRoot, stored?.state);
    }
    return this.trusted;
  }

  /**
   * One update cycle (from the repository, or from another source of metadata files such as
   * an offline bundle). Network failures come back as `offline`; a refusal (bad signature,
   * rollback, expired metadata) as an error; either way the trusted set keeps what it had.
   * Progress that passed every check is saved, so the highest versions seen survive reloads.
   */
  async refresh(fetcher: MetadataFetcher = httpMetadataFetcher(this.base())): Promise<RefreshOutcome> {
    const trusted = await this.trust();
    const now = await this.now();
    try {
      const r = await refreshMetadata(trusted, fetcher, now);
      await this.state.saveTrust(this.config.url, trusted.state(), now);
      return { ok: true, changed: r.changed };
    } catch (err) {
      // Keep whatever did verify before the refusal (a newer root, timestamp…).
      await this.state.saveTrust(this.config.url, trusted.state(), now).catch(() => undefined);
      const error = err instanceof Error ? err : new Error(String(err));
      return { ok: false, offline: err instanceof DownloadError && err.status === 0, error };
    }
  }

  /** What this device should run for `name` according to the trusted metadata, or null. */
  async plan(name: string): Promise<Plan | null> {
    const trusted = await this.trust();
    if (!trusted.targets) return null;
    const decision = await decideChannel(
      trusted.targets,
      trusted.channels,
      this.config.channel,
      name,
      await this.state.deviceId(),
    );
    if (!decision?.version) return null;
    const release = releaseOf(trusted.targets, name, decision.version);
    return release ? { name, release, decision } : null;
  }

  /**
   * Every version the trusted channel pointer names for `name` (its version, previous, A/B arm
   * and shadow): retention keeps them, so switching the pointer among them (blue-green, an
   * abort, an arm) needs no download. Empty without a pointer.
   */
  async channelVersions(name: string): Promise<string[]> {
    const trusted = await this.trust();
    const entry = trusted.channels?.targets[channelPath(this.config.channel, name)]?.custom?.outpost;
    if (entry?.kind !== 'channel') return [];
    return [entry.version, entry.previous, entry.ab?.version, entry.shadow?.version].filter(
      (v): v is string => v !== undefined,
    );
  }

  /** The signed release of an exact version, if the trusted targets list it. */
  async release(name: string, version: string): Promise<Release | null> {
    const targets = (await this.trust()).targets;
    return targets ? releaseOf(targets, name, version) : null;
  }

  /**
   * A load source for a release: every variant with its files at their content-addressed URLs
   * and signed hashes, plus the golden check (fetched and verified here) when installing: a
   * version loaded from the store was checked when it was installed, and needs no network.
   */
  /** Fetches a signed target of a release and checks it against its signed length and hash. */
  private async blob(release: Release, g: ReleaseBlob, what: string, signal?: AbortSignal): Promise<Uint8Array> {
    const url = new URL(g.url, this.base()).href;
    let res: Response;
    try {
      res = await fetch(url, { signal });
    } catch (err) {
      throw new NotCachedError(
        `Cannot fetch the ${what} of ${release.model}@${release.version}: ${String(err)}`,
        release.model,
        release.version,
      );
    }
    if (!res.ok) throw new DownloadError(`${g.url} answered ${res.status}`, url, res.status);
    const bytes = await readCapped(res, g.length, g.path);
    const actual = await sha256Hex(bytes);
    if (actual !== g.sha256 || bytes.length !== g.length) {
      throw new IntegrityError(
        `The ${what} of ${release.model}@${release.version} does not match its signed hash`,
        g.sha256,
        actual,
        g.path,
      );
    }
    return bytes;
  }

  /** The release's drift reference, verified against its signed hash; null when it has none. */
  async reference(release: Release): Promise<DriftReference | null> {
    if (!release.reference) return null;
    return decodeReference(await this.blob(release, release.reference, 'drift reference'));
  }

  async sourceOf(release: Release, signal: AbortSignal, options: { golden: boolean }): Promise<ModelSource> {
    const url = (path: string) => new URL(path, this.base()).href;
    const source: ModelSource = {
      name: release.model,
      version: release.version,
      variants: release.variants.map((v) => ({
        id: v.id,
        format: v.format,
        ...(v.backends ? { backends: v.backends as ('webgpu' | 'wasm')[] } : {}),
        ...(v.requires ? { requires: v.requires } : {}),
        files: v.files.map((f) => ({
          path: f.name,
          url: url(f.url),
          sha256: f.sha256,
          bytes: f.length,
          chunks: { size: f.chunkSize, sha256: f.chunks },
        })),
      })),
    };
    if (release.golden && options.golden) {
      const bytes = await this.blob(release, release.golden, 'golden file', signal);
      source.golden = decodeGolden(bytes);
    }
    return source;
  }
}
