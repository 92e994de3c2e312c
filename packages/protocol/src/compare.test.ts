import { describe, expect, it } from 'vitest';
import { agreement, checkCompareSpec, compareSpecOf, iou, maxAbsDiff, parseCompareSpec } from './compare.js';
import { comparePath } from './paths.js';
import { abBucket, decideChannel, rolloutBucket } from './release.js';
import { addRelease, setChannel } from './repository.js';
import { MemoryRepo } from './test-repo.js';
import { TrustedSet, refreshMetadata } from './trust.js';

const T0 = Date.UTC(2026, 10, 1);
const t = (data: number[], dims = [1, data.length]) => ({ data: Float32Array.from(data), dims });
const file = (seed: number) => ({
  variant: 'fp32',
  file: 'digits.onnx',
  format: 'onnx' as const,
  primary: true,
  bytes: Uint8Array.from({ length: 2000 }, (_, i) => (i * 7 + seed) & 255),
});

describe('shadow comparison metrics', () => {
  it('top1: 1 when the arg max is the same, else 0; per row of a batch', () => {
    const spec = { metric: 'top1' as const, output: 'logits' };
    expect(agreement(spec, t([0.1, 0.7, 0.2]), t([0.3, 0.4, 0.3]))).toBe(1);
    expect(agreement(spec, t([0.1, 0.7, 0.2]), t([0.5, 0.4, 0.1]))).toBe(0);
    // Two rows of three: the first agrees, the second does not.
    expect(agreement(spec, t([0, 1, 0, 1, 0, 0], [2, 3]), t([0, 2, 1, 0, 0, 3], [2, 3]))).toBe(0.5);
    expect(agreement(spec, t([NaN, NaN, NaN]), t([0, 0, 1]))).toBe(0);
    // A NaN anywhere in a row: that row agrees with nothing, not even another NaN row.
    expect(agreement(spec, t([1, 0, 0]), t([NaN, 0, 0]))).toBe(0);
    expect(agreement(spec, t([NaN, 0, 0]), t([NaN, 0, 0]))).toBe(0);
  });

  it('maxabs: agreement when the largest difference is within the tolerance; NaN never agrees', () => {
    const spec = { metric: 'maxabs' as const, output: 'y', thresholdMilli: 50 };
    expect(maxAbsDiff(t([1, 2, 3]), t([1.01, 2.04, 3]))).toBeCloseTo(0.04, 5);
    expect(agreement(spec, t([1, 2, 3]), t([1.01, 2.04, 3]))).toBe(1);
    expect(agreement(spec, t([1, 2, 3]), t([1.01, 2.06, 3]))).toBe(0);
    expect(maxAbsDiff(t([1, 2]), t([1, NaN]))).toBe(Infinity);
    expect(agreement(spec, t([1, 2]), t([1, NaN]))).toBe(0);
  });

  it('iou: maps binarised at the threshold, intersection over union; both empty agree fully', () => {
    const a = t([0.9, 0.8, 0.1, 0.0, 0.7, 0.2]);
    const b = t([0.9, 0.1, 0.1, 0.6, 0.7, 0.2]);
    // a: {0,1,4}, b: {0,3,4}: intersection 2, union 4.
    expect(iou(a, b, 0.3)).toBe(0.5);
    expect(agreement({ metric: 'iou', output: 'maps', thresholdMilli: 300 }, a, b)).toBe(0.5);
    expect(iou(t([0, 0.1]), t([0.2, 0]), 0.3)).toBe(1);
    // A higher threshold keeps only 0.9 and 0.8 in a, 0.9 in b.
    expect(iou(a, b, 0.75)).toBe(0.5);
  });

  it('outputs of other sizes, or missing, do not agree', () => {
    const spec = { metric: 'top1' as const, output: 'logits' };
    expect(agreement(spec, t([1, 0]), t([1, 0, 0]))).toBe(0);
    expect(agreement(spec, undefined, t([1, 0]))).toBe(0);
  });

  it('specs: parsed from the CLI form, integers only, an output name that is a safe name', () => {
    expect(parseCompareSpec('top1:logits')).toEqual({ metric: 'top1', output: 'logits' });
    expect(parseCompareSpec('iou:maps:300')).toEqual({ metric: 'iou', output: 'maps', thresholdMilli: 300 });
    expect(parseCompareSpec('maxabs:y:5')).toEqual({ metric: 'maxabs', output: 'y', thresholdMilli: 5 });
    expect(() => parseCompareSpec('iou:maps:0.3')).toThrow(/thousandths/);
    expect(() => parseCompareSpec('iou:maps')).toThrow(/thresholdMilli/);
    expect(() => parseCompareSpec('psnr:maps:3')).toThrow(/metric/);
    expect(() => checkCompareSpec({ metric: 'top1', output: '../x' })).toThrow(/output name/);
  });
});

