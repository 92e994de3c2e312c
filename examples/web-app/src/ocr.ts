/**
 * PP-OCRv4 text detection around the model: the picture scaled to fit `maxSide` (sides rounded
 * down to multiples of 32, as the network needs), normalised with ImageNet's mean and standard
 * deviation into NCHW; and the probability map it returns turned into boxes, as PaddleOCR's DB
 * post-processing does in spirit: regions above a threshold, each grown back by the margin the
 * network was trained to shrink text by.
 */

import { inputSize } from '../../shared/text-boxes.js';

export { textBoxes, type TextBox } from '../../shared/text-boxes.js';

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

/** The picture as the model's input `x`: [1, 3, h, w] float32. */
export function ocrInput(
  image: CanvasImageSource & { width: number; height: number },
  maxSide = 480,
): { data: Float32Array; dims: [1, 3, number, number]; scaleX: number; scaleY: number } {
  const { width, height } = inputSize(image.width, image.height, maxSide);
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.drawImage(image, 0, 0, width, height);
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) data[c * plane + i] = (rgba[i * 4 + c]! / 255 - MEAN[c]!) / STD[c]!;
  }
  return { data, dims: [1, 3, height, width], scaleX: image.width / width, scaleY: image.height / height };
}

/** A picture with a few lines of text, for trying the detector without a file at hand. */
export function samplePicture(): HTMLCanvasElement {
  const canvas = document.createElement('canvas');
  canvas.width = 480;
  canvas.height = 320;
  const ctx = canvas.getContext('2d')!;
  ctx.fillStyle = '#fdfbf5';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#1b1b1b';
  ctx.font = 'bold 30px sans-serif';
  ctx.fillText('Platform 4', 32, 64);
  ctx.font = '22px sans-serif';
  ctx.fillText('Next train 10:42 to Lyon', 32, 128);
  ctx.fillText('Models run at the edge,', 32, 184);
  ctx.fillText('offline, updated over the air', 32, 224);
  ctx.font = '16px monospace';
  ctx.fillText('outpost 1.0.0', 300, 292);
  return canvas;
}
