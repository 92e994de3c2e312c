// Draws the PWA's two icons (192 and 512 px, the sizes an install needs) into public/ as PNG.
// Run once, by hand, when the design changes: the PNGs are committed, so building the example
// needs nothing of this. A PNG is a zlib stream of filtered RGBA rows in CRC-checked chunks,
// which Node's zlib writes on its own.
//
//   node examples/offline-pwa/scripts/icons.mjs
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';

const out = join(import.meta.dirname, '..', 'public');

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

function png(size, pixel) {
  const row = size * 4 + 1;
  const raw = Buffer.alloc(row * size);
  for (let y = 0; y < size; y++) {
    raw[y * row] = 0; // filter: none
    for (let x = 0; x < size; x++) raw.set(pixel(x + 0.5, y + 0.5, size), y * row + 1 + x * 4);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // RGBA
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Coverage of a shape from its signed distance (px), for one pixel of anti-aliasing. */
const cover = (d) => Math.min(1, Math.max(0, 0.5 - d));
const mix = (a, b, t) => a.map((v, i) => Math.round(v + (b[i] - v) * t));

/**
 * A full-bleed blue square (so the icon also works as `maskable`: the safe zone is the inner
 * 80%) with a white hand-drawn-looking "0" and a small dot, the app's digit pad in miniature.
 */
function icon(x, y, size) {
  const u = size / 512;
  const bg = [47, 111, 222];
  const ink = [255, 255, 255];
  // The "0": an elliptical ring, distance approximated by scaling into a circle.
  const cx = 256 * u;
  const cy = 250 * u;
  const rx = 92 * u;
  const ry = 138 * u;
  const k = Math.hypot((x - cx) / rx, (y - cy) / ry);
  const ringDistance = Math.abs(k - 1) * Math.min(rx, ry) - 26 * u;
  const dot = Math.hypot(x - 384 * u, y - 392 * u) - 22 * u;
  const t = Math.max(cover(ringDistance), cover(dot));
  return [...mix(bg, ink, t), 255];
}

for (const size of [192, 512]) {
  const file = join(out, `icon-${size}.png`);
  writeFileSync(file, png(size, icon));
  console.log(`wrote ${file}`);
}
