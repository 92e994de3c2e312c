export { collectRanges } from './calibrate.js';
export type { CalibrationMethod, Range } from './calibrate.js';
export { CalibrationDataError, ModelReadError, UnsupportedModelError } from './errors.js';
export { normalizeModel, TARGET_OPSET } from './normalize.js';
export type { NormalizeSummary } from './normalize.js';
export { readNpy, writeNpy } from './npy.js';
export type { NpyArray } from './npy.js';
export { cloneModel, decodeModel, encodeModel } from './onnx.js';
export type { ModelProto } from './onnx.js';
export { insertQdq, qdqCandidates, qdqTensors, QDQ_OPS } from './qdq.js';
export type { QdqPlan } from './qdq.js';
export { dequantizedWeight, quantizeWeights, weightSlot, weightTensors, WEIGHT_OPS } from './weights.js';
export type { QuantizedWeightInfo, WeightSlot, WeightTensor } from './weights.js';
export { weightSensitivity } from './sensitivity.js';
export type { WeightSensitivity } from './sensitivity.js';
export { Session, runAll, median, quantile, timeInterleaved } from './runtime.js';
export type { Feeds, FloatTensor, Outputs } from './runtime.js';
export { accuracy, compareOutputs, relativeError } from './evaluate.js';
export type { OutputError } from './evaluate.js';
export { opGroup, quantize, QUANTIZE_DEFAULTS } from './quantize.js';
export type {
  GroupChoice,
  KeepFloatOptions,
  ProgressEvent,
  QuantizeMode,
  QuantizeOptions,
  QuantizeReport,
  QuantizeResult,
  WeightChoice,
} from './quantize.js';
export { formatReport } from './report.js';
export { modelInputNames, readFeedsDir, readLabels, readTfjsFeedsDir } from './npy-dir.js';
export {
  affineParams,
  formatTfjsReport,
  fromFloat16,
  quantizeTfjs,
  TFJS_QUANTIZE_DEFAULTS,
  toFloat16,
  uint8Params,
} from './tfjs.js';
export type {
  TfjsMixedReport,
  TfjsModelJson,
  TfjsQuantizeOptions,
  TfjsQuantizeReport,
  TfjsQuantizeResult,
  TfjsWeightDtype,
  TfjsWeightEntry,
  TfjsWeightReport,
  TfjsWeightsGroup,
} from './tfjs.js';
export { outputError, tfjsInputNames } from './tfjs-measure.js';
export type { TfjsErrorMetric, TfjsFeed, TfjsTensor } from './tfjs-measure.js';
