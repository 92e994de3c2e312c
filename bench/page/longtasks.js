// Page-thread long tasks (> 50 ms): what a user feels as jank while a model loads and runs.

/**
 * Starts recording long tasks. The observer's callback gets entries as they are delivered;
 * `takeRecords()` at the end gets those not yet delivered, so together they see every one.
 * Entries from before recording began (buffered ones from page load) are left out.
 */
export function recordLongTasks() {
  const start = performance.now();
  const seen = [];
  const observer = new PerformanceObserver((list) => seen.push(...list.getEntries()));
  observer.observe({ type: 'longtask', buffered: true });
  return {
    /** Ms since recording began: the clock phase marks are given in. */
    now: () => performance.now() - start,
    /** Stops recording; returns the tasks as `{ start, duration }`, ms since recording began. */
    async stop() {
      // A task is reported only once it has ended: yield so the one running now (the caller's,
      // which may hold the last synchronous inference) ends and gets its entry queued.
      await new Promise((resolve) => setTimeout(resolve, 100));
      seen.push(...observer.takeRecords());
      observer.disconnect();
      return seen
        .filter((e) => e.startTime >= start)
        .map((e) => ({ start: e.startTime - start, duration: e.duration }));
    },
  };
}

/**
 * Long tasks by phase; `marks` maps each phase, in order, to when it ended (ms since recording
 * began). A task counts in every phase it overlaps, with the part that falls in it as blocked
 * time: one task can span phases (on the page thread, consecutive awaited ORT runs never yield
 * to the event loop, so they are all one task).
 */
export function byPhase(tasks, marks) {
  const out = {};
  let from = 0;
  for (const [phase, until] of Object.entries(marks)) {
    const overlap = (t) => Math.min(until, t.start + t.duration) - Math.max(from, t.start);
    const mine = tasks.filter((t) => overlap(t) > 0);
    out[phase] = {
      wallMs: until - from,
      count: mine.length,
      blockedMs: mine.reduce((n, t) => n + overlap(t), 0),
      longestMs: Math.max(0, ...mine.map((t) => t.duration)),
    };
    from = until;
  }
  return out;
}
