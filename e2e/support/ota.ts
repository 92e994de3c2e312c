import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { expect, test, type Page } from '@playwright/test';
import onnxProto from 'onnx-proto';
import { clearStore, openHarness } from '../helpers.js';
import { TestRepo } from './test-repo.js';

// Shared by the OTA specs: the models they publish and the page-side calls they make.

const { onnx } = onnxProto;
const root = resolve(import.meta.dirname, '../..');
const DIGITS = new Uint8Array(await readFile(join(root, 'models/digits/digits.onnx')));
export const SAMPLE = JSON.parse(await readFile(join(root, 'models/digits/sample.json'), 'utf8')) as {
  samples: { input: number[]; logits: number[]; label: number }[];
};
export const s0 = SAMPLE.samples[0]!;
export const GOLDEN = {
  inputs: { x: { type: 'float32' as const, data: Float32Array.from(s0.input), dims: [1, 1, 28, 28] } },
  outputs: { logits: { type: 'float32' as const, data: Float32Array.from(s0.logits), dims: [1, 10] } },
  tolerance: 1e-3,
};

/** The digits model with another doc string: other bytes, same answers (a new release). */
export function rebuilt(doc: string, edit?: (m: onnxProto.onnx.ModelProto) => void): Uint8Array {
  const m = onnx.ModelProto.decode(DIGITS);
  m.docString = doc;
  edit?.(m);
  return onnx.ModelProto.encode(m).finish();
}

/** Every weight of the largest initializer set to NaN: loads, runs, answers NaN. */
export const nanWeights = (m: onnxProto.onnx.ModelProto) => {
  const big = [...m.graph!.initializer!].sort((a, b) => (b.rawData?.length ?? 0) - (a.rawData?.length ?? 0))[0]!;
  const f = new Float32Array(big.rawData!.length / 4).fill(NaN);
  big.rawData = new Uint8Array(f.buffer);
};

/** Wrong weights: still a sound model, but it misses the golden output. */
export const wrongWeights = (m: onnxProto.onnx.ModelProto) => {
  const big = [...m.graph!.initializer!].sort((a, b) => (b.rawData?.length ?? 0) - (a.rawData?.length ?? 0))[0]!;
  const raw = new Uint8Array(big.rawData!);
  raw.fill(0x3c, 0, 4000);
  big.rawData = raw;
};

export const fp32 = (bytes: Uint8Array) => ({
  variant: 'fp32',
  file: 'digits.onnx',
  format: 'onnx' as const,
  primary: true,
  bytes,
});

/**
 * The hooks of every spec against a test repository: before each test a fresh {@link TestRepo},
 * the harness opened with an empty store and its /repo proxied to that repository (told to `set`);
 * after each, the repository removed.
 */
export function eachTestRepo(set: (repo: TestRepo) => void): void {
  let repo: TestRepo | undefined;
  test.beforeEach(async ({ page }) => {
    repo = await TestRepo.create();
    set(repo);
    await openHarness(page);
    await clearStore(page);
    await proxy(page, repo);
  });
  test.afterEach(async () => {
    await repo?.dispose();
    repo = undefined;
  });
}

/** Points the harness proxy at the repository, with faults. */
export async function proxy(page: Page, repo: TestRepo, faults: Record<string, unknown> = {}) {
  const res = await page.request.post('/__repo', { data: { target: repo.url, faults } });
  expect(res.ok()).toBe(true);
}

/** Repository paths the page requested since the last {@link proxy}. */
export async function repoLog(page: Page): Promise<string[]> {
  return (await (await page.request.get('/__repo')).json()) as string[];
}

/** Starts a runtime on the page with the repository's root, recording update events. */
export async function start(page: Page, repo: TestRepo, extra: Record<string, unknown> = {}) {
  await page.evaluate(
    async ({ trustedRoot, extra }) => {
      const w = window as any;
      w.events = [];
      w.rt = await window.outpost.createRuntime({
        repository: { url: '/repo', trustedRoot },
        backends: ['wasm'],
        updates: { checkEvery: 0, activate: 'now', ...(extra.updates as object) },
        ...(extra.supervision ? { supervision: extra.supervision } : {}),
        now: () => w.fakeNow ?? Date.now(),
      });
      for (const e of ['available', 'downloaded', 'activated', 'rolled-back', 'stale-metadata', 'error']) {
        w.rt.updates.on(e, (d: any) =>
          w.events.push({
            type: e,
            ...d,
            error: d?.error ? { name: d.error.name, code: d.error.code, message: d.error.message } : undefined,
          }),
        );
      }
    },
    { trustedRoot: repo.trustedRoot, extra },
  );
}

/** Loads digits by name and runs the first sample: version, source, predicted digit. */
export async function loadDigits(page: Page) {
  return page.evaluate(async (input) => {
    const w = window as any;
    w.model = await w.rt.load('digits');
    const out = await w.model.run({ x: { type: 'float32', data: Float32Array.from(input), dims: [1, 1, 28, 28] } });
    const logits = [...(out.logits.data as Float32Array)];
    return { version: w.model.version, source: w.model.source, digit: logits.indexOf(Math.max(...logits)) };
  }, s0.input);
}

/** Runs one update check on the page: its result, the events it raised, the running version. */
export const check = (page: Page) =>
  page.evaluate(async () => {
    const w = window as any;
    w.events = [];
    const result = await w.rt.updates.check();
    return { result, events: w.events as any[], version: w.model?.version as string | undefined };
  });
