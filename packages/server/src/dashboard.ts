import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** The chart library's browser build, next to its entry (the package exports no such subpath). */
const CHART_JS = 'chart.umd.min.js';

/**
 * The fleet dashboard at `/`: one static page that asks for the admin token (kept in the tab's
 * sessionStorage), reads `/api/overview` every 10 s and draws it with Chart.js. Every value that
 * came from a device goes into the page as text, never as HTML. Its URLs are relative, so the
 * server can also be mounted under a path (the demo serves it at `/repo/`). Its style and code are
 * files of their own, never inline, so it works under a Content-Security-Policy without
 * 'unsafe-inline' (the demo serves it under the README's strict one).
 */
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Outpost fleet</title>
<link rel="stylesheet" href="dashboard/dashboard.css">
<script src="dashboard/chart.umd.min.js"></script>
</head>
<body>
<h1>Outpost fleet <span id="summary" class="muted"></span></h1>
<form id="login" hidden><label>Admin token <input id="token" type="password" autocomplete="off"></label> <button>Open</button></form>
<main id="main" hidden>
<div class="charts">
  <section><h2>Run latency, ms (p50 / p95) per model, version, backend</h2><canvas id="latency"></canvas></section>
  <section><h2>Devices per channel and version</h2><canvas id="versions"></canvas></section>