describe('shadow and A/B in signed channel pointers', () => {
  async function repoWith3() {
    const repo = await MemoryRepo.create(T0);
    repo.apply(await addRelease(repo.state, { model: 'digits', version: '1.0.0', files: [file(1)] }, repo.signers, T0));
    const compare = { metric: 'top1' as const, output: 'logits' };
    repo.apply(
      await addRelease(repo.state, { model: 'digits', version: '1.1.0', files: [file(2)], compare }, repo.signers, T0),
    );
    repo.apply(await addRelease(repo.state, { model: 'digits', version: '1.2.0', files: [file(3)] }, repo.signers, T0));
    return repo;
  }

  it('the comparison is signed offline with the release; the online key can name a shadow only among signed versions that have one', async () => {
    const repo = await repoWith3();
    const online = { channels: repo.keys.channels, snapshot: repo.keys.snapshot, timestamp: repo.keys.timestamp };
    expect(compareSpecOf(repo.state.targets.signed, 'digits', '1.1.0')).toEqual({ metric: 'top1', output: 'logits' });
    expect(repo.state.targets.signed.targets[comparePath('digits', '1.1.0')]).toBeDefined();
    const base = { channel: 'stable', model: 'digits', version: '1.0.0', rolloutBp: 10000 };
    await expect(
      setChannel(repo.state, { ...base, shadow: { version: '1.2.0', sampleBp: 1000 } }, online, T0),
    ).rejects.toThrow(/no signed comparison/);
    await expect(
      setChannel(repo.state, { ...base, shadow: { version: '9.9.9', sampleBp: 1000 } }, online, T0),
    ).rejects.toThrow(/not published/);
    await expect(
      setChannel(repo.state, { ...base, shadow: { version: '1.1.0', sampleBp: 10.5 } }, online, T0),
    ).rejects.toThrow(/sampleBp/);
    await expect(
      setChannel(repo.state, { ...base, ab: { version: '1.1.0', shareBp: 20000 } }, online, T0),
    ).rejects.toThrow(/shareBp/);
    repo.apply(await setChannel(repo.state, { ...base, shadow: { version: '1.1.0', sampleBp: 1000 } }, online, T0));
    const trusted = await TrustedSet.fromRoot(repo.rootText());
    await refreshMetadata(trusted, repo.fetcher, T0 + 1000);
    const d = await decideChannel(trusted.targets!, trusted.channels, 'stable', 'digits', 'device-1');
    expect(d).toMatchObject({ version: '1.0.0', arm: null, shadow: { version: '1.1.0', sampleBp: 1000 } });
  });

  it('A/B: arm by a bucket keyed on the channel (not the canary), stable per device, the share in arm B', async () => {
    const repo = await repoWith3();
    repo.apply(
      await setChannel(
        repo.state,
        {
          channel: 'stable',
          model: 'digits',
          version: '1.0.0',
          rolloutBp: 10000,
          ab: { version: '1.2.0', shareBp: 3000 },
          shadow: { version: '1.1.0', sampleBp: 1000 },
        },
        repo.signers,
        T0,
      ),
    );
    const trusted = await TrustedSet.fromRoot(repo.rootText());
    await refreshMetadata(trusted, repo.fetcher, T0 + 1000);
    let b = 0;
    let differ = 0;
    for (let i = 0; i < 2000; i++) {
      const id = `device-${i}`;
      const d = (await decideChannel(trusted.targets!, trusted.channels, 'stable', 'digits', id))!;
      const bucket = await abBucket(id, 'digits', 'stable');
      expect(d.arm).toBe(bucket < 3000 ? 'b' : 'a');
      expect(d.version).toBe(d.arm === 'b' ? '1.2.0' : '1.0.0');
      expect(d.shadow?.version).toBe('1.1.0');
      if (d.arm === 'b') b++;
      if (bucket !== (await rolloutBucket(id, 'digits', '1.0.0'))) differ++;
    }
    // 30% of 2000 devices, within about 4 standard deviations.
    expect(b).toBeGreaterThan(520);
    expect(b).toBeLessThan(680);
    expect(differ).toBeGreaterThan(1900);
  });

  it('a device running the shadow version live has no shadow', async () => {
    const repo = await repoWith3();
    repo.apply(
      await setChannel(
        repo.state,
        {
          channel: 'stable',
          model: 'digits',
          version: '1.1.0',
          rolloutBp: 10000,
          shadow: { version: '1.1.0', sampleBp: 500 },
        },
        repo.signers,
        T0,
      ),
    );
    const trusted = await TrustedSet.fromRoot(repo.rootText());
    await refreshMetadata(trusted, repo.fetcher, T0 + 1000);
    const d = await decideChannel(trusted.targets!, trusted.channels, 'stable', 'digits', 'device-1');
    expect(d).toMatchObject({ version: '1.1.0', shadow: null });
  });
});
