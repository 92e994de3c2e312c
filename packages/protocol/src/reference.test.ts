import { describe, expect, it } from 'vitest';
import { utf8 } from './encoding.js';
import { sha256Hex } from './hash.js';
import { parseMetadata } from './parse.js';
import { referencePath, targetUrlPath } from './paths.js';
import { releaseOf } from './release.js';
import { addRelease } from './repository.js';
import { decodeReference } from './telemetry.js';
import { MemoryRepo } from './test-repo.js';

const T0 = Date.UTC(2026, 10, 1);
const REFERENCE = { tensors: { logits: { edges: [-10, 0, 10], counts: [40, 60] } } };

describe('drift reference in the repository', () => {
  it('is signed as models/<name>/<version>/reference.json and the release names it', async () => {
    const repo = await MemoryRepo.create(T0);
    const bytes = utf8(JSON.stringify(REFERENCE));
    repo.apply(
      await addRelease(
        repo.state,
        {
          model: 'digits',
          version: '1.0.0',
          files: [{ variant: 'fp32', file: 'd.onnx', format: 'onnx', primary: true, bytes: new Uint8Array(100) }],
          reference: bytes,
        },
        repo.signers,
        T0,
      ),
    );
    // The signed targets survive the strict parser the clients use, reference entry included.
    const file = `metadata/${repo.state.targets.signed.version}.targets.json`;
    const targets = parseMetadata('targets', repo.files.get(file)!).signed;
    const release = releaseOf(targets, 'digits', '1.0.0')!;
    const sha256 = await sha256Hex(bytes);
    expect(release.reference).toEqual({
      path: referencePath('digits', '1.0.0'),
      url: targetUrlPath('models/digits/1.0.0/reference.json', sha256),
      length: bytes.length,
      sha256,
    });
    expect(decodeReference(repo.files.get(release.reference!.url)!)).toEqual(REFERENCE);
  });

  it('refuses a reference whose bins do not line up', async () => {
    expect(() => decodeReference('{"tensors":{"y":{"edges":[0,1],"counts":[1,2]}}}')).toThrow(/one longer/);
    expect(() => decodeReference('{"tensors":{"y":{"edges":[0,2,1],"counts":[1,2]}}}')).toThrow(/ascending/);
    expect(() => decodeReference('{"tensors":{"y":{"edges":[0,1,2],"counts":[1,-2]}}}')).toThrow(/negative/);
    expect(() => decodeReference('[]')).toThrow(/tensors/);
    const repo = await MemoryRepo.create(T0);
    await expect(
      addRelease(
        repo.state,
        {
          model: 'digits',
          version: '1.0.0',
          files: [{ variant: 'fp32', file: 'd.onnx', format: 'onnx', primary: true, bytes: new Uint8Array(1) }],
          reference: utf8('{"tensors":{}'),
        },
        repo.signers,
        T0,
      ),
    ).rejects.toThrow(/JSON/);
  });
});
