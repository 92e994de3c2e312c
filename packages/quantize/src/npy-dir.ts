import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CalibrationDataError } from './errors.js';
import { readNpy } from './npy.js';
import type { ModelProto } from './onnx.js';
import type { Feeds } from './runtime.js';
import type { TfjsFeed, TfjsTensor } from './tfjs-measure.js';

/** The model's real inputs (graph inputs that are not initializers). */
export function modelInputNames(model: ModelProto): string[] {
  const graph = model.graph;
  if (!graph) return [];
  const inits = new Set(graph.initializer.map((t) => t.name));
  return graph.input.map((i) => i.name).filter((n) => !inits.has(n));
}

async function readFloat(file: string): Promise<{ data: Float32Array; dims: number[] }> {
  const a = readNpy(new Uint8Array(await readFile(file)), file);
  if (a.dtype !== 'float32') throw new CalibrationDataError(`expected float32, got ${a.dtype}`, file);
  return { data: a.data as Float32Array, dims: a.dims };
}

/**
 * Reads a folder of inputs, one feed per entry, in name order:
 * - a model with one input: every `*.npy` file is one input tensor (a batch is fine);
 * - a model with several: every subfolder is one feed holding `<input name>.npy` for each input.
 */
export async function readFeedsDir(dir: string, inputNames: readonly string[]): Promise<Feeds[]> {
  const entries = (await readdir(dir)).sort();
  const feeds: Feeds[] = [];
  if (inputNames.length === 1) {
    const name = inputNames[0]!;
    for (const e of entries.filter((f) => f.endsWith('.npy') && f !== 'labels.npy')) {
      feeds.push({ [name]: { type: 'float32', ...(await readFloat(join(dir, e))) } });
    }
  } else {
    for (const e of entries) {
      const sub = join(dir, e);
      if (!(await stat(sub)).isDirectory()) continue;
      const feed: Feeds = {};
      for (const name of inputNames) feed[name] = { type: 'float32', ...(await readFloat(join(sub, `${name}.npy`))) };
      feeds.push(feed);
    }
  }
  if (feeds.length === 0) {
    throw new CalibrationDataError(
      inputNames.length === 1 ? 'no .npy files' : `no subfolders with ${inputNames.join(', ')} .npy files`,
      dir,
    );
  }
  return feeds;
}

/** Reads integer labels (int32/int64/float32 .npy), one per row of the evaluation outputs. */
export async function readLabels(file: string): Promise<number[]> {
  return Array.from(readNpy(new Uint8Array(await readFile(file)), file).data);
}

async function readTensor(file: string): Promise<TfjsTensor> {
  const a = readNpy(new Uint8Array(await readFile(file)), file);
  if (a.dtype === 'float32') return { type: 'float32', data: a.data as Float32Array, dims: a.dims };
  return { type: 'int32', data: a.dtype === 'int32' ? (a.data as Int32Array) : Int32Array.from(a.data), dims: a.dims };
}

/**
 * Reads a folder of TF.js model inputs in the layout of {@link readFeedsDir}; float32 stays
 * float32, int32 and int64 become int32 (MoveNet takes int32 pixels).
 */
export async function readTfjsFeedsDir(dir: string, inputNames: readonly string[]): Promise<TfjsFeed[]> {
  const entries = (await readdir(dir)).sort();
  const feeds: TfjsFeed[] = [];
  if (inputNames.length === 1) {
    for (const e of entries.filter((f) => f.endsWith('.npy') && f !== 'labels.npy'))
      feeds.push({ [inputNames[0]!]: await readTensor(join(dir, e)) });
  } else {
    for (const e of entries) {
      const sub = join(dir, e);
      if (!(await stat(sub)).isDirectory()) continue;
      const feed: TfjsFeed = {};
      for (const name of inputNames) feed[name] = await readTensor(join(sub, `${name}.npy`));
      feeds.push(feed);
    }
  }
  if (feeds.length === 0) throw new CalibrationDataError('no .npy inputs', dir);
  return feeds;
}
