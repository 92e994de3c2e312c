import { MetadataError, ModelFormatError } from '@outpost/core';
import { describe, expect, it } from 'vitest';
import { utf8 } from './encoding.js';
import { generateKey } from './keys.js';
import type { Envelope, Timestamp } from './metadata.js';
import { releaseOf, decideChannel, rolloutBucket } from './release.js';
import { addRelease, encodeEnvelope, rotateRoot, setChannel } from './repository.js';
import { signMetadata } from './sign.js';
import { MemoryRepo } from './test-repo.js';
import { TrustedSet, refreshMetadata } from './trust.js';

const T0 = Date.UTC(2026, 10, 1);
const DAY = 86400_000;

const bytesOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

async function publish(repo: MemoryRepo, version: string, now = T0, seed = 1) {
  repo.apply(
    await addRelease(
      repo.state,
      {
        model: 'digits',
        version,
        files: [{ variant: 'fp32', file: 'digits.onnx', format: 'onnx', primary: true, bytes: bytesOf(3000, seed) }],
      },
      repo.signers,
      now,
    ),
  );
}

async function point(repo: MemoryRepo, version: string, rolloutBp = 10000, previous?: string, now = T0) {
  const p = { channel: 'stable', model: 'digits', version, rolloutBp, ...(previous ? { previous } : {}) };
  repo.apply(await setChannel(repo.state, p, repo.signers, now));
}

async function setup() {
  const repo = await MemoryRepo.create(T0);
  await publish(repo, '1.0.0');
  await point(repo, '1.0.0');
  const trusted = await TrustedSet.fromRoot(repo.rootText());
  await refreshMetadata(trusted, repo.fetcher, T0 + 1000);
  return { repo, trusted };
}

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof MetadataError ? e.code : `other: ${String(e)}`),
  );