</div>
<h2>Errors</h2><table id="health"></table>
<h2>Canary rollouts</h2><table id="rollouts"></table>
<h2>Rollout decisions</h2><table id="decisions"></table>
<h2>A/B tests (B − A, 95% intervals)</h2><table id="ab"></table><p id="ab-method" class="muted"></p>
<h2>Update events</h2><table id="updates"></table>
<h2>Drift alerts</h2><table id="drift"></table>
<h2>Devices seen</h2><table id="devices"></table>
</main>
<script src="dashboard/dashboard.js"></script>
</body>
</html>
`;

/** The page's style (`dashboard/dashboard.css`). */
const STYLE = `body { font: 14px system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.6rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .6rem; border-bottom: 1px solid #ddd; text-align: left; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1.5rem; }
.muted { color: #777; } #login { margin: 2rem 0; }
`;

/** The page's code (`dashboard/dashboard.js`), a classic script run after Chart.js's. */
const SCRIPT = `const $ = (id) => document.getElementById(id);
const charts = {};
function table(id, head, rows) {
  const t = $(id);
  t.replaceChildren();
  const tr = t.insertRow();
  for (const h of head) { const th = document.createElement('th'); th.textContent = h; tr.append(th); }
  for (const r of rows) { const row = t.insertRow(); for (const c of r) row.insertCell().textContent = c == null ? '' : String(c); }
  if (!rows.length) t.insertRow().insertCell().textContent = 'none yet';
}
function bars(id, labels, datasets) {
  if (charts[id]) { charts[id].data.labels = labels; charts[id].data.datasets = datasets; charts[id].update(); return; }
  charts[id] = new Chart($(id), { type: 'bar', data: { labels, datasets }, options: { animation: false } });
}
const pct = (x) => (x == null ? '' : (100 * x).toFixed(1) + ' %');
const ms = (x) => (x == null ? '' : x.toFixed(2));
const when = (t) => new Date(t).toLocaleString();
const subject = (r) => [r.model, r.version, r.backend].filter(Boolean).join(' ');
async function refresh() {
  const token = sessionStorage.getItem('outpost-admin');
  if (!token) { $('login').hidden = false; $('main').hidden = true; return; }
  const res = await fetch('api/overview', { headers: { Authorization: 'Bearer ' + token } });
  if (res.status === 401) { sessionStorage.removeItem('outpost-admin'); return refresh(); }
  if (!res.ok) { $('summary').textContent = 'API: ' + res.status; return; }
  const o = await res.json();
  $('login').hidden = true; $('main').hidden = false;
  $('summary').textContent = o.devices.length + ' devices since ' + when(o.sinceMs);
  bars('latency', o.latency.map(subject), [
    { label: 'p50', data: o.latency.map((l) => l.p50) },
    { label: 'p95', data: o.latency.map((l) => l.p95) },
  ]);
  bars('versions', o.versions.map((v) => (v.channel ?? '-') + ': ' + v.model + ' ' + v.version), [
    { label: 'devices', data: o.versions.map((v) => v.devices) },
  ]);
  table('health', ['model / version / backend', 'runs', 'errors', 'error rate', 'by code', 'fallbacks'],
    o.health.map((h) => [subject(h), h.runs, h.errors, pct(h.errorRate), JSON.stringify(h.errorsByCode), h.fallbacks]));
  table('updates', ['model', 'version', 'devices', 'events', 'rolled back / activated'],
    o.updates.map((u) => [u.model, u.version, u.devices, JSON.stringify(u.events), pct(u.rollbackRate)]));
  const r = await fetch('api/rollouts', { headers: { Authorization: 'Bearer ' + token } });
  if (r.ok) {
    const ro = await r.json();
    const bp = (x) => (x / 100).toFixed(2) + ' %';
    table('rollouts', ['channel', 'model', 'canary', 'previous', 'share', 'step', 'state', 'plan'],
      ro.rollouts.map((x) => [x.channel, x.model, x.version, x.previous, bp(x.rolloutBp),
        x.step < 0 ? '' : (x.step + 1) + ' of ' + x.plan.steps.length, x.state, x.plan.steps.map(bp).join(' → ')]));
    const fig = (f) => (f ? [f.devices + ' devices', f.runs + ' runs', 'errors ' + (f.errorBp == null ? 'n/a' : bp(f.errorBp)),
      'rollbacks ' + (f.rollbackBp == null ? 'n/a' : bp(f.rollbackBp)), 'p95 ' + (f.p95RatioPct == null ? 'n/a' : f.p95RatioPct + ' %'),
      'PSI ' + (f.driftPsiMilli == null ? 'n/a' : (f.driftPsiMilli / 1000).toFixed(3)),
      'shadow ' + (f.shadowAgreementBp == null ? 'n/a' : bp(f.shadowAgreementBp) + ' of ' + f.shadowRuns)].join(', ') : '');
    table('decisions', ['when', 'channel', 'model', 'canary', 'action', 'share', 'reason', 'figures'],
      ro.decisions.slice(0, 100).map((d) => [when(d.timeMs), d.channel, d.model, d.version, d.action,
        bp(d.fromBp) + ' → ' + bp(d.toBp), d.message, fig(d.figures)]));
  }
  const ab = await fetch('api/ab', { headers: { Authorization: 'Bearer ' + token } });
  if (ab.ok) {
    const tests = (await ab.json()).tests;
    const ci = (i, f) => (i.value == null ? 'n/a' : f(i.value) + ' [' + (i.low == null ? 'n/a' : f(i.low)) + ', ' +
      (i.high == null ? 'n/a' : f(i.high)) + ']');
    const arm = (a) => a.version + ': ' + a.devices + ' devices (' + a.reportingDevices + ' reporting), ' + a.runs +
      ' runs, errors ' + ci(a.errorRate, pct) + ', p50 ' + ci(a.p50, ms) + ', p95 ' + ci(a.p95, ms) + (a.shadowAgreement == null ? '' : ', shadow agreement ' + pct(a.shadowAgreement));
    table('ab', ['channel', 'model', 'arm B share', 'arm A', 'arm B', 'Δ error rate', 'Δ p50 ms', 'Δ p95 ms', 'notes'],
      tests.map((t) => [t.channel, t.model, (t.shareBp / 100).toFixed(2) + ' %', arm(t.a), arm(t.b),
        ci(t.diff.errorRate, pct), ci(t.diff.p50, ms), ci(t.diff.p95, ms), t.notes.join(' ')]));
    $('ab-method').textContent = tests[0] ? tests[0].method : '';
  }
  table('drift', ['when', 'device', 'model / version', 'tensor', 'PSI', 'KL'],
    o.drift.slice(0, 50).map((d) => [when(d.timeMs), d.deviceId, subject(d), d.tensor, ms(d.psi), ms(d.kl)]));
  table('devices', ['device', 'last seen', 'channel', 'runtime', 'browser', 'cores', 'memory GB', 'GPU', 'batches'],
    o.devices.slice(0, 200).map((d) => [d.deviceId, when(d.lastSeenMs), d.channel, d.runtimeVersion,
      [d.browser, d.browserMajor].filter(Boolean).join(' '), d.cores, d.memoryGb, d.gpuVendor, d.batches]));
}
$('login').addEventListener('submit', (e) => { e.preventDefault(); sessionStorage.setItem('outpost-admin', $('token').value); refresh(); });
refresh();
setInterval(refresh, 10000);
`;

/**
 * The dashboard page's Content-Security-Policy: its code, style and chart library from this
 * server only, nothing inline, no eval, and never framed by another page (the admin token is typed
 * into it).
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Registers the dashboard page (`/`), its style and code, and its chart library. The data stays
 * behind the admin token.
 */
export function dashboardRoutes(app: FastifyInstance): void {
  const chartFile = join(dirname(createRequire(import.meta.url).resolve('chart.js')), CHART_JS);
  let chart: Promise<Buffer> | undefined;
  app.get('/', async (_req, reply) =>
    reply
      .header('Content-Type', 'text/html; charset=utf-8')
      .header('Cache-Control', 'no-cache')
      .header('Content-Security-Policy', DASHBOARD_CSP)
      .header('X-Content-Type-Options', 'nosniff')
      .send(PAGE),
  );
  app.get('/dashboard/dashboard.css', async (_req, reply) =>
    reply.header('Content-Type', 'text/css; charset=utf-8').header('Cache-Control', 'no-cache').send(STYLE),
  );
  app.get('/dashboard/dashboard.js', async (_req, reply) =>
    reply.header('Content-Type', 'text/javascript; charset=utf-8').header('Cache-Control', 'no-cache').send(SCRIPT),
  );
  app.get('/dashboard/chart.umd.min.js', async (_req, reply) => {
    chart ??= readFile(chartFile);
    return reply
      .header('Content-Type', 'text/javascript; charset=utf-8')
      .header('Cache-Control', 'public, max-age=3600')
      .send(await chart);
  });
}
