// Synthetic people for MoveNet: deterministic 192x192 RGB pictures of a figure (head, neck,
// torso, arms, legs as thick limbs with shading) in varied poses, sizes, places, clothes and
// backgrounds. MoveNet finds confident keypoints on them, which random noise never gives, so
// they serve as calibration and evaluation inputs for the quantizer, its tests and the bench.

/** Side of MoveNet Lightning's input. */
export const SIDE = 192;

/** Small seeded PRNG (mulberry32), returning floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SKIN = [
  [232, 190, 160],
  [198, 140, 105],
  [141, 85, 60],
  [90, 56, 38],
];

/**
 * Picture `index` of the set (any integer): an Int32Array of SIDE*SIDE*3 RGB values in 0-255,
 * row-major, as MoveNet's `input` [1, 192, 192, 3] int32 takes it.
 */
export function figure(index) {
  const r = mulberry32(0x5eed + index * 7919);
  const u = (a, b) => a + (b - a) * r();
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const skin = pick(SKIN);
  const shirt = [u(20, 230), u(20, 230), u(20, 230)];
  const trousers = [u(10, 120), u(10, 120), u(30, 160)];
  const hair = [u(10, 90), u(10, 70), u(5, 50)];
  // Body in its own units (height ~1), then placed.
  const h = u(0.62, 0.92) * SIDE;
  const cx = u(0.38, 0.62) * SIDE;
  const top = u(0.03, 1 - h / SIDE - 0.03) * SIDE;
  const lean = u(-0.12, 0.12);
  const P = (x, y) => [cx + (x + lean * (y - 0.5)) * h, top + y * h];
  const head = P(0, 0.07);
  const neck = P(0, 0.15);
  const shoulderL = P(-0.11, 0.19);
  const shoulderR = P(0.11, 0.19);
  const hipL = P(-0.07, 0.52);
  const hipR = P(0.07, 0.52);
  const limb = (from, len, angle) => [from[0] + Math.sin(angle) * len * h, from[1] + Math.cos(angle) * len * h];
  // Arm and leg angles from straight down, each side mirrored.
  const armUp = [u(-0.3, 2.6), u(-0.3, 2.6)];
  const elbowL = limb(shoulderL, 0.16, -armUp[0]);
  const elbowR = limb(shoulderR, 0.16, armUp[1]);
  const wristL = limb(elbowL, 0.15, -armUp[0] - u(-0.4, 1.2));
  const wristR = limb(elbowR, 0.15, armUp[1] + u(-0.4, 1.2));
  const legOut = [u(0, 0.45), u(0, 0.45)];
  const kneeL = limb(hipL, 0.23, -legOut[0]);
  const kneeR = limb(hipR, 0.23, legOut[1]);
  const ankleL = limb(kneeL, 0.23, -legOut[0] + u(-0.3, 0.3));
  const ankleR = limb(kneeR, 0.23, legOut[1] + u(-0.3, 0.3));
  const w = h / 100;
  // Drawn back to front: [x0, y0, x1, y1, half width, colour].
  const shapes = [
    [...hipL, ...kneeL, 4.5 * w, trousers],
    [...hipR, ...kneeR, 4.5 * w, trousers],
    [...kneeL, ...ankleL, 3.8 * w, trousers],
    [...kneeR, ...ankleR, 3.8 * w, trousers],
    [...ankleL, ankleL[0] - 3 * w, ankleL[1] + 1.5 * w, 2.5 * w, [30, 25, 25]],
    [...ankleR, ankleR[0] + 3 * w, ankleR[1] + 1.5 * w, 2.5 * w, [30, 25, 25]],
    [...neck, ...P(0, 0.48), 10 * w, shirt],
    [...shoulderL, ...shoulderR, 5 * w, shirt],
    [...hipL, ...hipR, 6 * w, trousers],
    [...neck, ...P(0, 0.1), 3 * w, skin],
    [...shoulderL, ...elbowL, 3.6 * w, shirt],
    [...shoulderR, ...elbowR, 3.6 * w, shirt],
    [...elbowL, ...wristL, 3 * w, skin],
    [...elbowR, ...wristR, 3 * w, skin],
    [head[0], head[1] - 1.5 * w, head[0], head[1] - 1.5 * w, 6.6 * w, hair],
    [...head, ...head, 6 * w, skin],
    [head[0] - 2.2 * w, head[1] - 0.5 * w, head[0] - 2.2 * w, head[1] - 0.5 * w, 0.9 * w, [30, 20, 20]],
    [head[0] + 2.2 * w, head[1] - 0.5 * w, head[0] + 2.2 * w, head[1] - 0.5 * w, 0.9 * w, [30, 20, 20]],
    [head[0] - 1.5 * w, head[1] + 3 * w, head[0] + 1.5 * w, head[1] + 3 * w, 0.6 * w, [150, 60, 60]],
  ];
  // Background: a floor and a wall with a gradient and some soft blobs.
  const wall = [u(60, 230), u(60, 230), u(60, 230)];
  const floor = [u(40, 180), u(40, 160), u(30, 140)];
  const horizon = u(0.55, 0.85) * SIDE;
  const blobs = Array.from({ length: 6 }, () => [u(0, SIDE), u(0, SIDE), u(8, 40), u(-40, 40)]);
  const px = new Int32Array(SIDE * SIDE * 3);
  const SS = 2; // 2x2 supersampling: smooth edges, as a camera gives
  for (let y = 0; y < SIDE; y++)
    for (let x = 0; x < SIDE; x++) {
      const acc = [0, 0, 0];
      for (let sy = 0; sy < SS; sy++)
        for (let sx = 0; sx < SS; sx++) {
          const fx = x + (sx + 0.5) / SS;
          const fy = y + (sy + 0.5) / SS;
          const base = fy < horizon ? wall : floor;
          const shade = 1 - 0.25 * (fy / SIDE);
          let c = base.map((v) => v * shade);
          for (const [bx, by, br, bd] of blobs) if ((fx - bx) ** 2 + (fy - by) ** 2 < br * br) c = c.map((v) => v + bd);
          for (const [x0, y0, x1, y1, hw, colour] of shapes) {
            const dx = x1 - x0;
            const dy = y1 - y0;
            const len2 = dx * dx + dy * dy;
            const t = len2 ? Math.max(0, Math.min(1, ((fx - x0) * dx + (fy - y0) * dy) / len2)) : 0;
            const d = Math.hypot(fx - x0 - t * dx, fy - y0 - t * dy);
            // Lit from the upper left: the limb's edge away from the light is darker.
            if (d <= hw) c = colour.map((v) => v * (0.8 + 0.2 * (1 - d / hw)));
          }
          for (let k = 0; k < 3; k++) acc[k] += c[k];
        }
      for (let k = 0; k < 3; k++)
        px[(y * SIDE + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(acc[k] / (SS * SS) + (r() - 0.5) * 6)));
    }
  return px;
}
