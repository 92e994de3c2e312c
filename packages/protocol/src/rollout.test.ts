import { describe, expect, it } from 'vitest';
import { decideChannel, releaseOf } from './release.js';
import { addRelease, setChannel } from './repository.js';
import { checkRolloutPlan, rolloutPlanOf, type RolloutPlan } from './rollout.js';
import { rolloutPlanPath } from './paths.js';
import { MemoryRepo } from './test-repo.js';
import { TrustedSet, refreshMetadata } from './trust.js';

const T0 = Date.UTC(2026, 10, 1);
const PLAN: RolloutPlan = {
  steps: [100, 500, 2500, 10000],
  minDevices: 20,
  minRuns: 500,
  maxErrorBp: 100,
  maxP95RatioPct: 150,
};
const file = (seed: number) => ({
  variant: 'fp32',
  file: 'digits.onnx',
  format: 'onnx' as const,
  primary: true,
  bytes: Uint8Array.from({ length: 2000 }, (_, i) => (i * 7 + seed) & 255),
});

describe('rollout plans in signed metadata', () => {
  it('refuses plans that are not ascending basis points ending at 10000, or carry fractions', () => {
    expect(checkRolloutPlan({ ...PLAN, extra: 1 })).toEqual(PLAN);
    expect(() => checkRolloutPlan({ ...PLAN, steps: [500, 100, 10000] })).toThrow(/ascending/);
    expect(() => checkRolloutPlan({ ...PLAN, steps: [100, 5000] })).toThrow(/10000/);
    expect(() => checkRolloutPlan({ ...PLAN, steps: [] })).toThrow(/steps/);
    expect(() => checkRolloutPlan({ ...PLAN, maxErrorBp: 1.5 })).toThrow(/maxErrorBp/);
    expect(() => checkRolloutPlan({ ...PLAN, maxErrorBp: 10001 })).toThrow(/maxErrorBp/);
    expect(() => checkRolloutPlan({ ...PLAN, minRuns: undefined })).toThrow(/minRuns/);
  });

  it('the plan is a target the offline targets key signs with its release; clients verify it and are unchanged by it', async () => {
    const repo = await MemoryRepo.create(T0);
    repo.apply(await addRelease(repo.state, { model: 'digits', version: '1.0.0', files: [file(1)] }, repo.signers, T0));
    const rel = { model: 'digits', version: '1.1.0', files: [file(2)], rolloutPlan: PLAN };
    const published = await addRelease(repo.state, rel, repo.signers, T0);
    repo.apply(published);
    const target = repo.state.targets.signed.targets[rolloutPlanPath('digits', '1.1.0')];
    expect(target?.custom?.outpost).toEqual({ kind: 'rollout-plan', model: 'digits', version: '1.1.0', ...PLAN });
    expect(rolloutPlanOf(repo.state.targets.signed, 'digits', '1.1.0')).toEqual(PLAN);
    expect(rolloutPlanOf(repo.state.targets.signed, 'digits', '1.0.0')).toBeNull();
    // The plan's bytes are what the target's hash signs.
    const blob = published.blobs.find((b) => b.path === rolloutPlanPath('digits', '1.1.0'))!;
    expect(JSON.parse(new TextDecoder().decode(blob.bytes))).toEqual(target!.custom!.outpost);

    repo.apply(
      await setChannel(
        repo.state,
        { channel: 'stable', model: 'digits', version: '1.1.0', rolloutBp: 100, previous: '1.0.0' },
        repo.signers,
        T0,
      ),
    );
    // A client (the runtime's TUF rules) accepts the repository; the release and the channel
    // decision are what they were without a plan.
    const trusted = await TrustedSet.fromRoot(repo.rootText());
    await refreshMetadata(trusted, repo.fetcher, T0 + 1000);
    expect(releaseOf(trusted.targets!, 'digits', '1.1.0')!.variants.map((v) => v.id)).toEqual(['fp32']);
    const d = await decideChannel(trusted.targets!, trusted.channels, 'stable', 'digits', 'device-1');
    expect(d?.version).toBe(d!.inRollout ? '1.1.0' : '1.0.0');
  });

  it('the online keys alone cannot sign a plan, nor change one, nor add a version', async () => {
    const repo = await MemoryRepo.create(T0);
    const online = { channels: repo.keys.channels, snapshot: repo.keys.snapshot, timestamp: repo.keys.timestamp };
    repo.apply(await addRelease(repo.state, { model: 'digits', version: '1.0.0', files: [file(1)] }, repo.signers, T0));
    const rel = { model: 'digits', version: '1.1.0', files: [file(2)], rolloutPlan: PLAN };
    await expect(addRelease(repo.state, rel, online, T0)).rejects.toThrow(/targets key/);
    repo.apply(await addRelease(repo.state, rel, repo.signers, T0));
    // A looser plan for a signed version is a new release of that version: refused outright.
    const looser = { ...rel, rolloutPlan: { ...PLAN, maxErrorBp: 10000 } };
    await expect(addRelease(repo.state, looser, repo.signers, T0)).rejects.toThrow(/already published/);
    await expect(
      setChannel(repo.state, { channel: 'stable', model: 'digits', version: '2.0.0', rolloutBp: 100 }, online, T0),
    ).rejects.toThrow(/not published/);
  });
});
