import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from './server.js';

/** A raw HTTP request: the path goes on the wire exactly as given (fetch would normalize it). */
function raw(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('repository server', () => {
  let dir: string;
  let app: FastifyInstance;
  let port: number;
  const blob = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 13) & 255));
  const sha = createHash('sha256').update(blob).digest('hex');
  const blobUrl = `/targets/models/digits/1.0.0/fp32/${sha}.digits.onnx`;
  const secret = 'outside the repository';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'outpost-serve-'));
    const repo = join(dir, 'repo');
    await mkdir(join(repo, 'metadata'), { recursive: true });
    await mkdir(join(repo, 'targets/models/digits/1.0.0/fp32'), { recursive: true });
    await writeFile(join(repo, 'metadata/timestamp.json'), '{"signed":{}}\n');
    await writeFile(join(repo, 'metadata/1.root.json'), '{"signed":{"_type":"root"}}\n');
    await writeFile(join(repo, `targets/models/digits/1.0.0/fp32/${sha}.digits.onnx`), blob);
    await writeFile(join(dir, 'secret.txt'), secret);
    await writeFile(join(repo, 'metadata', '.tmp-abc'), 'half written');
    await symlink(join(dir, 'secret.txt'), join(repo, 'targets/models/digits/1.0.0/fp32/link.onnx'));
    app = createServer({ repo });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves metadata with no-cache, an ETag and 304 on revalidation', async () => {
    const a = await raw(port, '/metadata/timestamp.json');
    expect(a.status).toBe(200);
    expect(a.body.toString()).toBe('{"signed":{}}\n');
    expect(a.headers['cache-control']).toBe('no-cache');
    expect(a.headers['content-type']).toBe('application/json');
    const etag = a.headers.etag as string;
    expect(etag).toMatch(/^"[0-9a-f-]+"$/);
    const b = await raw(port, '/metadata/timestamp.json', { 'If-None-Match': etag });
    expect(b.status).toBe(304);
    expect(b.body.length).toBe(0);
    // Replaced by rename (as writeRepoChanges does): a new ETag, so no stale 304.
    await writeFile(join(dir, 'repo/metadata/timestamp.json.new'), '{"signed":{"v":2}}\n');
    const { rename } = await import('node:fs/promises');
    await rename(join(dir, 'repo/metadata/timestamp.json.new'), join(dir, 'repo/metadata/timestamp.json'));
    const c = await raw(port, '/metadata/timestamp.json', { 'If-None-Match': etag });
    expect(c.status).toBe(200);
    expect(c.body.toString()).toContain('"v":2');
  });

  it('serves blobs as immutable with their SHA-256 as ETag, Range (206/416) and HEAD', async () => {
    const full = await raw(port, blobUrl);
    expect(full.status).toBe(200);
    expect(Buffer.compare(full.body, blob)).toBe(0);
    expect(full.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(full.headers.etag).toBe(`"${sha}"`);
    expect(full.headers['accept-ranges']).toBe('bytes');
    expect(full.headers['content-length']).toBe('5000');

    const part = await raw(port, blobUrl, { Range: 'bytes=100-199' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe('bytes 100-199/5000');
    expect(part.headers['content-length']).toBe('100');
    expect(Buffer.compare(part.body, blob.subarray(100, 200))).toBe(0);
    const tail = await raw(port, blobUrl, { Range: 'bytes=4990-' });
    expect(Buffer.compare(tail.body, blob.subarray(4990))).toBe(0);
    const suffix = await raw(port, blobUrl, { Range: 'bytes=-10' });
    expect(suffix.headers['content-range']).toBe('bytes 4990-4999/5000');

    const beyond = await raw(port, blobUrl, { Range: 'bytes=5000-' });
    expect(beyond.status).toBe(416);
    expect(beyond.headers['content-range']).toBe('bytes */5000');
    // If-Range with another ETag: the resource changed, so the whole file comes back.
    const changed = await raw(port, blobUrl, { Range: 'bytes=0-9', 'If-Range': '"other"' });
    expect(changed.status).toBe(200);
    expect(changed.body.length).toBe(5000);
    const same = await raw(port, blobUrl, { Range: 'bytes=0-9', 'If-Range': `"${sha}"` });
    expect(same.status).toBe(206);
    expect((await raw(port, blobUrl, { 'If-None-Match': `"${sha}"` })).status).toBe(304);

    const head = await raw(port, blobUrl, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('5000');
    expect(head.body.length).toBe(0);
  });

  it('lets any origin read it, cross-origin-isolated pages included', async () => {
    const res = await raw(port, blobUrl, { Origin: 'https://app.example' });
    expect(res.headers['access-control-allow-origin']).toBe('*');
    expect(res.headers['cross-origin-resource-policy']).toBe('cross-origin');
    const exposed = String(res.headers['access-control-expose-headers']).toLowerCase();
    for (const h of ['content-length', 'content-range', 'etag', 'accept-ranges']) expect(exposed).toContain(h);
    const pre = await raw(
      port,
      blobUrl,
      {
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'GET',
        'Access-Control-Request-Headers': 'range',
      },
      'OPTIONS',
    );
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect(String(pre.headers['access-control-allow-headers']).toLowerCase()).toContain('range');
  });

  it('V1 path traversal and odd names are 404, never a file outside the repository', async () => {
    const cases = [
      '/targets/../secret.txt',
      '/targets/../../secret.txt',
      '/targets/%2e%2e/%2e%2e/secret.txt',
      '/targets/%2E%2E%2F%2E%2E%2Fsecret.txt',
      '/targets/models/..%2f..%2f..%2fsecret.txt',
      '/metadata/..%2F..%2Fsecret.txt',
      '/metadata/%2e%2e/secret.txt',
      `/targets/${encodeURIComponent(join(dir, 'secret.txt'))}`,
      `/targets/${join(dir, 'secret.txt')}`,
      '/targets//etc/passwd',
      '/metadata//etc/passwd',
      '/targets/models\\..\\..\\secret.txt',
      '/targets/models/%5c..%5c..%5csecret.txt',
      '/metadata/timestamp.json%00.txt',
      '/targets/models/digits%00/x',
      '/metadata/.tmp-abc',
      '/metadata/%zz',
      '/targets/models/digits/1.0.0/fp32/link.onnx', // a symlink out of the repository
      '/targets/models/digits/1.0.0/fp32', // a folder
      '/targets/models',
      '/metadata/',
      '/secret.txt',
      '/../secret.txt',
    ];
    for (const path of cases) {
      const res = await raw(port, path);
      expect([path, res.status]).toEqual([path, 404]);
      expect(res.body.toString()).not.toContain(secret);
    }
  });
});
