import {
  BackendError,
  DownloadError,
  InputError,
  IntegrityError,
  MetadataError,
  OutpostError,
  QuotaError,
  UpdateError,
  deserializeError,
  serializeError,
} from '@outpost/core';
import * as Comlink from 'comlink';
import { describe, expect, it } from 'vitest';
import { installErrorTransfer } from './error-transfer.js';

describe('error transfer across the worker boundary', () => {
  it('rebuilds each error class with its code and fields', () => {
    const cases: OutpostError[] = [
      new InputError('INPUT_SHAPE', 'bad dims', 'x', [1, 28], [1, 29]),
      new DownloadError('404', '/m.onnx', 404),
      new IntegrityError('hash', 'aa', 'bb', 'm.onnx'),
      new QuotaError('full', 10, 20, 30),
      new BackendError('none', [{ backend: 'wasm', reason: 'r' }]),
      new MetadataError('METADATA_ROLLBACK', 'older', 'timestamp'),
      new UpdateError('unhealthy', 'digits', '1.1.0'),
    ];
    for (const err of cases) {
      const back = deserializeError(structuredClone(serializeError(err)));
      expect(back).toBeInstanceOf(err.constructor);
      expect(back).toMatchObject({ name: err.name, code: err.code, message: err.message, ...err.details() });
      expect(back.stack).toBe(err.stack);
    }
  });

  it('keeps plain errors as errors with their name and message', () => {
    const back = deserializeError(serializeError(new TypeError('boom')));
    expect(back).toBeInstanceOf(Error);
    expect(back).toMatchObject({ name: 'TypeError', message: 'boom' });
    expect(deserializeError(serializeError('a string')).message).toBe('a string');
  });

  it('a typed error thrown in the exposed object arrives as the same class over comlink', async () => {
    installErrorTransfer();
    const { port1, port2 } = new MessageChannel();
    Comlink.expose(
      {
        fail() {
          throw new InputError('INPUT_MISSING', 'Missing input "x"', 'x');
        },
      },
      port1,
    );
    const remote = Comlink.wrap<{ fail(): void }>(port2);
    const err = await Promise.resolve(remote.fail()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err).toMatchObject({ code: 'INPUT_MISSING', input: 'x' });
    port1.close();
    port2.close();
  });
});
