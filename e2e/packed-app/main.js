// A new app as a user writes it against the published packages: no harness, no workspace links.
// e2e/packed-app.spec.ts copies this folder to a temp dir, adds public/silero_vad_v5.onnx and
// installs the packed tarballs. The result goes to #result as JSON, errors included, so a
// failure shows its message rather than a timeout.
import { createRuntime } from '@outpost/runtime';

const result = document.getElementById('result');

async function main() {
  // wasm only: headless Chromium may offer a (software) WebGPU adapter, and this app checks the
  // path every browser has.
  const runtime = await createRuntime({ backends: ['wasm'] });
  try {
    const vad = await runtime.load({ name: 'silero-vad', version: '5', url: '/silero_vad_v5.onnx' });
    // One 32 ms frame at 16 kHz of a 440 Hz tone, from silence (zero state).
    const frame = new Float32Array(512);
    for (let i = 0; i < frame.length; i++) frame[i] = 0.3 * Math.sin((2 * Math.PI * 440 * i) / 16000);
    const out = await vad.run({
      input: { type: 'float32', data: frame, dims: [1, 512] },
      state: { type: 'float32', data: new Float32Array(2 * 128), dims: [2, 1, 128] },
      sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
    });
    return {
      ok: true,
      backend: vad.backend,
      probability: out.output.data[0],
      outputDims: out.output.dims,
      stateDims: out.stateN.dims,
      crossOriginIsolated,
    };
  } finally {
    await runtime.close();
  }
}

main().then(
  (r) => {
    result.textContent = JSON.stringify(r);
  },
  (e) => {
    result.textContent = JSON.stringify({ ok: false, error: `${e?.name}: ${e?.message}`, code: e?.code });
  },
);
