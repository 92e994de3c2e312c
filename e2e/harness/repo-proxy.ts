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
  const log: string[] = [];
  const handle = (req: IncomingMessage, res: ServerResponse, next: () => void) => {
    const url = req.url ?? '';
    if (url === '/__repo') {
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
      res.end(JSON.stringify(log));
      return;
    }
    if (!url.startsWith('/repo/')) return next();
    const path = url.slice('/repo/'.length);
    log.push(path);
    if (faults.offline || !target) {
      req.socket.destroy();
      return;
    }
    if (faults.html && path.includes(faults.html)) {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><html><body>Please log in to the Wi-Fi</body></html>');
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['range', 'if-none-match', 'if-range']) {
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
        for (const [k, v] of upstream.headers) {
          if (!['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k))
            res.setHeader(k, v);
        }
        res.setHeader('content-length', String(body.length));
        res.end(body);
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
