import * as ort from 'onnxruntime-web/wasm';

/** A float32 tensor, as onnxruntime users know it. */
export interface FloatTensor {
  type: 'float32';
  data: Float32Array;
  dims: number[];
}

/** One set of model inputs, by input name. */
export type Feeds = Record<string, FloatTensor>;

/** Outputs of one run, by output name. */
export type Outputs = Record<string, FloatTensor>;

// One thread: Node has no worker threads for ORT's WASM, and timings must be comparable.
ort.env.wasm.numThreads = 1;

/** An onnxruntime-web WASM session over model bytes. */
export class Session {
  private constructor(private readonly session: ort.InferenceSession) {}

  /** Opens a session on the WASM backend, with all graph optimisations (QDQ fusion included). */
  static async open(model: Uint8Array): Promise<Session> {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
    return new Session(session);
  }

  /** The model's input names. */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** The model's output names. */
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs once and returns the float32 outputs (others are skipped). */
  async run(feeds: Feeds, fetches?: readonly string[]): Promise<Outputs> {
    const input: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) input[name] = new ort.Tensor('float32', t.data, t.dims);
    const out = fetches ? await this.session.run(input, [...fetches]) : await this.session.run(input);
    const result: Outputs = {};
    for (const [name, t] of Object.entries(out)) {
      if (t.type === 'float32') result[name] = { type: 'float32', data: t.data as Float32Array, dims: [...t.dims] };
      t.dispose();
    }
    return result;
  }

  /** Median wall time of `runs` runs after `warmup` runs, in milliseconds. */
  async time(feeds: Feeds, runs: number, warmup = 3): Promise<number> {
    for (let i = 0; i < warmup; i++) await this.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await this.run(feeds);
      times.push(performance.now() - t0);
    }
    return median(times);
  }

  /** Releases the session. */
  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Times of two models measured alternately, run by run: the 25th percentile of each one's runs,
 * in milliseconds of this process's CPU time. Interference only ever adds time, and the lower
 * quartile was the steadiest statistic on a loaded machine (identical models within 1 %). ORT's WASM backend runs on this thread (1 thread), so CPU time is the
 * work a run takes; unlike wall time it does not count waiting while other processes use the
 * cores (wall times of two identical models differed by 2x at load average 5 on 2 cores),
 * and alternating makes the remaining interference (caches) hit both alike.
 */
export async function timeInterleaved(
  a: Uint8Array,
  b: Uint8Array,
  feeds: Feeds,
  runs: number,
  warmup = 3,
): Promise<[number, number]> {
  const sa = await Session.open(a);
  const sb = await Session.open(b);
  try {
    for (let i = 0; i < warmup; i++) {
      await sa.run(feeds);
      await sb.run(feeds);
    }
    const ta: number[] = [];
    const tb: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so neither always runs on a warmer cache.
      for (const [s, t] of i % 2
        ? ([
            [sb, tb],
            [sa, ta],
          ] as const)
        : ([
            [sa, ta],
            [sb, tb],
          ] as const)) {
        const c0 = process.cpuUsage();
        await s.run(feeds);
        const c = process.cpuUsage(c0);
        t.push((c.user + c.system) / 1000);
      }
    }
    return [quantile(ta, 0.25), quantile(tb, 0.25)];
  } finally {
    await sa.release();
    await sb.release();
  }
}

/** The `q`-quantile (0…1, nearest rank below) of a non-empty list. */
export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Median of a non-empty list. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Runs `model` over every feed, opening and releasing one session. */
export async function runAll(
  model: Uint8Array,
  feeds: readonly Feeds[],
  fetches?: readonly string[],
): Promise<Outputs[]> {
  const session = await Session.open(model);
  try {
    const out: Outputs[] = [];
    for (const f of feeds) out.push(await session.run(f, fetches));
    return out;
  } finally {
    await session.release();
  }
}
