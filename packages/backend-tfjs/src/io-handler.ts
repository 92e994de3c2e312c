import { ModelFormatError, type ModelBytes } from '@outpost/core';
import { io } from '@tensorflow/tfjs-core';
import { parseModelJson } from './tfjs-format.js';

/** The bytes of a file as an `ArrayBuffer` of exactly its length (a copy only when it is a view). */
function ownBuffer(data: Uint8Array): ArrayBuffer {
  const buf = data.buffer;
  if (buf instanceof ArrayBuffer && data.byteOffset === 0 && data.byteLength === buf.byteLength) return buf;
  return data.slice().buffer;
}

/**
 * A tf.io `IOHandler` over a model read from the Outpost store: the model.json is the graph and
 * the weight shards are the companion files, found by the paths the manifest names. TF.js then
 * decodes the weights itself, including uint8/uint16/float16-quantized ones. Shards are handed
 * over as a list rather than concatenated, so a large model is not copied once more.
 */
export function storedModelHandler(model: ModelBytes): io.IOHandler {
  return {
    load: async () => {
      const json = parseModelJson(model.graph);
      if (!json) throw new ModelFormatError('The model is not a TF.js model.json');
      const shards = new Map(model.external.map((f) => [f.path, f.data]));
      return io.getModelArtifactsForJSON(json as unknown as io.ModelJSON, async (manifest) => {
        const specs: io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const path of group.paths) {
            const data = shards.get(path);
            if (!data)
              throw new ModelFormatError(`model.json names weight file "${path}", which is not stored with it`);
            buffers.push(ownBuffer(data));
          }
        }
        return [specs, buffers];
      });
    },
  };
}
