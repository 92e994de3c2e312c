/**
 * The smallest ONNX model: one Identity op on a float32 [1] tensor (ir_version 8, opset 13).
 * Opening it makes onnxruntime-web load and compile its wasm (and, on WebGPU, acquire the device)
 * before the app's model is opened, so start-up can be measured step by step and the engine is
 * known to work before a large model is parsed. Encoded with onnx-proto; warmup-model.test.ts
 * rebuilds it with onnx-proto and checks these bytes.
 */
export const WARMUP_MODEL_BASE64 =
  'CAgSB291dHBvc3Q6PAoQCgF4EgF5IghJZGVudGl0eRIGd2FybXVwWg8KAXgSCgoICAESBAoCCAFiDwoBeRIKCggIARIECgIIAUIECgAQDQ==';

/** The warm-up model's bytes. */
export function warmupModel(): Uint8Array {
  return Uint8Array.from(atob(WARMUP_MODEL_BASE64), (c) => c.charCodeAt(0));
}