describe('TUF client rules (U3-U9)', () => {
  it('follows a fresh repository to its release and channel pointer', async () => {
    const { trusted } = await setup();
    expect(trusted.targets?.version).toBe(2);
    const release = releaseOf(trusted.targets!, 'digits', '1.0.0');
    expect(release?.variants[0]?.files[0]).toMatchObject({ name: 'digits.onnx', length: 3000 });
    const d = await decideChannel(trusted.targets!, trusted.channels, 'stable', 'digits', 'device-1');
    expect(d).toMatchObject({ version: '1.0.0', inRollout: true });
  });

  it('U3 rejects a bad signature, an unknown key, too few signatures, and one signature repeated', async () => {
    const { repo, trusted } = await setup();
    const ts = repo.state.timestamp;
    const next: Timestamp = { ...ts.signed, version: ts.signed.version + 1 };
    const good = await signMetadata(next, repo.keys.timestamp);
    const sig = good.signatures[0]!;
    const stranger = await generateKey();
    const foreign = await signMetadata(next, [stranger]);
    const cases: Envelope<Timestamp>[] = [
      { signed: next, signatures: [{ keyid: sig.keyid, sig: sig.sig.replace(/.$/, (c) => (c === '0' ? '1' : '0')) }] },
      { signed: { ...next, version: next.version + 1 }, signatures: good.signatures },
      foreign,
      { signed: next, signatures: [] },
    ];
    for (const env of cases) {
      expect(await code(trusted.acceptTimestamp(encodeEnvelope(env), T0))).toBe('METADATA_SIGNATURE');
    }
    // Threshold 2 cannot be reached by one key's signature twice (or under a second key id).
    const root2 = await signMetadata(
      {
        ...repo.state.root.signed,
        roles: { ...repo.state.root.signed.roles, timestamp: { keyids: [sig.keyid, 'f'.repeat(64)], threshold: 2 } },
        keys: { ...repo.state.root.signed.keys, ['f'.repeat(64)]: repo.keys.timestamp[0]!.public },
      },
      repo.keys.root,
    );
    const t2 = await TrustedSet.fromRoot(encodeEnvelope(root2));
    const doubled = { signed: next, signatures: [sig, sig, { keyid: 'f'.repeat(64), sig: sig.sig }] };
    expect(await code(t2.acceptTimestamp(encodeEnvelope(doubled), T0))).toBe('METADATA_SIGNATURE');
    expect(trusted.timestamp?.version).toBe(ts.signed.version);
  });

  it('U4 rejects older metadata, and the highest versions survive a restore', async () => {
    const { repo, trusted } = await setup();
    const old = repo.files.get('metadata/timestamp.json')!;
    await publish(repo, '1.1.0');
    await refreshMetadata(trusted, repo.fetcher, T0 + 2000);
    const restored = await TrustedSet.restore(repo.rootText(), JSON.parse(JSON.stringify(trusted.state())));
    expect(restored.timestamp?.version).toBe(trusted.timestamp?.version);
    expect(await code(restored.acceptTimestamp(old, T0 + 3000))).toBe('METADATA_ROLLBACK');
    // A replayed old snapshot cannot sneak in under a newer timestamp either.
    repo.files.set('metadata/timestamp.json', old);
    expect(await code(refreshMetadata(restored, repo.fetcher, T0 + 3000))).toBe('METADATA_ROLLBACK');
    expect(releaseOf(restored.targets!, 'digits', '1.1.0')).not.toBeNull();
  });

  it('U5 rejects the same version with different content, and the repository refuses to make it', async () => {
    const { repo, trusted } = await setup();
    const ts = repo.state.timestamp.signed;
    const other = await signMetadata({ ...ts, expires: '2030-01-01T00:00:00Z' }, repo.keys.timestamp);
    expect(await code(trusted.acceptTimestamp(encodeEnvelope(other), T0))).toBe('METADATA_ROLLBACK');
    await expect(publish(repo, '1.0.0', T0, 9)).rejects.toThrow(/already published/);
  });

  it('U6 expired timestamp: no update, trusted metadata kept; one fixed time per cycle', async () => {
    const { repo, trusted } = await setup();
    await publish(repo, '1.1.0');
    const later = T0 + 2 * DAY; // the timestamp lives one day
    expect(await code(refreshMetadata(trusted, repo.fetcher, later))).toBe('METADATA_EXPIRED');
    expect(releaseOf(trusted.targets!, 'digits', '1.1.0')).toBeNull();
    expect(releaseOf(trusted.targets!, 'digits', '1.0.0')).not.toBeNull();
  });

  it('U7 a clock years off: ahead cannot install, behind cannot revive expired or older metadata', async () => {
    const { repo, trusted } = await setup();
    await publish(repo, '1.1.0', T0 + 10_000);
    expect(await code(refreshMetadata(trusted, repo.fetcher, T0 + 5 * 365 * DAY))).toBe('METADATA_EXPIRED');
    // Clock fixed: the same repository installs.
    await refreshMetadata(trusted, repo.fetcher, T0 + 20_000);
    expect(releaseOf(trusted.targets!, 'digits', '1.1.0')).not.toBeNull();
    // Clock years back: metadata signed long ago that expired is valid-looking again by time,
    // but it is older than what is trusted, so version ordering still refuses it.
    const stale = await signMetadata(
      { ...repo.state.timestamp.signed, version: 1, expires: '2024-01-01T00:00:00Z' },
      repo.keys.timestamp,
    );
    expect(await code(trusted.acceptTimestamp(encodeEnvelope(stale), Date.UTC(2023, 0, 1)))).toBe('METADATA_ROLLBACK');
  });

  it('U8 mix-and-match: a targets file other than the one snapshot pins is rejected', async () => {
    const { repo, trusted } = await setup();
    await publish(repo, '1.1.0');
    const v = repo.state.targets.signed.version;
    // Swap in validly signed targets with the same version but other files (an attacker mixing releases).
    const forged = await signMetadata({ ...repo.state.targets.signed, targets: {} }, repo.keys.targets);
    repo.files.set(`metadata/${v}.targets.json`, encodeEnvelope(forged));
    expect(await code(refreshMetadata(trusted, repo.fetcher, T0 + 1000))).toBe('METADATA_MISMATCH');
    expect(releaseOf(trusted.targets!, 'digits', '1.0.0')).not.toBeNull();
  });

  it('U9 root rotation: N+1 signed by old and new keys is followed; new-keys-only or a skipped version is not', async () => {
    const { repo, trusted } = await setup();
    const newRoot = [await generateKey()];
    const newTs = [await generateKey()];
    const oldRoot = repo.keys.root;
    repo.apply(
      await rotateRoot(
        repo.state,
        { root: { keys: newRoot, threshold: 1 }, timestamp: { keys: newTs, threshold: 1 } },
        { ...repo.signers, oldRoot, root: newRoot, timestamp: newTs },
        T0,
      ),
    );
    repo.keys.root = newRoot;
    repo.keys.timestamp = newTs;
    // A client on root v1 follows to v2 and accepts the timestamp signed by the new key.
    const fresh = await TrustedSet.fromRoot(repo.rootText(1));
    const r = await refreshMetadata(fresh, repo.fetcher, T0 + 1000);
    expect(r.rootRotations).toBe(1);
    expect(fresh.root.version).toBe(2);

    // v3 signed by the new keys only (not by v2's threshold) is refused.
    const evil = await generateKey();
    const v3 = await signMetadata(
      {
        ...repo.state.root.signed,
        version: 3,
        keys: { [evil.keyid]: evil.public },
        roles: { ...repo.state.root.signed.roles, root: { keyids: [evil.keyid], threshold: 1 } },
      },
      [evil],
    );
    expect(await code(fresh.acceptRoot(encodeEnvelope(v3)))).toBe('METADATA_SIGNATURE');
    // Skipping a version (v4 after v2) is refused even when properly signed.
    const v4 = await signMetadata({ ...repo.state.root.signed, version: 4 }, newRoot);
    expect(await code(fresh.acceptRoot(encodeEnvelope(v4)))).toBe('METADATA_ROLLBACK');
    // The client that already had v1 and old timestamp keys: rotating timestamp keys resets
    // its trusted timestamp, so the next cycle accepts the new key's timestamp.
    await refreshMetadata(trusted, repo.fetcher, T0 + 2000);
    expect(trusted.root.version).toBe(2);
  });

  it('U10 malformed metadata (HTML, invalid UTF-8, wrong shape) is one typed error', async () => {
    const { trusted } = await setup();
    for (const bad of [
      utf8('<!doctype html><html>hi</html>'),
      Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]),
      utf8('{"signed": {"_type": "timestamp", "version": "2"}, "signatures": []}'),
      utf8('[]'),
    ]) {
      expect(await code(trusted.acceptTimestamp(bad, T0))).toBe('METADATA_FORMAT');
    }
  });
});

