import { ModelFormatError } from '@outpost/core';

/** Protobuf field number of `ModelProto.graph`. */
const GRAPH_FIELD = 7;

/**
 * Walks the top level of an ONNX `ModelProto` in protobuf wire format, without decoding it, and
 * throws {@link ModelFormatError} when the bytes cannot be one: an HTML page, truncated or random
 * bytes, a length that runs past the end. onnxruntime would reject them too, but only after its
 * wasm has started and with a message that does not say what is wrong. Costs one pass over the
 * field headers, not the payloads.
 */
export function checkOnnx(bytes: Uint8Array): void {
  if (bytes.length === 0) throw new ModelFormatError('The model file is empty');
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart().toLowerCase();
  if (head.startsWith('<!doctype') || head.startsWith('<html') || head.startsWith('<')) {
    throw new ModelFormatError('Expected an ONNX model but got an HTML or XML page');
  }
  let pos = 0;
  let sawGraph = false;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= bytes.length) throw new ModelFormatError('The model file is truncated');
      const b = bytes[pos++]!;
      // Multiplication keeps precision past 2^31, where bit shifts would wrap.
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new ModelFormatError('The model file is not an ONNX protobuf');
    }
  };
  while (pos < bytes.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new ModelFormatError('The model file is not an ONNX protobuf');
    switch (wire) {
      case 0:
        varint();
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const len = varint();
        if (field === GRAPH_FIELD) sawGraph = true;
        pos += len;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new ModelFormatError('The model file is not an ONNX protobuf');
    }
    if (pos > bytes.length) throw new ModelFormatError('The model file is truncated');
  }
  if (!sawGraph) throw new ModelFormatError('The ONNX model has no graph');
}

/** Cheap sniff: an ONNX ModelProto almost always opens with field 1 (ir_version) as a varint. */
export function looksLikeOnnx(bytes: Uint8Array): boolean {
  return bytes[0] === 0x08;
}
