import {
  AbortError,
  BackendError,
  DisposedError,
  IntegrityError,
  ModelFormatError,
  NotCachedError,
  PROTOCOL_VERSION,
  RunError,
  UpdateError,
  serializeError,
  type BackgroundFailure,
  type InputShapes,
  type TensorMap,
  type BackendId,
  type EngineConfig,
  type EngineSession,
  type FrameRequest,
  type FrameResult,
  type LoadedModelInfo,
  type LoadProgress,
  type LoadRequest,
  type LoadTimings,
  type NamedLoadRequest,
  type ModelBytes,
  type ModelFile,
  type ModelVariant,
  type RunRequest,
  type RunResult,
  type ShadowPlan,
  type ShadowServeRequest,
  type ShadowTapRequest,
  type TelemetryFlushReport,
  type TelemetryUpdateEvent,
  type TelemetryWorkerEvent,
  type UpdateCheck,
  type UpdatePlan,
  type WorkerApi,
  type WorkerConfig,
} from '@outpost/core';
import * as Comlink from 'comlink';
import { tensorBuffers } from '../shared/index.js';
import {
  compareSpecOf,
  decodeBundle,
  encodeBundle,
  modelVersions,
  releaseOf,
  utf8,
  type Release,
} from '@outpost/protocol';
import { ModelStore, PartialDownloads, UpdateState, sha256Hex, type StoredBytes } from '../store/index.js';
import { download } from './download.js';
import { zeros } from './zeros.js';
import { NONFINITE_OUTPUT, nonFinite } from './nonfinite.js';
import type { Device } from './device.js';
import { openModel, registeredEngines, workerDevice } from './engines.js';
import { candidates, chooseVariant, type Chosen, type DeviceCaps } from './variants.js';
import { DOWNLOAD_DEFAULTS, downloadResumable } from './resumable.js';
import { Updater } from './updater.js';
import { validateFeeds } from './validate.js';
import { FrameReader } from './frames.js';
import { Telemetry, type Series } from '../telemetry/index.js';
import { ShadowServer, ShadowTap } from './shadow.js';

/** Bytes of a version or variant, where they came from, and the files they are. */
interface Obtained {
  stored: StoredBytes[];
  files: ModelFile[];
  source: LoadedModelInfo['source'];
  bytes: ModelBytes;
}

/** Reported as `outpost.runtime.version`. */
const RUNTIME_VERSION = '0.1.0';

/** Timed runs per variant candidate, after one warm-up run. */
const VARIANT_TIMED_RUNS = 3;
/** Once this much time has gone into trials, untried variants are skipped. */
const VARIANT_BUDGET_MS = 3000;

interface LiveModel {
  info: LoadedModelInfo;
  session: EngineSession;
  /** Runs of one session execute one at a time; this is the tail of that queue. */
  queue: Promise<unknown>;
  /** Set once a run succeeded, after which a failing run no longer means the backend is bad. */
  ranOnce: boolean;
  /** The model moved to another backend since its last result: the next one says so. */
  announce?: boolean;
  bytes: ModelBytes;
  /** Where this model's telemetry goes (telemetry on). */
  series?: Series;
}

const DEFAULT_CONFIG: WorkerConfig = {
  backends: ['webgpu', 'wasm'],
  numThreads: 1,
  maxInputBytes: 256 * 1024 * 1024,
};

/** Splits a source into its files; the first is the graph. */
function filesOf(req: LoadRequest): ModelFile[] {
  const { source } = req;
  if (source.files?.length) return source.files;
  if (!source.url) throw new TypeError(`Model ${source.name}@${source.version} has neither url nor files`);
  // The graph is stored under its file name (model.onnx, model.json), so companions such as
  // TF.js shards keep the relative paths the graph refers to them by.
  const path = new URL(source.url, 'http://x/').pathname.split('/').pop() || `${source.name}.onnx`;
  return [{ path, url: source.url, sha256: source.sha256 }];
}

/**
 * The worker side of the runtime: downloads and stores models, opens them on a backend, runs
 * them one call at a time per model. Everything here runs off the page thread.
 */
export class WorkerRuntime implements WorkerApi {
  private config: WorkerConfig = DEFAULT_CONFIG;
  private readonly store = new ModelStore();
  private readonly updateState = new UpdateState(this.store);
  private readonly partials = new PartialDownloads(this.store);
  private updater: Updater | undefined;
  private readonly models = new Map<number, LiveModel>();
  private readonly calls = new Map<number, AbortController>();
  private nextId = 1;
  private telemetry: Telemetry | undefined;
  private readonly frames = new FrameReader();
  /** Shadow taps of live models, by model id (see shadow.ts). */
  private readonly taps = new Map<number, ShadowTap>();
  /** As a shadow worker: the shadow versions loaded, and the ports served. */
  private readonly shadowLoads = new Map<string, Promise<LoadedModelInfo>>();
  private readonly shadowServers: ShadowServer[] = [];

  /** @param device - what the device offers; tests pass their own. */
  constructor(private readonly device: Device = workerDevice) {}

