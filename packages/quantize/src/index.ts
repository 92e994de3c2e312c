export { CalibrationDataError, UnsupportedModelError } from './errors.js';
export { normalizeModel, TARGET_OPSET } from './normalize.js';
export type { NormalizeSummary } from './normalize.js';
export { decodeModel, encodeModel } from './onnx.js';
export type { ModelProto } from './onnx.js';
export { quantizeWeights, weightSlot, WEIGHT_OPS } from './weights.js';
export type { QuantizedWeightInfo, WeightSlot } from './weights.js';
export { Session, runAll, median } from './runtime.js';
export type { Feeds, FloatTensor, Outputs } from './runtime.js';
