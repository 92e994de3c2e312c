import cliProgress from 'cli-progress';
import type { Io } from './cli.js';

/** A progress bar over bytes; a no-op unless stderr is a terminal. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

const MiB = (n: number) => (n / (1 << 20)).toFixed(1);

/**
 * A bar on stderr for work measured in bytes (reading, hashing, writing large model files).
 * Drawn only when `io.stderr` is a TTY and not in `--json` mode, so scripts and logs get no
 * control characters; it clears itself when done.
 */
export function progressBar(io: Io, label: string, json = false): Progress {
  const stream = io.stderr;
  if (json || !stream?.isTTY) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `  ${label} [{bar}] {percentage}% {done}/{size} MiB`,
      clearOnComplete: true,
      hideCursor: true,
      fps: 10,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0, { done: MiB(0), size: MiB(total) });
        started = true;
      }
      bar.setTotal(total);
      bar.update(done, { done: MiB(done), size: MiB(total) });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