  hello() {
    return { protocol: PROTOCOL_VERSION };
  }

  async init(
    config: WorkerConfig,
    now?: () => number | Promise<number>,
    report?: (failure: BackgroundFailure) => void | Promise<void>,
  ): Promise<void> {
    this.config = config;
    if (config.telemetry) {
      this.telemetry?.stop();
      this.telemetry = new Telemetry(config.telemetry, {
        facts: () => this.deviceFacts(),
        storageBytes: async () => (await this.store.usage()).bytes,
        // The page may be gone (a retired worker): then there is nobody left to tell.
        report: report
          ? (err) =>
              void Promise.resolve(report({ source: 'telemetry', error: serializeError(err) })).catch(() => undefined)
          : undefined,
      });
      this.telemetry.start();
    }
    if (config.repository) {
      // The app's clock lives on the page (tests fake it there); it is read once per cycle.
      const clock = now ? async () => Number(await now()) : async () => Date.now();
      this.updater = new Updater(config.repository, this.updateState, clock);
    }
  }

  /** What the device class is made from (bucketed in device-class.ts before it is sent). */
  private async deviceFacts() {
    const nav = globalThis.navigator as
      { hardwareConcurrency?: number; deviceMemory?: number; userAgent?: string } | undefined;
    const adapter = this.config.backends.includes('webgpu') ? await this.device.adapter().catch(() => null) : null;
    return {
      cores: nav?.hardwareConcurrency,
      memoryGb: nav?.deviceMemory,
      gpuVendor: adapter ? (adapter.info?.vendor ?? '') : null,
      userAgent: nav?.userAgent,
      deviceId: await this.updateState.deviceId(),
      runtimeVersion: RUNTIME_VERSION,
      channel: this.config.repository?.channel,
      sampleRate: this.config.telemetry?.sampleRate,
    };
  }

  telemetryEvent(event: TelemetryUpdateEvent): void {
    this.telemetry?.event(event);
  }

  telemetryWorkerEvent(event: TelemetryWorkerEvent): void {
    this.telemetry?.recorder.worker(event);
  }

  async telemetryPersist(): Promise<void> {
    await this.telemetry?.persist();
  }

  async telemetryFlush(): Promise<TelemetryFlushReport> {
    return (await this.telemetry?.flush()) ?? { sent: 0, setAside: 0, split: 0, pending: 0 };
  }

  /** Counts a load that failed, under its model and version (no backend was chosen). */
  private loadFailed<T>(name: string, version: string | undefined, p: Promise<T>): Promise<T> {
    const t = this.telemetry;
    if (!t) return p;
    return p.catch((err: unknown) => {
      const code = (err as { code?: unknown }).code;
      const s = t.recorder.seriesOf({ model: name, version: version ?? '', variant: '', backend: '' });
      t.recorder.error(s, typeof code === 'string' ? code : 'UNKNOWN');
      throw err;
    });
  }

  private repo(): Updater {
    if (!this.updater) throw new TypeError('Loading a model by name needs createRuntime({ repository })');
    return this.updater;
  }

