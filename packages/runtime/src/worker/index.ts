/// <reference lib="webworker" />
import { onnxEngine } from '@outpost/backend-onnx';
import * as Comlink from 'comlink';
import { WorkerRuntime } from './api.js';
import { registerEngine } from './engines.js';
import { installErrorTransfer } from '../shared/index.js';

installErrorTransfer();
registerEngine(onnxEngine);
Comlink.expose(new WorkerRuntime());
