// Timing loops that run in the page.

/**
 * Runs the peers in turn, one call each per round: `warmup` rounds unrecorded, then `runs`
 * rounds recorded. Interleaving call by call means a slow spell of the (shared, 2-core) machine
 * hits every peer alike, and each round starts with the next peer so none always runs right
 * after the same neighbour (ORT's thread pool spins for a while after a run).
 * @returns {Promise<Record<string, number[]>>} milliseconds per call, by peer name
 */
export async function interleave(peers, { warmup, runs }) {
  const times = Object.fromEntries(peers.map((p) => [p.name, []]));
  for (let round = 0; round < warmup + runs; round++) {
    for (let k = 0; k < peers.length; k++) {
      const peer = peers[(round + k) % peers.length];
      const args = peer.prepare();
      const t0 = performance.now();
      await peer.run(args);
      const ms = performance.now() - t0;
      if (round >= warmup) times[peer.name].push(ms);
    }
  }
  return times;
}

/** Milliseconds per call of `fn`, after `warmup` unrecorded calls. */
export async function timeCalls(fn, { warmup, runs }) {
  const out = [];
  for (let i = 0; i < warmup + runs; i++) {
    const t0 = performance.now();
    await fn();
    if (i >= warmup) out.push(performance.now() - t0);
  }
  return out;
}
