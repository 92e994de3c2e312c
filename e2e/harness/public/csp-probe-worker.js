// Reports whether this worker may eval: under the harness's strict CSP it must not.
let verdict = 'allowed';
try {
  new Function('return 1')();
} catch {
  verdict = 'blocked';
}
postMessage(verdict);
