import { expect, test } from '@playwright/test';
import { clearStore } from './helpers.js';

// Every harness response carries the strict policy (examples/shared/csp.ts STRICT_CSP), so
// all specs run under it; this one checks the policy is really in force, in the page and in the
// Outpost worker, and that loading and running a model violates nothing.

test('CSP: the runtime loads and runs a model under a strict policy without unsafe-eval', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  const response = await page.goto('/');
  const policy = response!.headers()['content-security-policy'] ?? '';
  expect(policy).toContain("script-src 'self' 'wasm-unsafe-eval'");
  expect(policy).not.toMatch(/'unsafe-eval'|'unsafe-inline'/);
  await page.waitForFunction(() => window.harnessReady === true);
  await clearStore(page);
  await page.evaluate(() => {
    (window as unknown as { violations: string[] }).violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      (window as unknown as { violations: string[] }).violations.push(`${e.violatedDirective} ${e.blockedURI}`),
    );
  });

  const workerResponse = page.waitForResponse((res) => res.url().includes('/worker/index.js'));
  const r = await page.evaluate(async () => {
    const rt = await window.outpost.createRuntime({ backends: ['wasm'], wasm: { numThreads: 2 } });
    const m = await rt.load({ name: 'vad', version: '5', url: '/models/silero-vad-v5.onnx' });
    const out = await m.run({
      input: { type: 'float32', data: new Float32Array(512), dims: [1, 512] },
      state: { type: 'float32', data: new Float32Array(256), dims: [2, 1, 128] },
      sr: { type: 'int64', data: new BigInt64Array([16000n]), dims: [] },
    });
    await rt.close();
    let pageEval = 'allowed';
    try {
      (0, eval)('1');
    } catch {
      pageEval = 'blocked';
    }
    // A worker served like Outpost's reports whether it may eval. (Playwright's worker.evaluate
    // goes through DevTools, which CSP does not govern, so the worker has to say it itself.)
    const workerEval = await new Promise<string>((resolve) => {
      const w = new Worker('/csp-probe-worker.js', { type: 'module' });
      w.onmessage = (e) => resolve(String(e.data));
      w.onerror = (e) => resolve(`error: ${e.message}`);
    });
    return { dims: out.output?.dims, pageEval, workerEval };
  });
  // Outpost's worker script is delivered under the same policy.
  expect((await workerResponse).headers()['content-security-policy']).toBe(policy);
  expect(r.dims).toEqual([1, 1]);
  // The policy is in force: eval is refused on the page and in the worker...
  expect(r.pageEval).toBe('blocked');
  expect(r.workerEval).toBe('blocked');
  // ...and nothing Outpost or onnxruntime-web did was refused.
  const domViolations = await page.evaluate(() => (window as unknown as { violations: string[] }).violations);
  expect(domViolations.filter((v) => !v.startsWith('script-src eval'))).toEqual([]);
  expect(violations.filter((v) => !/eval/.test(v))).toEqual([]);
});
