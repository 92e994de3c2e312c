import { expect, test, type Page, type Worker } from '@playwright/test';
import onnxProto from 'onnx-proto';
import { clearStore, openHarness, spin, workersNamed } from './helpers.js';

// R4: worker supervision in Chromium. A worker that crashes, or hangs in a run past the
// supervision timeout, is replaced: pending calls reject with a WorkerError, a new worker starts
// and the model is reloaded from the store (no download), later calls work, and each restart is
// told to rt.on('error') and to telemetry. After maxRestarts in the window the breaker opens.

test.beforeEach(async ({ page }) => {
  await openHarness(page);
  await clearStore(page);
});

/** The Outpost worker Chromium runs now (other than `not`), once there is one. */
async function outpostWorker(page: Page, not?: Worker): Promise<Worker> {
  let found: Worker | undefined;
  await expect
    .poll(
      async () => {
        found = (await workersNamed(page, 'outpost')).filter((w) => w !== not).at(-1);
        return found !== undefined;
      },
      { timeout: 15_000 },
    )
    .toBe(true);
  return found!;
}

interface Outcome {
  ok: boolean;
  top?: number;
  name?: string;
  code?: string;
  message?: string;
}

/** Starts a runtime with digits loaded and a run helper, on the page. */
async function start(page: Page, supervision: Record<string, unknown>): Promise<void> {
  await page.evaluate(async (supervision) => {
    const w = window as unknown as Record<string, unknown>;
    const errors: { source: string; name: string; code?: string; message: string }[] = [];
    const rt = await window.outpost.createRuntime({
      backends: ['wasm'],
      supervision,
      telemetry: { endpoint: '/nowhere', flushEvery: 0 },
    });
    rt.on('error', (e) => {
      const err = e.error as Error & { code?: string };
      errors.push({ source: e.source, name: err.name, code: err.code, message: err.message });
    });
    const model = await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' });
    const sample = ((await (await fetch('/models/digits-sample.json')).json()) as { samples: { input: number[] }[] })
      .samples[0]!;
    w.rt = rt;
    w.errors = errors;
    w.runOnce = async (): Promise<Outcome> => {
      try {
        const out = await model.run({
          x: { type: 'float32', data: Float32Array.from(sample.input), dims: [1, 1, 28, 28] },
        });
        const logits = Array.from(out.logits!.data as Float32Array);
        return { ok: true, top: logits.indexOf(Math.max(...logits)) };
      } catch (e) {
        const err = e as Error & { code?: string };
        return { ok: false, name: err.name, code: err.code, message: err.message };
      }
    };
  }, supervision);
}

const runOnce = (page: Page) =>
  page.evaluate(() => (window as unknown as { runOnce: () => Promise<Outcome> }).runOnce());
const errors = (page: Page) =>
  page.evaluate(
    () => (window as unknown as { errors: { source: string; name: string; code?: string; message: string }[] }).errors,
  );

test('R4: a crashed worker is replaced and the model reloaded from the store; later runs work', async ({ page }) => {
  await start(page, { runTimeout: '10s' });
  const first = await runOnce(page);
  expect(first).toMatchObject({ ok: true });
  const before = await outpostWorker(page);
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));

  // An uncaught error in the worker, as a WASM abort or a bug would raise.
  await before.evaluate(() =>
    setTimeout(() => {
      throw new Error('simulated crash');
    }, 0),
  );
  await expect.poll(async () => (await errors(page)).length, { timeout: 10_000 }).toBeGreaterThan(0);
  const [crash] = await errors(page);
  expect(crash).toMatchObject({ source: 'worker', name: 'WorkerError', code: 'WORKER_FAILED' });
  expect(crash!.message).toMatch(/simulated crash/);

  const t0 = Date.now();
  const again = await runOnce(page);
  const recoveredMs = Date.now() - t0;
  expect(again).toEqual({ ok: true, top: first.top });
  // A new worker, and the model came from IndexedDB: nothing downloaded again.
  const after = await outpostWorker(page, before);
  expect(after).not.toBe(before);
  expect(requests.filter((p) => p.endsWith('.onnx'))).toEqual([]);
  console.log(`crash: next run answered ${recoveredMs} ms after the crash was reported`);
});

