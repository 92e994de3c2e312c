import { PROTOCOL_VERSION, ProtocolError, WorkerError } from '@outpost/core';
import * as Comlink from 'comlink';
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime, resolveSource, resolveThreads } from './runtime.js';

/** A stand-in for a Worker: the page end of a MessageChannel whose other end exposes `api`. */
function fakeWorker(api: object): Worker {
  const { port1, port2 } = new MessageChannel();
  Comlink.expose(api, port2);
  const w = port1 as unknown as Worker & { terminate(): void };
  w.terminate = () => {
    port1.close();
    port2.close();
  };
  return w;
}

describe('createRuntime', () => {
  it('refuses a worker speaking another protocol version (a stale cached script)', async () => {
    const err = await createRuntime({
      createWorker: () =>
        fakeWorker({ hello: () => ({ protocol: PROTOCOL_VERSION + 1 }), init: async () => undefined }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: 'PROTOCOL_MISMATCH', expected: PROTOCOL_VERSION, actual: PROTOCOL_VERSION + 1 });
  });

  it('fails with WorkerError when the worker never answers', async () => {
    const { port1 } = new MessageChannel();
    const silent = Object.assign(port1, { terminate: () => port1.close() }) as unknown as Worker;
    const err = await createRuntime({ createWorker: () => silent, startTimeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerError);
  });

  it('hands the worker its resolved configuration', async () => {
    let seen: unknown;
    const rt = await createRuntime({
      backends: ['wasm'],
      wasm: { numThreads: 3 },
      maxInputBytes: 1234,
      createWorker: () =>
        fakeWorker({
          hello: () => ({ protocol: PROTOCOL_VERSION }),
          init: async (c: unknown) => {
            seen = c;
          },
        }),
    });
    // Node is not cross-origin isolated: one thread whatever was asked.
    expect(seen).toEqual({ backends: ['wasm'], numThreads: 1, maxInputBytes: 1234, ortWasmPaths: undefined });
    await rt.close();
    await expect(rt.cache.list()).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});

describe('resolveSource', () => {
  it('resolves relative model URLs against the page, not the worker script', () => {
    const page = 'https://app.example/kiosk/index.html';
    expect(resolveSource({ name: 'm', version: '1', url: 'models/m.onnx' }, page).url).toBe(
      'https://app.example/kiosk/models/m.onnx',
    );
    const files = resolveSource({ name: 'm', version: '1', files: [{ path: 'a', url: '/a.onnx' }] }, page).files;
    expect(files).toEqual([{ path: 'a', url: 'https://app.example/a.onnx' }]);
  });
});

describe('resolveThreads', () => {
  it('uses min(4, cores) for 0 when isolated, and 1 without isolation', () => {
    expect(resolveThreads(0, true, 2)).toBe(2);
    expect(resolveThreads(0, true, 16)).toBe(4);
    expect(resolveThreads(0, false, 16)).toBe(1);
    expect(resolveThreads(8, false, 16)).toBe(1);
    expect(resolveThreads(2, true, 16)).toBe(2);
  });
});

describe('server-side rendering', () => {
  it('importing the built package in a fresh Node process touches no window, indexedDB or Worker', () => {
    // A fresh process, so no module is already cached; globals are traps that record any access.
    const script = `
      const touched = [];
      for (const n of ['window', 'document', 'indexedDB', 'Worker', 'navigator', 'location', 'self']) {
        Object.defineProperty(globalThis, n, { configurable: true, get() { touched.push(n); return undefined; } });
      }
      const mod = await import('@outpost/runtime');
      console.log(JSON.stringify({ touched, exports: Object.keys(mod).length, createRuntime: typeof mod.createRuntime }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: resolve(import.meta.dirname, '../..'),
      encoding: 'utf8',
    });
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as { touched: string[]; createRuntime: string };
    expect(result.createRuntime).toBe('function');
    expect(result.touched).toEqual([]);
  });
});