describe('channels delegation and rollout (U17)', () => {
  it('the channels key cannot sign anything outside channels/, nor point at an unsigned version', async () => {
    const { repo, trusted } = await setup();
    const c = repo.state.channels.signed;
    const sneaky = await signMetadata(
      {
        ...c,
        version: c.version + 1,
        targets: { ...c.targets, 'models/digits/9.9.9/fp32/digits.onnx': Object.values(c.targets)[0]! },
      },
      repo.keys.channels,
    );
    const bytes = encodeEnvelope(sneaky);
    // Pin it properly through snapshot/timestamp, as a compromised online key holder could.
    repo.files.set(`metadata/${c.version + 1}.channels.json`, bytes);
    const { sha256Hex } = await import('./hash.js');
    const snap = await signMetadata(
      {
        ...repo.state.snapshot.signed,
        version: repo.state.snapshot.signed.version + 1,
        meta: {
          ...repo.state.snapshot.signed.meta,
          'channels.json': { version: c.version + 1, length: bytes.length, hashes: { sha256: await sha256Hex(bytes) } },
        },
      },
      repo.keys.snapshot,
    );
    const snapBytes = encodeEnvelope(snap);
    repo.files.set(`metadata/${snap.signed.version}.snapshot.json`, snapBytes);
    const ts = await signMetadata(
      {
        ...repo.state.timestamp.signed,
        version: repo.state.timestamp.signed.version + 1,
        meta: {
          'snapshot.json': {
            version: snap.signed.version,
            length: snapBytes.length,
            hashes: { sha256: await sha256Hex(snapBytes) },
          },
        },
      },
      repo.keys.timestamp,
    );
    repo.files.set('metadata/timestamp.json', encodeEnvelope(ts));
    expect(await code(refreshMetadata(trusted, repo.fetcher, T0 + 1000))).toBe('METADATA_MISMATCH');
    await expect(point(repo, '2.0.0')).rejects.toThrow(/not published/);
  });

  it('U17 a device outside the rollout fraction stays on previous; buckets are stable and spread', async () => {
    const { repo, trusted } = await setup();
    await publish(repo, '1.1.0');
    await point(repo, '1.1.0', 1000, '1.0.0');
    await refreshMetadata(trusted, repo.fetcher, T0 + 1000);
    let inside = 0;
    for (let i = 0; i < 2000; i++) {
      const d = await decideChannel(trusted.targets!, trusted.channels, 'stable', 'digits', `device-${i}`);
      expect(d!.version).toBe(d!.inRollout ? '1.1.0' : '1.0.0');
      expect(d!.inRollout).toBe(d!.bucket < 1000);
      if (d!.inRollout) inside++;
    }
    // 10% of 2000 devices, binomial sd ~13: a window of +-4 sd.
    expect(inside).toBeGreaterThan(148);
    expect(inside).toBeLessThan(252);
    expect(await rolloutBucket('device-7', 'digits', '1.1.0')).toBe(await rolloutBucket('device-7', 'digits', '1.1.0'));
    expect(await rolloutBucket('device-7', 'digits', '1.1.0')).not.toBe(
      await rolloutBucket('device-7', 'digits', '1.2.0'),
    );
  });
});

describe('golden files', () => {
  it('round-trip tensors of several types', async () => {
    const { encodeGolden, decodeGolden } = await import('./golden.js');
    const g = {
      inputs: { x: { type: 'float32' as const, dims: [1, 3], data: Float32Array.of(1.5, -2, 3) } },
      outputs: { y: { type: 'int64' as const, dims: [2], data: BigInt64Array.of(7n, -1n) } },
      tolerance: 1e-4,
    };
    const back = decodeGolden(encodeGolden(g));
    expect(back.tolerance).toBe(1e-4);
    expect([...(back.inputs.x!.data as Float32Array)]).toEqual([1.5, -2, 3]);
    expect([...(back.outputs.y!.data as BigInt64Array)]).toEqual([7n, -1n]);
    expect(() =>
      decodeGolden(utf8('{"inputs":{"x":{"type":"float32","dims":[2],"base64":"AAAA"}},"outputs":{},"tolerance":0}')),
    ).toThrow(ModelFormatError);
  });
});