test('R4: a run that hangs past the timeout fails with WorkerError; the worker is replaced and the next run works', async ({
  page,
}) => {
  await start(page, { runTimeout: '1500ms' });
  const first = await runOnce(page);
  expect(first.ok).toBe(true);
  const worker = await outpostWorker(page);
  // The worker's thread spins forever from its next task on: the next run never answers.
  await spin(worker);
  const t0 = Date.now();
  const hung = await runOnce(page);
  const failedAfter = Date.now() - t0;
  expect(hung).toMatchObject({ ok: false, name: 'WorkerError', code: 'WORKER_FAILED' });
  expect(hung.message).toMatch(/longer than 1500 ms/);
  expect(failedAfter).toBeGreaterThanOrEqual(1400);
  expect(failedAfter).toBeLessThan(6000);
  expect(await runOnce(page)).toEqual({ ok: true, top: first.top });
  expect((await errors(page)).map((e) => e.source)).toContain('worker');
  console.log(`hang: the hung run failed after ${failedAfter} ms`);
});

test('R4: a load that makes no progress past loadTimeout: the worker is replaced and the load succeeds in the new one', async ({
  page,
}) => {
  await start(page, { loadTimeout: '1500ms' });
  const first = await runOnce(page);
  expect(first.ok).toBe(true);
  const worker = await outpostWorker(page);
  // As onnxruntime's threaded session creation sometimes does in Firefox: the worker never
  // answers the load.
  await spin(worker);
  const loaded = await page.evaluate(async () => {
    const rt = (window as unknown as { rt: Awaited<ReturnType<typeof window.outpost.createRuntime>> }).rt;
    const t0 = performance.now();
    const m = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
    const ms = performance.now() - t0;
    const out = await m.run({
      input: { type: 'float32', data: new Float32Array(512), dims: [1, 512] },
      state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
      sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
    });
    return { ms, outputs: Object.keys(out).sort() };
  });
  expect(loaded.outputs).toEqual(['output', 'stateN']);
  expect(loaded.ms).toBeGreaterThanOrEqual(1400);
  expect(loaded.ms).toBeLessThan(10_000);
  // The model on the hung worker came back too, and the app was told why.
  expect(await runOnce(page)).toEqual({ ok: true, top: first.top });
  const told = (await errors(page)).filter((e) => e.source === 'worker');
  expect(told.map((e) => e.message).join('\n')).toMatch(/made no progress for 1500 ms/);
  console.log(`stalled load: done in ${loaded.ms.toFixed(0)} ms in the new worker`);
});

/** y = Expand(x, [n, n]); z = y + y; s = ReduceSum(z): a run asks for 2·n² floats. */
function expandModel(): Buffer {
  const { onnx } = onnxProto;
  const tensor = (elemType: number, dim: number[]) => ({
    tensorType: { elemType, shape: { dim: dim.map((dimValue) => ({ dimValue })) } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'memory-hog',
      node: [
        { opType: 'Expand', input: ['x', 'shape'], output: ['y'] },
        { opType: 'Add', input: ['y', 'y'], output: ['z'] },
        {
          opType: 'ReduceSum',
          input: ['z'],
          output: ['s'],
          attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }],
        },
      ],
      input: [
        { name: 'x', type: tensor(1, [1]) },
        { name: 'shape', type: tensor(7, [2]) },
      ],
      output: [{ name: 's', type: tensor(1, []) }],
    },
  });
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

