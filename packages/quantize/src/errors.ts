/** A model the quantizer cannot handle (an opset or op pattern it does not rewrite). */
export class UnsupportedModelError extends Error {
  /** Stable error code. */
  readonly code = 'UNSUPPORTED_MODEL';
  override readonly name = 'UnsupportedModelError';
  constructor(
    message: string,
    /** The node (or tensor) the problem is about, if any. */
    readonly node?: string,
  ) {
    super(message);
  }
}

/** Calibration or evaluation data that does not fit the model (missing, wrong dtype, bad .npy). */
export class CalibrationDataError extends Error {
  /** Stable error code. */
  readonly code = 'CALIBRATION_DATA';
  override readonly name = 'CalibrationDataError';
  constructor(
    message: string,
    /** The file the problem is about, if any. */
    readonly file?: string,
  ) {
    super(message);
  }
}

/** Bytes that are not a readable ONNX model (truncated, corrupt, absurd protobuf lengths). */
export class ModelReadError extends Error {
  /** Stable error code. */
  readonly code = 'MODEL_FORMAT';
  override readonly name = 'ModelReadError';
}
