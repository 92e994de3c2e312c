// The models the bench runs and the one fixed input each is fed, so every peer computes the
// same thing. Tensors are Outpost's `{ type, data, dims }`; `toOrt` turns them into ORT's.

/** An image-like 1x3x320x320 pattern (stripes and a gradient), as the parity spec feeds. */
function ocrImage() {
  const data = new Float32Array(3 * 320 * 320);
  for (let i = 0; i < data.length; i++) {
    data[i] = ((i % 320) / 320) * 0.5 + (Math.floor(i / 320) % 16 < 8 ? 0.4 : -0.4);
  }
  return { x: { type: 'float32', data, dims: [1, 3, 320, 320] } };
}

/** A 28x28 "stroke": a vertical bar, values in [0, 1] like a normalised digit. */
function digitImage() {
  const data = new Float32Array(28 * 28);
  for (let y = 4; y < 24; y++) for (let x = 12; x < 16; x++) data[y * 28 + x] = 1;
  return { x: { type: 'float32', data, dims: [1, 1, 28, 28] } };
}

/** One 512-sample frame of a 440 Hz tone with a zero recurrent state, at 16 kHz. */
function audioFrame() {
  const input = new Float32Array(512);
  for (let i = 0; i < 512; i++) input[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 16000);
  return {
    input: { type: 'float32', data: input, dims: [1, 512] },
    state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
    sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
  };
}

/** Bench models by id: where the harness serves them and the feeds each run gets. */
export const MODELS = {
  'ppocr-det': { url: '/models/ppocr-det.onnx', version: '4', feeds: ocrImage },
  digits: { url: '/models/digits.onnx', version: '1', feeds: digitImage },
  'silero-vad': { url: '/models/silero-vad-v5.onnx', version: '5', feeds: audioFrame },
};

/** The bench model `id`, or a clear error naming the known ones. */
export function modelById(id) {
  const model = MODELS[id];
  if (!model) throw new Error(`Unknown bench model "${id}" (known: ${Object.keys(MODELS).join(', ')})`);
  return model;
}

/** Feeds with their own copies of every buffer, for callers that transfer (and so detach) them. */
export function copyFeeds(feeds) {
  const out = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = { ...t, data: t.data.slice() };
  return out;
}

/** The same feeds as onnxruntime-web tensors (ORT copies them into its heap; no copy here). */
export function toOrt(ort, feeds) {
  const out = {};
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor(t.type, t.data, t.dims);
  return out;
}
