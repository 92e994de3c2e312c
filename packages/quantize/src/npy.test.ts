import { describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from './npy.js';

// np.save of np.arange(6, dtype='<f4').reshape(2, 3), byte for byte (numpy 1.26).
const NUMPY_F4 = Uint8Array.from([
  ...[0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0x76, 0],
  ...new TextEncoder().encode("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" + ' '.repeat(58) + '\n'),
  ...new Uint8Array(Float32Array.of(0, 1, 2, 3, 4, 5).buffer),
]);

describe('.npy', () => {
  it('reads what numpy writes', () => {
    const a = readNpy(NUMPY_F4);
    expect(a.dtype).toBe('float32');
    expect(a.dims).toEqual([2, 3]);
    expect(Array.from(a.data)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('writes what numpy writes (64-byte aligned header) and reads it back', () => {
    expect(writeNpy(Float32Array.of(0, 1, 2, 3, 4, 5), [2, 3])).toEqual(NUMPY_F4);
    const data = Float32Array.of(-1.5, 3.25e-8, Infinity);
    const back = readNpy(writeNpy(data, [3]));
    expect(back.dims).toEqual([3]);
    expect(back.data).toEqual(data);
  });

  it('reads int64 labels and rejects unsupported files', () => {
    const header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
    const pad = ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
    const bytes = Uint8Array.from([
      ...[0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length + pad.length, 0],
      ...new TextEncoder().encode(header + pad),
      ...new Uint8Array(BigInt64Array.of(7n, 3n).buffer),
    ]);
    expect(readNpy(bytes)).toEqual({ dtype: 'int64', data: Float64Array.of(7, 3), dims: [2] });
    expect(() => readNpy(new Uint8Array(20))).toThrow(/magic/);
    const f8 = bytes.slice();
    f8[10 + header.indexOf('<i8') + 2] = '8'.charCodeAt(0);
    f8[10 + header.indexOf('<i8') + 1] = 'f'.charCodeAt(0);
    expect(() => readNpy(f8)).toThrow(/unsupported .npy dtype <f8/);
  });
});
