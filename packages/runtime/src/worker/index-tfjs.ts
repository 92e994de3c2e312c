/// <reference lib="webworker" />
// The worker behind `@outpost/runtime/tfjs`: the default worker plus the TF.js engine. It is a
// separate entry so that the default worker (src/worker/index.ts) never imports TF.js.
import { onnxEngine } from '@outpost/backend-onnx';
import { tfjsEngine } from '@outpost/backend-tfjs';
import * as Comlink from 'comlink';
import { WorkerRuntime } from './api.js';
import { registerEngine } from './engines.js';
import { installErrorTransfer } from '../shared/index.js';

installErrorTransfer();
registerEngine(onnxEngine);
registerEngine(tfjsEngine);
Comlink.expose(new WorkerRuntime());
