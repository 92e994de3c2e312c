export { ORT_VERSION, onnxEngine, toDims } from './engine.js';
export { checkOnnx, looksLikeOnnx } from './onnx-format.js';