  async loadNamed(req: NamedLoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo> {
    const ac = new AbortController();
    this.calls.set(req.callId, ac);
    try {
      return await this.loadFailed(req.name, req.version, this.loadNamedInner(req, ac.signal, onProgress));
    } finally {
      this.calls.delete(req.callId);
    }
  }

  /**
   * By name: the active version from the store when there is one (no network), else the
   * version the signed channel names for this device, installed, health-checked and made
   * active. With `version` (the update path): exactly that version, which must be signed.
   */
  private async loadNamedInner(
    req: NamedLoadRequest,
    signal: AbortSignal,
    onProgress?: (p: LoadProgress) => void,
  ): Promise<LoadedModelInfo> {
    const up = this.repo();
    const { name } = req;
    let version = req.version;
    let activate = req.activate;
    if (version === undefined) {
      const active = await this.updateState.active(name);
      if (active && (await this.store.variants(name, active.version)).length > 0) {
        version = active.version;
        activate = false;
      } else {
        const refreshed = await up.refresh();
        if (!refreshed.ok) {
          if (refreshed.offline) {
            throw new NotCachedError(
              `${name} is not installed and the repository cannot be reached: ${refreshed.error.message}`,
              name,
              '',
            );
          }
          throw refreshed.error;
        }
        const plan = await up.plan(name);
        if (!plan) throw new UpdateError(`The channel names no version of ${name} for this device`, name, '');
        version = plan.release.version;
        activate = true;
      }
    }
    const bad = await this.updateState.isBad(name, version);
    if (bad && req.version !== undefined) {
      throw new UpdateError(`${name}@${version} failed its health check here before: ${bad.reason}`, name, version);
    }
    const release = await up.release(name, version);
    if (!release) throw new UpdateError(`${name}@${version} is not in the signed repository metadata`, name, version);
    const storedVariants = await this.store.variants(name, version);
    const installing = storedVariants.length === 0;
    const source = await up.sourceOf(release, signal, { golden: installing });
    // Stored variants first and only, so a version installed offline (or from a bundle) never
    // reaches for the network to try a variant it does not have.
    const usable = source.variants?.filter((v) => storedVariants.includes(v.id)) ?? [];
    if (usable.length > 0) source.variants = usable;
    let info: LoadedModelInfo;
    try {
      info = await this.loadVariant({ callId: req.callId, source, backend: req.backend }, signal, onProgress);
    } catch (err) {
      // U16: a version that downloads intact but will not load or run correctly is marked bad,
      // so it is never retried in a loop. Network and storage trouble is not the model's fault.
      if (installing && (err instanceof BackendError || err instanceof ModelFormatError || err instanceof RunError)) {
        await this.updateState.markBad(name, version, err.message).catch(() => undefined);
        throw new UpdateError(`${name}@${version} is unhealthy on this device: ${err.message}`, name, version, {
          cause: err,
        });
      }
      throw err;
    }
    if (activate) await this.activate(name, version);
    if (this.telemetry && release.reference) this.loadReference(up, release, info);
    return info;
  }

  /**
   * Fetches a version's drift reference in the background; its outputs are summarised from then
   * on. A failure is reported as an error of the series (the model serves regardless).
   */
  private loadReference(up: Updater, release: Release, info: LoadedModelInfo): void {
    const t = this.telemetry!;
    up.reference(release).then(
      (ref) => {
        if (ref) t.recorder.setReference(release.model, release.version, ref);
      },
      (err: unknown) => {
        const code = (err as { code?: unknown }).code;
        const s = this.seriesOf(info);
        if (s) t.recorder.error(s, `REFERENCE_${typeof code === 'string' ? code : 'UNKNOWN'}`);
      },
    );
  }

  async checkUpdates(names: string[]): Promise<UpdateCheck> {
    const up = this.repo();
    const refreshed = await up.refresh();
    const result: UpdateCheck = { plans: [], offline: false, skipped: [], active: {} };
    for (const name of await this.updateState.activeNames()) {
      const a = await this.updateState.active(name);
      if (a) result.active[name] = a.version;
    }
    if (!refreshed.ok) {
      if (refreshed.offline) result.offline = true;
      else {
        const code = (refreshed.error as { code?: string }).code ?? 'UPDATE_FAILED';
        result.refused = { code, message: refreshed.error.message };
      }
      // No install from metadata that did not verify now (U6): the installed models keep serving.
      return result;
    }
    const trusted = await up.trust();
    const wanted = new Set<string>();
    for (const name of new Set([...names, ...(await this.updateState.activeNames())])) {
      const plan = await up.plan(name);
      if (!plan) continue;
      const to = plan.release.version;
      const active = await this.updateState.active(name);
      if (active?.version === to) continue;
      const bad = await this.updateState.isBad(name, to);
      if (bad) {
        result.skipped.push({ name, version: to, reason: bad.reason });
        continue;
      }
      const order = trusted.targets ? modelVersions(trusted.targets, name) : [];
      const p: UpdatePlan = {
        name,
        to,
        rollback: active !== undefined && order.indexOf(to) < order.indexOf(active.version),
        bucket: plan.decision.bucket,
        rolloutBp: plan.decision.channel.rolloutBp,
      };
      if (active) p.from = active.version;
      result.plans.push(p);
      for (const v of plan.release.variants) for (const f of v.files) wanted.add(f.sha256);
    }
    // Downloads in progress that no plan needs any more (the channel moved on) are leftovers.
    for (const partial of await this.partials.list()) {
      if (!wanted.has(partial.sha256)) await this.partials.discard(partial.sha256);
    }
    return result;
  }

  async activate(name: string, version: string): Promise<void> {
    await this.updateState.activate(name, version);
    await this.retain(name).catch(() => undefined);
  }

  /**
   * S6: keeps the `keepVersions` most recently used versions of a model and deletes the rest;
   * the active version, pinned ones and those the channel names are always kept (and count
   * towards the number).
   */
  private async retain(name: string): Promise<void> {
    const keep = this.config.keepVersions ?? 2;
    const active = await this.updateState.active(name);
    const pinned = await this.updateState.pinned(name);
    const lastUsed = new Map<string, number>();
    for (const m of await this.store.list()) {
      if (m.name === name) lastUsed.set(m.version, Math.max(lastUsed.get(m.version) ?? 0, m.lastUsedAt));
    }
    // Versions the channel names (blue-green's other colour, an A/B arm, a shadow) are kept like pins.
    const named = (await this.updater?.channelVersions(name).catch(() => [])) ?? [];
    const kept = new Set([...pinned, ...named, ...(active ? [active.version] : [])].filter((v) => lastUsed.has(v)));
    const byRecency = [...lastUsed.entries()].sort((a, b) => b[1] - a[1]).map(([v]) => v);
    for (const version of byRecency) {
      if (kept.has(version)) continue;
      if (kept.size < keep) kept.add(version);
      else await this.store.delete(name, version);
    }
  }

  async cachePin(name: string, version: string, pinned: boolean): Promise<void> {
    await this.updateState.setPinned(name, version, pinned);
  }

  async cacheExport(name: string, version: string): Promise<Uint8Array> {
    const trusted = await this.repo().trust();
    const [variant] = await this.store.variants(name, version);
    if (variant === undefined) throw new NotCachedError(`${name}@${version} is not stored here`, name, version);
    const release = trusted.targets ? releaseOf(trusted.targets, name, version) : null;
    const signed = release?.variants.find((v) => v.id === variant);
    const hit = await this.store.read(name, version, variant);
    if (!signed || !hit) throw new UpdateError(`${name}@${version} is not in the trusted metadata`, name, version);
    const files: Record<string, Uint8Array> = {};
    for (const f of hit.files) {
      const target = signed.files.find((s) => s.name === f.path);
      if (!target) throw new UpdateError(`${f.path} of ${name}@${version} is not signed`, name, version);
      files[target.path] = f.data;
    }
    const state = trusted.state();
    const metadata: Record<string, Uint8Array> = { [`${trusted.root.version}.root.json`]: utf8(state.root) };
    if (state.timestamp) metadata['timestamp.json'] = utf8(state.timestamp);
    if (state.snapshot && trusted.snapshot)
      metadata[`${trusted.snapshot.version}.snapshot.json`] = utf8(state.snapshot);
    if (state.targets && trusted.targets) metadata[`${trusted.targets.version}.targets.json`] = utf8(state.targets);
    if (state.channels && trusted.channels)
      metadata[`${trusted.channels.version}.channels.json`] = utf8(state.channels);
    const bundle = encodeBundle({ model: name, version, variant, metadata, files });
    return Comlink.transfer(bundle, [bundle.buffer]);
  }

  async cacheImport(bytes: Uint8Array, activate: boolean): Promise<{ name: string; version: string }> {
    const up = this.repo();
    const b = decodeBundle(bytes);
    // The bundle's metadata goes through every trust rule, as if fetched from the repository.
    const refreshed = await up.refresh(async (file, maxLength) => {
      const data = b.metadata[file];
      if (data && data.length > maxLength) throw new TypeError(`${file} is over its cap`);
      return data ?? null;
    });
    // Older than what this device trusts is fine as long as the trusted metadata signs the files.
    if (!refreshed.ok && (refreshed.error as { code?: string }).code !== 'METADATA_ROLLBACK') throw refreshed.error;
    const release = await up.release(b.model, b.version);
    const signed = release?.variants.find((v) => v.id === b.variant);
    if (!signed) throw new UpdateError(`${b.model}@${b.version} is not in the trusted metadata`, b.model, b.version);
    const files = [];
    for (const f of signed.files) {
      const data = b.files[f.path];
      const actual = data ? await sha256Hex(data) : 'missing';
      if (!data || data.length !== f.length || actual !== f.sha256) {
        throw new IntegrityError(`${f.path} in the bundle does not match its signed hash`, f.sha256, actual, f.path);
      }
      files.push({ path: f.name, data, sha256: f.sha256 });
    }
    await this.store.write(b.model, b.version, files, { variant: b.variant });
    if (activate) await this.activate(b.model, b.version);
    return { name: b.model, version: b.version };
  }

  async markBad(name: string, version: string, reason: string): Promise<void> {
    await this.updateState.markBad(name, version, reason);
  }

  cancel(callId: number): void {
    this.calls.get(callId)?.abort();
  }

  private engineConfig(): EngineConfig {
    return { numThreads: this.config.numThreads, wasmPaths: this.config.ortWasmPaths };
  }

  async load(req: LoadRequest, onProgress?: (p: LoadProgress) => void): Promise<LoadedModelInfo> {
    const ac = new AbortController();
    this.calls.set(req.callId, ac);
    try {
      return await this.loadFailed(req.source.name, req.source.version, this.loadInner(req, ac.signal, onProgress));
    } finally {
      this.calls.delete(req.callId);
    }
  }

  private async loadInner(
    req: LoadRequest,
    signal: AbortSignal,
    onProgress?: (p: LoadProgress) => void,
  ): Promise<LoadedModelInfo> {
    if (req.source.variants?.length) return this.loadVariant(req, signal, onProgress);
    const t0 = performance.now();
    const { name, version } = req.source;
    const timings: Partial<LoadTimings> = {};
    const got = await this.obtain(req, '', filesOf(req), req.source.files !== undefined, signal, onProgress, timings);
    const backends: BackendId[] = req.backend ? [req.backend] : this.config.backends;
    const opened = await openModel(got.bytes, backends, this.engineConfig(), registeredEngines(), this.device);
    timings.backendInit = opened.timings.backendInit;
    timings.sessionCreate = opened.timings.sessionCreate;
    await this.keep(req, '', got, opened.session, signal, timings);
    return this.register(
      {
        id: this.nextId++,
        name,
        version,
        backend: opened.session.backend,
        fallbackReason: opened.fallbackReason,
        inputs: opened.session.inputs,
        outputs: opened.session.outputs,
        source: got.source,
        timings: { ...timings, total: performance.now() - t0 },
      },
      opened.session,
      got.bytes,
    );
  }

  private register(info: LoadedModelInfo, session: EngineSession, bytes: ModelBytes): LoadedModelInfo {
    const series = this.seriesOf(info);
    if (series && this.telemetry) {
      const fellBack = info.fallbackReason !== undefined;
      this.telemetry.recorder.load(
        series,
        info.timings.total ?? 0,
        info.source === 'cache' ? 'warm' : 'cold',
        fellBack,
      );
    }
    this.models.set(info.id, { info, session, queue: Promise.resolve(), ranOnce: false, bytes, series });
    return info;
  }

  private seriesOf(info: LoadedModelInfo): Series | undefined {
    return this.telemetry?.recorder.seriesOf({
      model: info.name,
      version: info.version,
      variant: info.variant ?? '',
      backend: info.backend,
    });
  }

  /**
   * The bytes of a version (or one variant of it): from the store when they are there and still
   * match their recorded hashes, else downloaded and verified, companions included.
   */
  private async obtain(
    req: LoadRequest,
    variant: string,
    wanted: ModelFile[],
    listed: boolean,
    signal: AbortSignal,
    onProgress: ((p: LoadProgress) => void) | undefined,
    timings: Partial<LoadTimings>,
  ): Promise<Obtained> {
    const { name, version } = req.source;
    const files = [...wanted];
    let stored: StoredBytes[] | undefined;
    try {
      const hit = await this.store.read(name, version, variant);
      if (hit) {
        stored = hit.files;
        timings.read = (timings.read ?? 0) + hit.timings.read;
        timings.verify = (timings.verify ?? 0) + hit.timings.verify;
      }
    } catch (err) {
      // S1: stored bytes that no longer match their hash are never used; drop them and fetch anew.
      if (!(err instanceof IntegrityError)) throw err;
      await this.store.delete(name, version, variant);
    }
    if (stored && !sameFiles(stored, files, listed)) stored = undefined;
    if (signal.aborted) throw new AbortError();
    let source: LoadedModelInfo['source'] = 'cache';
    if (!stored) {
      source = 'network';
      const td = performance.now();
      const verifiedBefore = timings.verify ?? 0;
      stored = await this.fetchAll(req, files, signal, onProgress, timings);
      const extra = listed ? [] : companionsOf(stored[0]!.data, files[0]!.url);
      if (extra.length) {
        stored = [...stored, ...(await this.fetchAll(req, extra, signal, onProgress, timings))];
        files.push(...extra);
      }
      timings.download = (timings.download ?? 0) + performance.now() - td - ((timings.verify ?? 0) - verifiedBefore);
    } else {
      void this.store.touch(name, version, variant).catch(() => undefined);
    }
    if (signal.aborted) throw new AbortError();
    const [graph, ...external] = stored;
    return {
      stored,
      files,
      source,
      bytes: { graph: graph!.data, external: external.map((f) => ({ path: f.path, data: f.data })) },
    };
  }

  /**
   * Stores downloaded bytes once their session has opened: bytes that download intact but are
   * no model the backend can run must not come back from the store on the next load. On any
   * failure the session is disposed.
   */
  private async keep(
    req: LoadRequest,
    variant: string,
    got: Obtained,
    session: EngineSession,
    signal: AbortSignal,
    timings: Partial<LoadTimings>,
  ): Promise<void> {
    try {
      if (signal.aborted) throw new AbortError();
      if (got.source !== 'network') return;
      const tw = performance.now();
      const withHashes = await Promise.all(
        got.stored.map(async (f, i) => ({ ...f, sha256: got.files[i]!.sha256 ?? (await sha256Hex(f.data)) })),
      );
      await this.store.write(req.source.name, req.source.version, withHashes, { variant });
      timings.write = performance.now() - tw;
    } catch (err) {
      await session.dispose();
      throw err;
    }
  }

  /**
   * Loads a version that lists variants: reuses the choice made earlier on this device when it
   * is still valid for it, else tries the candidates (golden check, timed runs) and keeps the
   * fastest correct one. Only the winner is stored.
   */
  private async loadVariant(
    req: LoadRequest,
    signal: AbortSignal,
    onProgress?: (p: LoadProgress) => void,
  ): Promise<LoadedModelInfo> {
    const t0 = performance.now();
    const { name, version, variants = [], golden } = req.source;
    const timings: Partial<LoadTimings> = {};
    const caps = await this.deviceCaps(req.backend ? [req.backend] : this.config.backends);
    const byId = new Map(variants.map((v) => [v.id, v]));
    const obtained = new Map<string, Obtained>();
    const open = async (variant: ModelVariant, backend: BackendId) => {
      let got = obtained.get(variant.id);
      if (!got) {
        got = await this.obtain(req, variant.id, variant.files, variant.files.length > 1, signal, onProgress, timings);
        obtained.set(variant.id, got);
      }
      return (await openModel(got.bytes, [backend], this.engineConfig(), registeredEngines(), this.device)).session;
    };

    let chosen: Chosen | undefined;
    const previous = await this.store.choice(name, version);
    const again = previous && previous.deviceKey === caps.key ? byId.get(previous.variant) : undefined;
    if (previous && again && caps.backends.includes(previous.backend)) {
      try {
        chosen = {
          variant: again,
          session: await open(again, previous.backend),
          choice: { ...previous, cached: true },
        };
      } catch {
        // The stored choice no longer works here (evicted, broken): choose anew.
      }
    }
    if (!chosen) {
      const { list, skipped } = candidates(variants, caps, new Map());
      chosen = await chooseVariant(list, skipped, open, golden, caps, {
        runs: VARIANT_TIMED_RUNS,
        budgetMs: VARIANT_BUDGET_MS,
        now: () => performance.now(),
      });
      await this.store.saveChoice(name, version, chosen.choice);
    }
    const got = obtained.get(chosen.variant.id)!;
    await this.keep(req, chosen.variant.id, got, chosen.session, signal, timings);
    return this.register(
      {
        id: this.nextId++,
        name,
        version,
        backend: chosen.session.backend,
        inputs: chosen.session.inputs,
        outputs: chosen.session.outputs,
        source: got.source,
        timings: { ...timings, total: performance.now() - t0 },
        variant: chosen.variant.id,
        choice: chosen.choice,
      },
      chosen.session,
      got.bytes,
    );
  }

  /**
   * The backends this device runs, its WebGPU features, and the key a variant choice is cached
   * under: browser major version, GPU adapter and engine versions. A choice is remade when any
   * of them changes (a browser update can fix or break a WebGPU path).
   */
  private async deviceCaps(preferred: BackendId[]): Promise<DeviceCaps> {
    const engines = registeredEngines();
    const backends: BackendId[] = [];
    for (const b of preferred) if ((await this.device.missing(b)) === null) backends.push(b);
    let gpuFeatures = new Set<string>();
    let gpu = 'none';
    const adapter = backends.includes('webgpu') ? await this.device.adapter() : null;
    if (adapter) {
      gpuFeatures = new Set(adapter.features);
      const info = adapter.info ?? {};
      gpu = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join('/') || 'unknown';
    }
    const ua = (globalThis.navigator as { userAgent?: string } | undefined)?.userAgent ?? '';
    const browser = /(Firefox|Edg|Chrome|Version)\/(\d+)/.exec(ua)?.slice(1, 3).join(' ') ?? 'unknown';
    const versions = engines.map((e) => e.version ?? e.name).join(', ');
    return { backends, gpuFeatures, key: `${browser} | gpu ${gpu} | ${versions}` };
  }

  /** Downloads every file, checking each against its expected hash as it completes (U1). */
  private async fetchAll(
    req: LoadRequest,
    files: ModelFile[],
    signal: AbortSignal,
    onProgress: ((p: LoadProgress) => void) | undefined,
    timings: Partial<LoadTimings>,
  ): Promise<StoredBytes[]> {
    const loaded = new Array<number>(files.length).fill(0);
    const totals = new Array<number | null>(files.length).fill(null);
    let lastReport = 0;
    const report = (force: boolean) => {
      if (!onProgress) return;
      const now = performance.now();
      // Comlink callbacks are a postMessage each; a few per frame is plenty for a progress bar.
      if (!force && now - lastReport < 50) return;
      lastReport = now;
      const known = totals.every((t) => t !== null);
      onProgress({
        loaded: loaded.reduce((a, b) => a + b, 0),
        total: known ? totals.reduce<number>((a, b) => a + (b ?? 0), 0) : null,
      });
    };
    let verify = 0;
    // Signed lengths are known before a byte is fetched: a model that cannot fit is refused
    // up front with the origin's figures rather than after a long download.
    const declared = files.reduce((n, f) => n + (f.bytes ?? 0), 0);
    if (declared > 0) await this.store.assertRoom(declared, `${req.source.name}@${req.source.version}`);
    const out = await Promise.all(
      files.map(async (f, i) => {
        // A hash mismatch may come from the HTTP cache rather than the server (an immutable
        // blob URL cached while a proxy tampered with it): fetch once more past the cache before
        // calling the bytes bad, so a poisoned cache entry cannot block a version for good.
        const { chunks, bytes, sha256 } = f;
        const signed = chunks !== undefined && bytes !== undefined && sha256 !== undefined;
        for (const cache of ['default', 'reload'] as const) {
          let data: Uint8Array;
          try {
            data =
              chunks && bytes !== undefined && sha256
                ? await downloadResumable(
                    { url: f.url, sha256, length: bytes, chunkSize: chunks.size, chunks: chunks.sha256 },
                    this.partials,
                    signal,
                    (n, total) => {
                      loaded[i] = n;
                      totals[i] = total;
                      report(false);
                    },
                    { ...DOWNLOAD_DEFAULTS, ...this.config.download },
                  )
                : await download(
                    f.url,
                    signal,
                    (n, total) => {
                      loaded[i] = n;
                      totals[i] = total;
                      report(false);
                    },
                    f.bytes,
                    cache,
                  );
          } catch (err) {
            if (err instanceof Error && 'status' in err && (err as { status: number }).status === 0) {
              throw new NotCachedError(
                `${req.source.name}@${req.source.version} is not cached and cannot be downloaded: ${err.message}`,
                req.source.name,
                req.source.version,
              );
            }
            // Resumable downloads bypass the HTTP cache already: a mismatch there is final.
            if (err instanceof IntegrityError && cache === 'default' && !signed) continue;
            throw err;
          }
          totals[i] = data.length;
          loaded[i] = data.length;
          if (f.sha256) {
            const tv = performance.now();
            const actual = await sha256Hex(data);
            verify += performance.now() - tv;
            if (actual !== f.sha256.toLowerCase()) {
              if (cache === 'default') continue;
              throw new IntegrityError(
                `${f.url} does not match the expected SHA-256 of ${req.source.name}@${req.source.version}`,
                f.sha256.toLowerCase(),
                actual,
                f.path,
              );
            }
          }
          return { path: f.path, data };
        }
        throw new IntegrityError(`${f.url} could not be verified`, f.sha256 ?? '', '', f.path);
      }),
    );
    report(true);
    timings.verify = verify;
    return out;
  }

  async run(req: RunRequest): Promise<RunResult> {
    const model = this.models.get(req.modelId);
    if (!model) throw new DisposedError(`Model ${req.modelId} is not loaded (disposed?)`);
    const ac = new AbortController();
    this.calls.set(req.callId, ac);
    const tap = this.taps.get(req.modelId);
    let liveMs = 0;
    const turn = model.queue.then(async (): Promise<RunResult> => {
      if (ac.signal.aborted) throw new AbortError();
      if (!this.models.has(req.modelId)) throw new DisposedError(`Model ${model.info.name} was disposed`);
      // Every run is counted; the sample decision (made once) says whether it is also timed and
      // binned for drift. A run not sampled costs a branch and an increment.
      const series = this.telemetry ? model.series : undefined;
      const recorder = this.telemetry?.recorder;
      const timed = series !== undefined && recorder !== undefined && recorder.sampled();
      const t0 = timed || tap ? performance.now() : 0;
      try {
        validateFeeds(req.feeds, model.info.inputs, this.config.maxInputBytes);
        let result: RunResult;
        try {
          const outputs = await model.session.run(req.feeds);
          if (tap) liveMs = performance.now() - t0;
          model.ranOnce = true;
          result = { outputs };
          if (model.announce) {
            // The first result since the model moved to another backend tells the page.
            result.backend = model.info.backend;
            if (model.info.fallbackReason) result.fallbackReason = model.info.fallbackReason;
            model.announce = false;
          }
        } catch (err) {
          const lost = model.session.lost?.();
          if (lost !== undefined) {
            // R5: this run fails (never zeros from a lost device); the model moves to WASM for
            // the next ones, which say so.
            await this.reopenOnWasm(model, `webgpu: the device was lost (${lost})`);
            throw err;
          }
          if (model.ranOnce || model.session.backend === 'wasm') throw err;
          result = await this.fallBackAndRun(model, req, err);
        }
        if (series && recorder) {
          if (timed) {
            // A sampled run that returned NaN or ±Infinity is a failed inference for the fleet's
            // health (a canary's error rate), though the app still gets what the model said.
            if (nonFinite(result.outputs)) recorder.error(series, NONFINITE_OUTPUT);
            else {
              recorder.run(series, performance.now() - t0);
              recorder.tensors(series, result.outputs, req.feeds);
            }
          } else recorder.run(series);
        }
        return result;
      } catch (err) {
        if (series && recorder) {
          const code = (err as { code?: unknown }).code;
          recorder.error(series, typeof code === 'string' ? code : 'UNKNOWN');
        }
        throw err;
      }
    });
    model.queue = turn.catch(() => undefined);
    try {
      const result = await turn;
      tap?.offer(req.feeds, result.outputs, liveMs);
      // Outputs are always transferred: the worker has no further use for them.
      return Comlink.transfer(result, tensorBuffers(result.outputs));
    } finally {
      this.calls.delete(req.callId);
    }
  }

  async runFrame(req: FrameRequest): Promise<FrameResult> {
    const t0 = performance.now();
    // Closes the frame whatever happens: a bitmap holds a video frame's memory until closed.
    const feeds = { [req.preprocess.input]: this.frames.tensor(req.frame, req.preprocess) };
    const t1 = performance.now();
    const result = await this.run({ callId: req.callId, modelId: req.modelId, feeds });
    const framed: FrameResult = { ...result, preprocessMs: t1 - t0, runMs: performance.now() - t1 };
    return Comlink.transfer(framed, tensorBuffers(framed.outputs));
  }

  /**
   * A WebGPU session can pass its probe and still fail its first real run. Rather than fail the
   * app's call, reopen the model on WASM, run there, and say so.
   */
  private async fallBackAndRun(model: LiveModel, req: RunRequest, cause: unknown): Promise<RunResult> {
    const reason = `${model.session.backend}: first run failed: ${cause instanceof Error ? cause.message : String(cause)}`;
    await this.reopenOnWasm(model, reason);
    model.announce = false;
    const outputs = await model.session.run(req.feeds);
    model.ranOnce = true;
    return { outputs, backend: 'wasm', fallbackReason: reason };
  }

  /** Reopens a model on WASM from its bytes (its backend failed), recorded as a fallback. */
  private async reopenOnWasm(model: LiveModel, reason: string): Promise<void> {
    const opened = await openModel(model.bytes, ['wasm'], this.engineConfig(), registeredEngines(), this.device);
    await model.session.dispose().catch(() => undefined);
    model.session = opened.session;
    model.info = { ...model.info, backend: 'wasm', fallbackReason: reason };
    model.announce = true;
    if (model.series && this.telemetry) {
      this.telemetry.recorder.fallback(model.series);
      model.series = this.seriesOf(model.info);
    }
  }

  async warm(modelId: number, shapes: InputShapes): Promise<void> {
    const model = this.models.get(modelId);
    if (!model) throw new DisposedError(`Model ${modelId} is not loaded (disposed?)`);
    const feeds: TensorMap = {};
    for (const [name, { type, dims }] of Object.entries(shapes)) feeds[name] = zeros(type, dims);
    // In the model's queue like any run; recorded nowhere (it is not the app's run).
    const turn = model.queue.then(() => model.session.run(feeds));
    model.queue = turn.catch(() => undefined);
    await turn;
    model.ranOnce = true;
  }

  async shadowPlan(name: string): Promise<ShadowPlan | null> {
    // A shadow only reports (its figures are telemetry): without telemetry it would run for nothing.
    if (!this.telemetry) return null;
    const plan = this.updater ? await this.updater.plan(name) : null;
    const shadow = plan?.decision.shadow;
    return shadow ? { name, version: shadow.version, sampleBp: shadow.sampleBp } : null;
  }

  shadowTap(req: ShadowTapRequest): void {
    const model = this.models.get(req.modelId);
    if (!model) throw new DisposedError(`Model ${req.modelId} is not loaded (disposed?)`);
    this.shadowUntap(req.modelId);
    const key = { model: model.info.name, version: req.shadowVersion, liveVersion: model.info.version };
    this.taps.set(req.modelId, new ShadowTap(req.port as MessagePort, req.sampleBp, key, this.telemetry?.shadow));
  }

  shadowUntap(modelId: number): void {
    this.taps.get(modelId)?.close();
    this.taps.delete(modelId);
  }

  async shadowServe(req: ShadowServeRequest, onProgress?: (p: LoadProgress) => void): Promise<void> {
    // The live worker records the shadow's figures; this worker's own (its load of the shadow
    // version) would report the device as running a version it only tries.
    this.telemetry?.stop();
    this.telemetry = undefined;
    // One WASM thread: the shadow must leave the cores to the live model (its threads are set when
    // the engine starts, which in this fresh worker is the shadow's own load).
    this.config = { ...this.config, numThreads: 1 };
    const { name, version } = req;
    const key = `${name}@${version}`;
    let loading = this.shadowLoads.get(key);
    if (!loading) {
      loading = this.loadNamed({ callId: req.callId, name, version, activate: false }, onProgress);
      this.shadowLoads.set(key, loading);
      loading.catch(() => this.shadowLoads.delete(key));
    }
    const model = this.models.get((await loading).id);
    if (!model) throw new DisposedError(`The shadow ${key} was disposed`);
    const targets = (await this.repo().trust()).targets;
    const spec = targets ? compareSpecOf(targets, name, version) : null;
    if (!spec) throw new UpdateError(`${key} has no signed comparison to run as a shadow`, name, version);
    const run = (feeds: TensorMap) => {
      const turn = model.queue.then(() => model.session.run(feeds));
      model.queue = turn.catch(() => undefined);
      return turn;
    };
    const describe = () => ({ variant: model.info.variant ?? '', backend: model.session.backend });
    this.shadowServers.push(new ShadowServer(req.port as MessagePort, spec, run, describe));
  }

  async dispose(modelId: number): Promise<void> {
    this.shadowUntap(modelId);
    const model = this.models.get(modelId);
    if (!model) return;
    this.models.delete(modelId);
    await model.queue;
    await model.session.dispose();
  }

  cacheList() {
    return this.store.list();
  }

  cacheDelete(name: string, version: string) {
    return this.store.delete(name, version);
  }

  cacheUsage() {
    return this.store.usage();
  }
}

/** Files the graph's engine says belong with it (TF.js weight shards), when it says any. */
function companionsOf(graph: Uint8Array, url: string): ModelFile[] {
  const engine = registeredEngines().find((e) => e.accepts({ graph, external: [] }));
  return engine?.companions?.(graph, url) ?? [];
}

/**
 * Whether the stored copy is the model the source describes: the same files when the source
 * lists them, else the same graph (its companions were found by the engine when it was stored).
 */
function sameFiles(stored: StoredBytes[], files: ModelFile[], listed: boolean): boolean {
  if (!listed) return stored[0]?.path === files[0]?.path;
  return stored.length === files.length && stored.every((s, i) => s.path === files[i]!.path);
}
