import {
  BackendError,
  ModelFormatError,
  type BackendId,
  type Engine,
  type EngineSession,
  type ModelBytes,
} from '@outpost/core';
import { describe, expect, it } from 'vitest';
import type { Device } from './device.js';
import { openModel } from './engines.js';

/** A device with every backend, so the fake engines decide. */
const everything: Device = { missing: async () => null, adapter: async () => null };

const model: ModelBytes = { graph: new Uint8Array([8, 1]), external: [] };
const config = { numThreads: 1 };

function session(backend: BackendId, output = 1): EngineSession {
  return {
    backend,
    inputs: [{ name: 'x', type: 'float32', dims: ['batch', 3] }],
    outputs: [{ name: 'y', type: 'float32', dims: [1] }],
    run: async () => ({ y: { type: 'float32', data: new Float32Array([output]), dims: [1] } }),
    dispose: async () => undefined,
  };
}

/** A fake engine: `unavailable` backends fail the probe, `failing` ones fail to open. */
function engine(opts: {
  name?: string;
  priority?: number;
  accepts?: boolean;
  unavailable?: Partial<Record<BackendId, string>>;
  failing?: Partial<Record<BackendId, Error>>;
  opened?: BackendId[];
}): Engine {
  return {
    name: opts.name ?? 'fake',
    priority: opts.priority ?? 1,
    accepts: () => opts.accepts ?? true,
    probe: async (b) => opts.unavailable?.[b] ?? null,
    init: async () => undefined,
    open: async (_m, b) => {
      opts.opened?.push(b);
      const err = opts.failing?.[b];
      if (err) throw err;
      return session(b);
    },
  };
}

describe('openModel: backend selection', () => {
  it('uses the first preferred backend that works', async () => {
    const opened = await openModel(model, ['webgpu', 'wasm'], config, [engine({})], everything);
    expect(opened.session.backend).toBe('webgpu');
    expect(opened.fallbackReason).toBeUndefined();
  });

  it('falls back to WASM when the device has no WebGPU adapter, and says why', async () => {
    const noGpu: Device = {
      missing: async (b) => (b === 'webgpu' ? 'no WebGPU adapter' : null),
      adapter: async () => null,
    };
    const tried: BackendId[] = [];
    const opened = await openModel(model, ['webgpu', 'wasm'], config, [engine({ opened: tried })], noGpu);
    expect(opened.session.backend).toBe('wasm');
    expect(opened.fallbackReason).toBe('webgpu: no WebGPU adapter');
    // The device lacks WebGPU: no engine was asked to open anything there.
    expect(tried).toEqual(['wasm']);
  });

  it('falls back when an engine says it cannot use a backend the device has', async () => {
    const opened = await openModel(
      model,
      ['webgpu', 'wasm'],
      config,
      [engine({ unavailable: { webgpu: 'the WebGPU build is not installed' } })],
      everything,
    );
    expect(opened.session.backend).toBe('wasm');
    expect(opened.fallbackReason).toBe('webgpu: the WebGPU build is not installed');
  });

  it('falls back when the WebGPU session fails to create or its probe run fails', async () => {
    const tried: BackendId[] = [];
    const opened = await openModel(
      model,
      ['webgpu', 'wasm'],
      config,
      [engine({ failing: { webgpu: new Error('probe run gave non-finite values') }, opened: tried })],
      everything,
    );
    expect(tried).toEqual(['webgpu', 'wasm']);
    expect(opened.session.backend).toBe('wasm');
    expect(opened.fallbackReason).toContain('non-finite');
  });

  it('falls back when a new WebGPU session gives non-finite values on its probe run', async () => {
    const nan: Engine = { ...engine({}), open: async (_m, b) => session(b, b === 'webgpu' ? NaN : 1) };
    const opened = await openModel(model, ['webgpu', 'wasm'], config, [nan], everything);
    expect(opened.session.backend).toBe('wasm');
    expect(opened.fallbackReason).toBe('webgpu: probe run failed: probe run gave non-finite values in output "y"');
  });

  it('throws one combined BackendError listing every attempt when all fail', async () => {
    const err = await openModel(
      model,
      ['webgpu', 'wasm'],
      config,
      [engine({ unavailable: { webgpu: 'no adapter' }, failing: { wasm: new Error('wasm exploded') } })],
      everything,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).attempts).toEqual([
      { backend: 'webgpu', reason: 'no adapter' },
      { backend: 'wasm', reason: 'wasm exploded' },
    ]);
  });

  it('does not try other backends when the model itself is malformed', async () => {
    const tried: BackendId[] = [];
    const err = await openModel(
      model,
      ['webgpu', 'wasm'],
      config,
      [engine({ failing: { webgpu: new ModelFormatError('truncated') }, opened: tried })],
      everything,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect(tried).toEqual(['webgpu']);
  });

  it('asks engines by priority and skips engines that do not read the model', async () => {
    const a = engine({ name: 'low', priority: 1 });
    const b = engine({ name: 'high-but-not-onnx', priority: 10, accepts: false });
    const c = engine({ name: 'high', priority: 5, unavailable: { wasm: 'nope' } });
    const opened = await openModel(model, ['wasm'], config, [b, c, a], everything);
    // 'high' is asked first; it cannot use WASM, so the next engine that reads the model opens it.
    expect(opened.engine).toBe('low');
    expect(opened.fallbackReason).toBe('high/wasm: nope');
  });

  it('rejects a model no registered engine reads', async () => {
    await expect(openModel(model, ['wasm'], config, [engine({ accepts: false })], everything)).rejects.toBeInstanceOf(
      ModelFormatError,
    );
  });
});
