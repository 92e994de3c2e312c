import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelReadError } from './errors.js';
import { decodeModel } from './onnx.js';

const digits = readFileSync(new URL('../../../models/digits/digits.onnx', import.meta.url));

describe('decodeModel', () => {
  it('reads the digits model', () => {
    expect(decodeModel(digits).graph!.node.length).toBeGreaterThan(0);
  });

  it('says a truncated file or an absurd length is not a readable ONNX model (protobufjs only says "index out of range")', () => {
    expect(() => decodeModel(digits.subarray(0, digits.length / 2))).toThrow(ModelReadError);
    // The graph field's length set to 2^32 - 1.
    const absurd = Uint8Array.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    expect(() => decodeModel(absurd)).toThrow(/^Not a readable ONNX model \(protobuf: index out of range/);
  });
});
