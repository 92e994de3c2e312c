import { MetadataError } from '@outpost/core';
import { describe, expect, it } from 'vitest';
import { derToP1363, fromHex, p1363ToDer, toHex } from './encoding.js';
import { readCapped } from './fetch.js';
import { generateKey, signBytes, verifyBytes } from './keys.js';

describe('ECDSA signature encodings', () => {
  it('round-trips r||s through DER, including leading zeros and high bits', () => {
    const cases = [
      new Uint8Array(64).fill(0xff),
      Uint8Array.from({ length: 64 }, (_, i) => (i < 3 || (i >= 32 && i < 34) ? 0 : i)),
      Uint8Array.from({ length: 64 }, (_, i) => (i === 0 || i === 32 ? 0x80 : 1)),
    ];
    for (const sig of cases) {
      const der = p1363ToDer(sig);
      expect(der[0]).toBe(0x30);
      expect(toHex(derToP1363(der, 32)!)).toBe(toHex(sig));
    }
    expect(derToP1363(fromHex('3006020101020101ff'), 32)).toBeNull();
    expect(derToP1363(new Uint8Array(0), 32)).toBeNull();
  });

  it('signs in DER hex and verifies; a flipped bit or garbage hex does not verify', async () => {
    for (const alg of ['ecdsa', 'ed25519'] as const) {
      const key = await generateKey(alg);
      const data = new TextEncoder().encode('canonical');
      const sig = await signBytes(key, data);
      expect(await verifyBytes(key.public, sig, data)).toBe(true);
      const flipped = sig.slice(0, -2) + (sig.endsWith('00') ? '01' : '00');
      expect(await verifyBytes(key.public, flipped, data)).toBe(false);
      expect(await verifyBytes(key.public, 'zz', data)).toBe(false);
    }
  });
});

describe('readCapped (U2, U10)', () => {
  const stream = (chunks: number, size: number) =>
    new ReadableStream<Uint8Array>({
      pull(c) {
        if (chunks-- <= 0) c.close();
        else c.enqueue(new Uint8Array(size));
      },
    });

  it('reads a body within its cap', async () => {
    expect((await readCapped(new Response(stream(3, 100)), 300, 'x')).length).toBe(300);
  });

  it('stops an endless body one chunk past the cap, and refuses an oversized Content-Length up front', async () => {
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(1000));
      },
    });
    await expect(readCapped(new Response(endless), 16_384, 'timestamp.json')).rejects.toBeInstanceOf(MetadataError);
    expect(pulled).toBeLessThan(20);
    const big = new Response('x'.repeat(10), { headers: { 'content-length': '50000000' } });
    await expect(readCapped(big, 1000, 'x')).rejects.toMatchObject({ code: 'METADATA_FORMAT' });
  });
});
