import { InputError, type FrameBitmap, type FramePreprocess, type Tensor } from '@outpost/core';

/** Defaults of {@link FramePreprocess}. */
export const FRAME_PREPROCESS_DEFAULTS = {
  layout: 'nchw',
  scale: 1 / 255,
  mean: [0, 0, 0],
  std: [1, 1, 1],
} as const;

/**
 * The model input for RGBA pixels of `spec.width` × `spec.height` (canvas `getImageData`
 * order): per channel `(v * scale - mean) / std`, in the spec's layout. Alpha is ignored.
 */
export function frameTensor(rgba: ArrayLike<number>, spec: FramePreprocess): Tensor {
  const { width, height } = spec;
  const layout = spec.layout ?? FRAME_PREPROCESS_DEFAULTS.layout;
  const scale = spec.scale ?? FRAME_PREPROCESS_DEFAULTS.scale;
  const mean = spec.mean ?? FRAME_PREPROCESS_DEFAULTS.mean;
  const std = spec.std ?? FRAME_PREPROCESS_DEFAULTS.std;
  if (mean.length !== 3 || std.length !== 3) {
    throw new InputError('INPUT_SHAPE', 'The frame preprocess mean and std take three values (R, G, B)', spec.input);
  }
  const plane = width * height;
  if (rgba.length !== plane * 4) {
    throw new RangeError(`Expected ${plane * 4} RGBA values for ${width}x${height}, got ${rgba.length}`);
  }
  const data = new Float32Array(3 * plane);
  // Per channel: v * (scale / std) - mean / std, one multiply-add per value.
  const mul = [0, 1, 2].map((c) => scale / std[c]!);
  const add = [0, 1, 2].map((c) => -mean[c]! / std[c]!);
  const [m0, m1, m2] = mul as [number, number, number];
  const [a0, a1, a2] = add as [number, number, number];
  if (layout === 'nchw') {
    for (let i = 0, p = 0; i < plane; i++, p += 4) {
      data[i] = rgba[p]! * m0 + a0;
      data[plane + i] = rgba[p + 1]! * m1 + a1;
      data[2 * plane + i] = rgba[p + 2]! * m2 + a2;
    }
    return { type: 'float32', data, dims: [1, 3, height, width] };
  }
  for (let i = 0, p = 0; i < plane; i++, p += 4) {
    data[3 * i] = rgba[p]! * m0 + a0;
    data[3 * i + 1] = rgba[p + 1]! * m1 + a1;
    data[3 * i + 2] = rgba[p + 2]! * m2 + a2;
  }
  return { type: 'float32', data, dims: [1, height, width, 3] };
}

/**
 * Draws frames scaled to the model's input size on one reused OffscreenCanvas and reads their
 * pixels back: the work a page would otherwise do on its own thread.
 */
export class FrameReader {
  private canvas: OffscreenCanvas | undefined;
  private ctx: OffscreenCanvasRenderingContext2D | undefined;

  /** The frame as the model input `spec` describes. Always closes the frame. */
  tensor(frame: FrameBitmap, spec: FramePreprocess): Tensor {
    try {
      if (!(spec.width > 0 && spec.height > 0 && Number.isInteger(spec.width) && Number.isInteger(spec.height))) {
        throw new InputError(
          'INPUT_SHAPE',
          `The frame preprocess size must be positive integers, got ${spec.width}x${spec.height}`,
          spec.input,
        );
      }
      if (!this.canvas || !this.ctx) {
        this.canvas = new OffscreenCanvas(spec.width, spec.height);
        // Read back every frame: keep the canvas on the CPU rather than copy from the GPU each time.
        const ctx = this.canvas.getContext('2d', { willReadFrequently: true });
        if (!ctx) throw new TypeError('OffscreenCanvas 2D is not available in this worker');
        this.ctx = ctx;
      } else if (this.canvas.width !== spec.width || this.canvas.height !== spec.height) {
        this.canvas.width = spec.width;
        this.canvas.height = spec.height;
      }
      this.ctx.drawImage(frame, 0, 0, spec.width, spec.height);
      return frameTensor(this.ctx.getImageData(0, 0, spec.width, spec.height).data, spec);
    } finally {
      frame.close();
    }
  }
}
