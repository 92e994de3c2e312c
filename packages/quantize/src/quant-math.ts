/** Per-channel symmetric int8 weights: `w ≈ q[i] * scale[channel(i)]`, zero point 0. */
export interface QuantizedWeight {
  /** int8 values in [-127, 127] (symmetric: -128 is never used). */
  q: Int8Array;
  /** One scale per channel along `axis`. */
  scale: Float32Array;
  /** The channel axis. */
  axis: number;
}

/** Scale and zero point of an asymmetric uint8 activation quantizer. */
export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

/** Rounds half to even, as ONNX QuantizeLinear does. */
export function roundHalfToEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Saturating cast to [lo, hi]. */
export function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * Quantizes `w` (dims `dims`) to int8, symmetric, one scale per index along `axis`:
 * scale = max|w| / 127 over the channel (1 for an all-zero channel, so it stays exactly 0).
 */
export function quantizeWeightPerChannel(w: Float32Array, dims: readonly number[], axis: number): QuantizedWeight {
  const channels = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const maxAbs = new Float32Array(channels);
  for (let i = 0; i < w.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const a = Math.abs(w[i] ?? 0);
    if (a > (maxAbs[c] ?? 0)) maxAbs[c] = a;
  }
  const scale = maxAbs.map((m) => (m > 0 ? m / 127 : 1));
  const q = new Int8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const c = Math.floor(i / inner) % channels;
    q[i] = clamp(roundHalfToEven((w[i] ?? 0) / (scale[c] ?? 1)), -127, 127);
  }
  return { q, scale, axis };
}

/**
 * uint8 asymmetric parameters for a range: the range is widened to include 0 (so zero padding
 * and ReLU zeros are exact), scale = (max - min) / 255, zero point = round(-min / scale).
 */
export function activationParams(min: number, max: number): ActivationParams {
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  if (!(hi > lo)) return { scale: 1, zeroPoint: 0 };
  const scale = (hi - lo) / 255;
  // `+ 0` turns -0 (from lo = -0) into 0.
  return { scale, zeroPoint: clamp(roundHalfToEven(-lo / scale), 0, 255) + 0 };
}

/** QuantizeLinear to uint8, saturating (reference implementation for tests and error estimates). */
export function quantizeUint8(x: number, p: ActivationParams): number {
  return clamp(roundHalfToEven(x / p.scale) + p.zeroPoint, 0, 255);
}

/**
 * int32 bias for a QDQ Conv/Gemm: scale = inputScale * weightScale[c], zero point 0, as
 * onnxruntime's QLinearConv expects.
 */
export function quantizeBias(
  bias: Float32Array,
  inputScale: number,
  weightScale: Float32Array,
): {
  q: Int32Array;
  scale: Float32Array;
} {
  const scale = new Float32Array(bias.length);
  const q = new Int32Array(bias.length);
  for (let c = 0; c < bias.length; c++) {
    const s = inputScale * (weightScale.length === 1 ? (weightScale[0] ?? 1) : (weightScale[c] ?? 1));
    scale[c] = s;
    q[c] = clamp(roundHalfToEven((bias[c] ?? 0) / s), -2147483647, 2147483647);
  }
  return { q, scale };
}