test('R4: a run that runs the worker out of memory fails typed; the worker is replaced (its memory given back) and later runs work', async ({
  page,
}) => {
  await page.route('**/fixtures/memory-hog.onnx', (route) =>
    route.fulfill({ status: 200, contentType: 'application/octet-stream', body: expandModel() }),
  );
  await start(page, {});
  const first = await runOnce(page);
  expect(first.ok).toBe(true);
  const before = await outpostWorker(page);
  const r = await page.evaluate(async () => {
    const rt = (window as unknown as { rt: Awaited<ReturnType<typeof window.outpost.createRuntime>> }).rt;
    const hog = await rt.load({ name: 'hog', version: '1', url: '/fixtures/memory-hog.onnx' });
    const run = (n: number) =>
      hog
        .run({
          x: { type: 'float32', data: Float32Array.from([1]), dims: [1] },
          shape: { type: 'int64', data: BigInt64Array.from([BigInt(n), BigInt(n)]), dims: [2] },
        })
        .then(
          (o) => ({ ok: true, s: (o.s!.data as Float32Array)[0] }),
          (e: Error & { code?: string; cause?: { code?: string } }) => ({
            ok: false,
            name: e.name,
            code: e.code,
            cause: e.cause?.code,
            message: e.message,
          }),
        );
    const small = await run(100);
    // 2 × 26,000² floats: 5.4 GB, past WebAssembly's 4 GiB.
    const huge = await run(26_000);
    const again = await run(100);
    return { small, huge, again };
  });
  console.log(`out of memory: ${JSON.stringify(r.huge)}`);
  expect(r.small).toEqual({ ok: true, s: 20_000 });
  expect(r.huge).toMatchObject({ ok: false, name: 'WorkerError', code: 'WORKER_FAILED', cause: 'RUN_FAILED' });
  expect('message' in r.huge && r.huge.message).toMatch(/ran out of memory/);
  // The next call waited for the new worker, where both models were loaded again.
  expect(r.again).toEqual({ ok: true, s: 20_000 });
  expect(await runOnce(page)).toEqual({ ok: true, top: first.top });
  const after = await outpostWorker(page, before);
  expect(after).not.toBe(before);
  expect((await errors(page)).map((e) => e.message).join('\n')).toMatch(/ran out of memory/);
});

test('R4: after maxRestarts in the window the circuit breaker opens: the model fails at once, the app is told; the restart is in telemetry', async ({
  page,
}) => {
  await start(page, { maxRestarts: 1, window: '5m' });
  expect((await runOnce(page)).ok).toBe(true);
  const crash = async () => {
    const w = await outpostWorker(page);
    await w.evaluate(() =>
      setTimeout(() => {
        throw new Error('simulated crash');
      }, 0),
    );
    return w;
  };
  const w1 = await crash();
  // A run sent before the crash lands would fail with it (calls in flight do): wait until the
  // crash is reported, then the run goes to the reloaded model.
  await expect.poll(async () => (await errors(page)).length, { timeout: 10_000 }).toBe(1);
  expect((await runOnce(page)).ok).toBe(true);
  await outpostWorker(page, w1);
  await crash();
  await expect
    .poll(async () => (await errors(page)).filter((e) => /circuit breaker open/.test(e.message)).length, {
      timeout: 10_000,
    })
    .toBe(1);
  const t0 = Date.now();
  const refused = await runOnce(page);
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(refused).toMatchObject({ ok: false, name: 'WorkerError', code: 'WORKER_FAILED' });
  expect(refused.message).toMatch(/circuit breaker open/);
  // Loading again is the app's way out: the new primary worker serves it.
  const reloaded = await page.evaluate(async () => {
    const rt = (window as unknown as { rt: { load: (s: unknown) => Promise<{ version: string }> } }).rt;
    return (await rt.load({ name: 'digits', version: '1.0.0', url: '/models/digits.onnx' })).version;
  });
  expect(reloaded).toBe('1.0.0');

  // The workers that took over recorded the restart and the breaker: after close (which
  // persists), the telemetry queue holds them as outpost.worker log records.
  await page.evaluate(() => (window as unknown as { rt: { close: () => Promise<void> } }).rt.close());
  const bodies = await page.evaluate(
    () =>
      new Promise<string[]>((resolve, reject) => {
        const open = indexedDB.open('outpost-telemetry');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const req = open.result.transaction('queue').objectStore('queue').getAll();
          req.onsuccess = () => resolve((req.result as { body: string }[]).map((b) => b.body));
        };
      }),
  );
  const events = bodies
    .flatMap(
      (b) =>
        (
          JSON.parse(b) as {
            resourceLogs?: {
              scopeLogs: {
                logRecords: { eventName?: string; attributes: { key: string; value: { stringValue?: string } }[] }[];
              }[];
            }[];
          }
        ).resourceLogs ?? [],
    )
    .flatMap((r) => r.scopeLogs.flatMap((s) => s.logRecords))
    .filter((l) => l.eventName === 'outpost.worker')
    .map((l) => l.attributes.find((a) => a.key === 'outpost.worker.event')?.value.stringValue);
  expect(events.sort()).toEqual(['breaker-open', 'restarted']);
});
