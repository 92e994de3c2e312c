import {
  BackendError,
  OutpostError,
  type BackendId,
  type EngineSession,
  type GoldenCheck,
  type ModelVariant,
  type TensorMap,
  type VariantChoice,
  type VariantTrial,
} from '@outpost/core';
import { allFinite, copyFeeds, syntheticFeeds } from './feeds.js';

/** What a candidate trial needs from the worker: open a variant on a backend. */
export type OpenVariant = (variant: ModelVariant, backend: BackendId) => Promise<EngineSession>;

/** What the device offers, as far as the choice depends on it. */
export interface DeviceCaps {
  /** Backends the device can run, in the app's order of preference. */
  backends: BackendId[];
  /** WebGPU adapter features (empty without WebGPU). */
  gpuFeatures: ReadonlySet<string>;
  /** Identifies the device for caching the choice: browser major version, GPU adapter, engines. */
  key: string;
}

/** Limits of a choice. */
export interface ChoiceOptions {
  /** Timed runs per candidate after one warm-up run. */
  runs: number;
  /** Once this many milliseconds are spent, untried candidates are skipped. */
  budgetMs: number;
  now: () => number;
}

/** The choice, and the session of the winner, still open. */
export interface Chosen {
  variant: ModelVariant;
  session: EngineSession;
  choice: VariantChoice;
}

/** Candidate (variant, backend) pairs the device can run, cheapest first (smallest download). */
export function candidates(variants: readonly ModelVariant[], caps: DeviceCaps, sizes: ReadonlyMap<string, number>) {
  const out: { variant: ModelVariant; backend: BackendId }[] = [];
  const skipped: VariantTrial[] = [];
  for (const variant of variants) {
    for (const backend of caps.backends) {
      if (variant.backends && !variant.backends.includes(backend)) continue;
      const missing = (variant.requires ?? []).filter((f) => backend !== 'webgpu' || !caps.gpuFeatures.has(f));
      if (missing.length) {
        skipped.push({ variant: variant.id, backend, ok: false, reason: `needs ${missing.join(', ')}` });
        continue;
      }
      out.push({ variant, backend });
    }
  }
  const size = (v: ModelVariant) => sizes.get(v.id) ?? Number.MAX_SAFE_INTEGER;
  out.sort((a, b) => size(a.variant) - size(b.variant));
  return { list: out, skipped };
}

/** Largest absolute difference between two sets of outputs; Infinity when shapes differ or a value is not finite. */
export function maxAbsDiff(actual: TensorMap, expected: TensorMap): number {
  let max = 0;
  for (const [name, want] of Object.entries(expected)) {
    const got = actual[name];
    if (!got || got.data.length !== want.data.length) return Infinity;
    for (let i = 0; i < want.data.length; i++) {
      const d = Math.abs(Number(got.data[i]) - Number(want.data[i]));
      if (!Number.isFinite(d)) return Infinity;
      if (d > max) max = d;
    }
  }
  return max;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Failures of the network or the store, not of the variant. */
const TRANSPORT_CODES = new Set(['INTEGRITY', 'DOWNLOAD_FAILED', 'NOT_CACHED', 'ABORTED', 'QUOTA_EXCEEDED', 'STORAGE']);

function isTransport(err: unknown): boolean {
  return err instanceof OutpostError && TRANSPORT_CODES.has(err.code);
}

/**
 * Tries each candidate: opens it, checks it against the golden outputs (a variant that is fast
 * but wrong on this device must never win: onnxruntime has shipped wrong INT8 results on
 * WebGPU), times a few runs, and keeps the fastest correct one. Candidates are tried cheapest
 * first until the time budget is spent; at least one is always tried.
 */
export async function chooseVariant(
  list: { variant: ModelVariant; backend: BackendId }[],
  skipped: VariantTrial[],
  open: OpenVariant,
  golden: GoldenCheck | undefined,
  caps: DeviceCaps,
  options: ChoiceOptions,
): Promise<Chosen> {
  const trials: VariantTrial[] = [...skipped];
  const start = options.now();
  let best: { variant: ModelVariant; session: EngineSession; ms: number; backend: BackendId } | undefined;
  for (const { variant, backend } of list) {
    if (best && options.now() - start > options.budgetMs) {
      trials.push({ variant: variant.id, backend, ok: false, reason: 'not tried: time budget spent' });
      continue;
    }
    let session: EngineSession | undefined;
    try {
      session = await open(variant, backend);
      const feeds = golden?.inputs ?? syntheticFeeds(session.inputs);
      const first = await session.run(copyFeeds(feeds));
      let diff: number | undefined;
      const nonFinite = allFinite(first);
      if (nonFinite !== null) {
        // NaN or Infinity is never a correct build's answer (U16).
        trials.push({ variant: variant.id, backend, ok: false, reason: `non-finite output "${nonFinite}"` });
        await session.dispose();
        continue;
      }
      if (golden) {
        diff = maxAbsDiff(first, golden.outputs);
        if (!(diff <= golden.tolerance)) {
          trials.push({
            variant: variant.id,
            backend,
            ok: false,
            maxAbsDiff: diff,
            reason: `golden outputs differ by ${diff}`,
          });
          await session.dispose();
          continue;
        }
      }
      const times: number[] = [];
      for (let i = 0; i < options.runs; i++) {
        const input = copyFeeds(feeds);
        const t0 = options.now();
        await session.run(input);
        times.push(options.now() - t0);
      }
      const ms = median(times);
      trials.push({ variant: variant.id, backend, ok: true, medianMs: ms, maxAbsDiff: diff });
      if (!best || ms < best.ms) {
        if (best) await best.session.dispose();
        best = { variant, session, ms, backend };
      } else {
        await session.dispose();
      }
    } catch (err) {
      // Bytes that did not arrive intact, or storage that failed, say nothing about the variant:
      // the whole load fails with that error rather than choosing on a broken network.
      if (isTransport(err)) {
        await session?.dispose().catch(() => undefined);
        if (best) await best.session.dispose().catch(() => undefined);
        throw err;
      }
      trials.push({
        variant: variant.id,
        backend,
        ok: false,
        reason: err instanceof Error ? err.message : String(err),
      });
      await session?.dispose().catch(() => undefined);
    }
  }
  if (!best) {
    const attempts = trials.map((t) => ({ backend: `${t.variant}/${t.backend}`, reason: t.reason ?? 'failed' }));
    throw new BackendError(
      `No variant runs correctly on this device: ${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`,
      attempts,
    );
  }
  return {
    variant: best.variant,
    session: best.session,
    choice: {
      variant: best.variant.id,
      backend: best.backend,
      trials,
      deviceKey: caps.key,
      decidedAt: Date.now(),
      cached: false,
    },
  };
}
