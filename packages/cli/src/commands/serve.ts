import { stat } from 'node:fs/promises';
import { createServer } from '@outpost/server';
import type { Command } from '../cli.js';
import { UsageError } from '../cli.js';
import { parse, required } from '../repo/options.js';

const usage = `usage: outpost serve --repo <dir> [--port 8080] [--host 127.0.0.1] [--log] [--json]

Serves a model repository over HTTP: /metadata/* (revalidated on every use) and /targets/*
(content-addressed, cached as immutable), with Range, ETag, CORS for any origin and
Cross-Origin-Resource-Policy: cross-origin. Runs until interrupted (Ctrl-C).

options:
  --port <n>     the port (default 8080; 0 picks a free one)
  --host <h>     the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)
  --log          log each request (JSON lines on stdout)
  --json         print the address as JSON`;

/** Aborts on the first SIGINT or SIGTERM (used when the caller gives no signal). */
function processStop(): AbortSignal {
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return ac.signal;
}

/** `outpost serve`. */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'serve a model repository (Range, ETag, immutable blobs, CORS)',
  usage,
  async run(args, io) {
    const { values: v } = parse(args, {
      repo: { type: 'string' },
      port: { type: 'string', default: '8080' },
      host: { type: 'string', default: '127.0.0.1' },
      log: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    });
    required(v, 'repo');
    const port = Number(v.port);
    if (!/^[0-9]+$/.test(v.port) || port > 65535) throw new UsageError('--port must be 0 to 65535');
    if (!(await stat(`${v.repo}/metadata`).catch(() => null))?.isDirectory()) {
      throw new Error(`${v.repo} is not a repository (no metadata/ folder; outpost init makes one)`);
    }
    const signal = io.signal ?? processStop();
    const app = createServer({ repo: v.repo!, logger: v.log });
    const address = await app.listen({ port, host: v.host });
    io.out(v.json ? JSON.stringify({ url: address, repo: v.repo }) : `serving ${v.repo} at ${address}`);
    if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    await app.close();
    return 0;
  },
};
