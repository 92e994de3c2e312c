// The heavy half of the engine, imported on first use: TF.js core, the converter (graph models),
// layers (Keras models) and the IOHandler. Backends are imported separately, each when chosen.
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import { loadLayersModel, type LayersModel } from '@tensorflow/tfjs-layers';
import type { ModelBytes } from '@outpost/core';
import { storedModelHandler } from './io-handler.js';
import type { TfjsModelKind } from './tfjs-format.js';

export { tf };
export type { GraphModel, LayersModel };

/** Loads a stored model with the TF.js loader for its kind, on the active backend. */
export async function loadStoredModel(model: ModelBytes, kind: TfjsModelKind): Promise<GraphModel | LayersModel> {
  const handler = storedModelHandler(model);
  return kind === 'graph' ? loadGraphModel(handler) : loadLayersModel(handler);
}
