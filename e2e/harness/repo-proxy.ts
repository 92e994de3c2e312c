import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Plugin } from 'vite';

/**
 * Faults the proxy injects between the page and the repository server (RELIABILITY U rows).
 * Each `match` is a substring of the repository path (`metadata/timestamp.json`, `targets/…`).
 */
export interface RepoFaults {
  /** Every request fails at the socket, as with the network gone. */
  offline?: boolean;
  /** Flips one byte in the middle of matching bodies (a tampered blob or metadata file). */
  tamper?: string;
  /** Answers matching requests with an HTML page and status 200 (a captive portal). */
  html?: string;
  /** Sends matching bodies at this rate (to cut or reload mid-download). */
  throttle?: { match: string; bytesPerSec: number };
  /** Closes the connection of the next matching response after this many body bytes (once). */
  cutAt?: { match: string; bytes: number };
  /**
   * Stops sending matching bodies at this byte of the file (counting a Range request from its
   * start) and holds the connection open: the moment to kill a tab "at byte N" exactly.
   */
  stallAt?: { match: string; bytes: number };
  /** Drops the Range header of matching requests (a server that ignores Range). */
  ignoreRange?: string;
  /** Answers matching requests with an endless body (JSON-looking bytes until the page hangs up). */
  endless?: string;
  /** Answers matching requests with these bytes (base64), status 200. */
  replace?: { match: string; base64: string };
}

/** One proxied request: what was asked and how many body bytes went to the page. */
export interface RepoRequest {
  path: string;
  range?: string;
  status?: number;
  sent: number;
}

/**
 * `/repo/*` on the harness origin forwards to the repository server a spec starts (`outpost
 * serve`'s `createServer`), so the page reaches it under the harness's strict CSP
 * (`connect-src 'self'`), and the spec can inject faults. `POST /__repo` sets `{ target,
 * faults }`; `GET /__repo` returns the repository paths requested since the last POST.
 */
export function repoProxy(): Plugin {
  let target = '';
  let faults: RepoFaults = {};
  const log: RepoRequest[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const url = req.url ?? '';
    if (url.split('?')[0] === '/__repo') {
      if (req.method === 'POST') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          const cfg = JSON.parse(body) as { target?: string; faults?: RepoFaults; clearLog?: boolean };
          if (cfg.target !== undefined) target = cfg.target;
          faults = cfg.faults ?? {};
          if (cfg.clearLog !== false) log.length = 0;
          res.end('{}');
        });
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(url.includes('detail') ? log : log.map((r) => r.path)));
      return;
    }
    if (!url.startsWith('/repo/')) return next();
    const path = url.slice('/repo/'.length);
    const entry: RepoRequest = { path, sent: 0 };
    if (typeof req.headers.range === 'string') entry.range = req.headers.range;
    log.push(entry);
    if (faults.offline || !target) {
      req.socket.destroy();
      return;
    }
    if (faults.html && path.includes(faults.html)) {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><html><body>Please log in to the Wi-Fi</body></html>');
      return;
    }
    if (faults.replace && path.includes(faults.replace.match)) {
      const body = Buffer.from(faults.replace.base64, 'base64');
      entry.sent = body.length;
      res.setHeader('content-type', 'application/json');
      res.end(body);
      return;
    }
    if (faults.endless && path.includes(faults.endless)) {
      res.setHeader('content-type', 'application/json');
      const piece = Buffer.from(`{"a":"${'x'.repeat(16_000)}",`);
      const pump = () => {
        if (res.destroyed || entry.sent > 100_000_000) return void res.destroy();
        entry.sent += piece.length;
        if (res.write(piece)) setImmediate(pump);
        else res.once('drain', pump);
      };
      pump();
      return;
    }
    const headers: Record<string, string> = {};
    const dropRange = faults.ignoreRange !== undefined && path.includes(faults.ignoreRange);
    for (const h of dropRange ? ['if-none-match'] : ['range', 'if-none-match', 'if-range']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    fetch(`${target}/${path}`, { method: req.method, headers })
      .then(async (upstream) => {
        let body = Buffer.from(await upstream.arrayBuffer());
        if (faults.tamper && path.includes(faults.tamper) && body.length > 0) {
          body = Buffer.from(body);
          body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
        }
        res.statusCode = upstream.status;
        entry.status = upstream.status;
        for (const [k, v] of upstream.headers) {
          if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k)) {
            res.setHeader(k, v);
          }
        }
        res.setHeader('content-length', String(body.length));
        const cut = faults.cutAt && path.includes(faults.cutAt.match) ? faults.cutAt.bytes : undefined;
        if (cut !== undefined) faults.cutAt = undefined;
        const rate = faults.throttle && path.includes(faults.throttle.match) ? faults.throttle.bytesPerSec : 0;
        const from = Number(/^bytes=(\d+)-/.exec(entry.range ?? '')?.[1] ?? 0);
        const stall =
          faults.stallAt && path.includes(faults.stallAt.match) ? Math.max(0, faults.stallAt.bytes - from) : undefined;
        if (cut === undefined && rate === 0 && stall === undefined) {
          entry.sent = body.length;
          res.end(body);
          return;
        }
        // Paced in 10 ms steps; stops early at the cut (the connection just closes).
        const step = rate > 0 ? Math.max(1, Math.round(rate / 100)) : body.length;
        const limit = Math.min(body.length, cut ?? body.length);
        const pump = () => {
          if (res.destroyed) return;
          const n = Math.min(step, limit - entry.sent, stall === undefined ? Infinity : stall - entry.sent);
          if (stall !== undefined && entry.sent >= stall) return; // held open until the page goes
          if (n > 0) {
            res.write(body.subarray(entry.sent, entry.sent + n));
            entry.sent += n;
          }
          if (entry.sent >= body.length) res.end();
          else if (entry.sent >= limit) res.destroy();
          else setTimeout(pump, rate > 0 ? 10 : 0);
        };
        pump();
      })
      .catch(() => req.socket.destroy());
  };
  return {
    name: 'outpost-repo-proxy',
    configureServer(server) {
      server.middlewares.use(handle);
    },
    configurePreviewServer(server) {
      server.middlewares.use(handle);
    },
  };
}
