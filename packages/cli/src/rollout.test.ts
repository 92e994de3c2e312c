import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from './cli.js';

async function outpost(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(args, { out: (t) => out.push(t), err: (t) => err.push(t), env: {} });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('outpost publish --rollout-plan, outpost rollout start|status|pause|abort', () => {
  let dir: string;
  let repo: string;
  let keys: string;
  let data: string;
  const repoArgs = () => ['--repo', repo, '--keys', keys, '--name', 'digits'];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-cli-rollout-'));
    repo = join(dir, 'repo');
    keys = join(dir, 'keys');
    data = join(dir, 'data');
    expect((await outpost('keygen', '--out', keys)).code).toBe(0);
    expect((await outpost('init', '--repo', repo, '--keys', keys)).code).toBe(0);
    for (const [v, seed] of [
      ['1', 1],
      ['2', 2],
    ] as const) {
      await writeFile(
        join(dir, `${v}.onnx`),
        Uint8Array.from({ length: 500 }, (_, i) => (i + seed) & 255),
      );
    }
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('publish refuses a plan with fractions, a bad order or thresholds without a plan', async () => {
    const base = ['publish', join(dir, '2.onnx'), ...repoArgs(), '--version', '2.0.0'];
    let r = await outpost(...base, '--rollout-plan', '100,50,10000');
    expect(r.code).toBe(2);
    expect(r.err).toContain('ascending');
    r = await outpost(...base, '--rollout-plan', '100,10000', '--max-error-bp', '1.5');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--max-error-bp takes whole numbers');
    r = await outpost(...base, '--max-error-bp', '50');
    expect(r.code).toBe(2);
    expect(r.err).toContain('--max-error-bp needs --rollout-plan');
  });

  it('publishes a plan with defaults filled in, starts, shows, pauses, resumes and aborts a rollout', async () => {
    expect(
      (await outpost('publish', join(dir, '1.onnx'), ...repoArgs(), '--version', '1.0.0', '--channel', 'stable')).code,
    ).toBe(0);
    const pub = await outpost(
      'publish',
      join(dir, '2.onnx'),
      ...repoArgs(),
      '--version',
      '2.0.0',
      '--rollout-plan',
      '500,2500,10000',
      '--min-devices',
      '5',
      '--max-p95-ratio-pct',
      '120',
      '--json',
    );
    expect(pub.err).toBe('');
    expect(JSON.parse(pub.out).rolloutPlan).toEqual({
      steps: [500, 2500, 10000],
      minDevices: 5,
      minRuns: 500,
      minStepSeconds: 0,
      maxErrorBp: 100,
      maxRollbackBp: 200,
      maxP95RatioPct: 120,
      maxDriftPsiMilli: 250,
    });
    const ch = ['--channel', 'stable', '--data', data];
    // Starting needs the version's plan and the online keys.
    let r = await outpost('rollout', 'start', ...repoArgs(), ...ch, '--version', '1.0.0');
    expect(r.code).toBe(1);
    expect(r.err).toContain('no signed rollout plan');
    r = await outpost('rollout', 'start', ...repoArgs(), ...ch, '--version', '2.0.0');
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^stable: digits@2\.0\.0 .* start +0\.00% → 5\.00% +operator/);

    r = await outpost('rollout', 'status', '--repo', repo, '--data', data);
    expect(r.out).toContain('stable: digits 2.0.0 at 5.00% (others: 1.0.0), running, step 1 of 3');
    expect(r.out).toContain('plan: 5.00% → 25.00% → 100.00%; at least 5 devices and 500 runs a step');
    expect(r.out).toContain('abort above: errors 1.00%, rollbacks 2.00%, p95 120% of previous, drift PSI 0.250');
    expect(r.out).toContain('this step: 0 devices, 0 runs, 0 errors (n/a)');

    expect((await outpost('rollout', 'pause', '--repo', repo, '--name', 'digits', ...ch)).code).toBe(0);
    r = await outpost('rollout', 'status', '--repo', repo, '--data', data, '--json');
    const [st] = JSON.parse(r.out).rollouts;
    expect(st).toMatchObject({ state: 'paused', rolloutBp: 500, step: 0, previous: '1.0.0' });
    expect(st.decisions.map((d: { action: string }) => d.action)).toEqual(['pause', 'start']);
    expect((await outpost('rollout', 'start', ...repoArgs(), ...ch, '--version', '2.0.0')).out).toContain('resume');

    r = await outpost('rollout', 'abort', ...repoArgs(), ...ch, '--reason', 'bad feeling', '--json');
    expect(JSON.parse(r.out)).toMatchObject({ action: 'abort', fromBp: 500, toBp: 0, message: 'bad feeling' });
    r = await outpost('verify', '--repo', repo, '--json');
    expect(r.code).toBe(0);
    // Back on 1.0.0, which has no plan: nothing left to show.
    expect((await outpost('rollout', 'status', '--repo', repo, '--data', data)).out).toBe(
      'no channel points at a version with a rollout plan',
    );
    expect((await outpost('rollout', 'widen', '--repo', repo)).code).toBe(2);
  });

  it('serve --rollout-keys runs the controller with the online keys; it needs telemetry', async () => {
    const r = await outpost('serve', '--repo', repo, '--rollout-keys', keys);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--rollout-keys needs telemetry');
    const ac = new AbortController();
    const out: string[] = [];
    const serving = run(
      ['serve', '--repo', repo, '--port', '0', '--data', data, '--rollout-keys', keys, '--rollout-interval', '1'],
      {
        out: (t) => out.push(t),
        err: () => undefined,
        env: { OUTPOST_DEVICE_TOKEN: 'd', OUTPOST_ADMIN_TOKEN: 'a' },
        signal: ac.signal,
      },
    );
    while (!out.length) await new Promise((res) => setTimeout(res, 20));
    expect(out[0]).toMatch(/; rollout controller every 1 s$/);
    const url = /at (http:\/\/\S+);/.exec(out[0]!)![1]!;
    const res = await fetch(`${url}/api/rollouts/evaluate`, { method: 'POST', headers: { authorization: 'Bearer a' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ decisions: [] });
    ac.abort();
    expect(await serving).toBe(0);
  });
});
