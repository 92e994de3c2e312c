import { cpus, loadavg } from 'node:os';

function cpuTimes() {
  return cpus().reduce(
    (acc, { times }) => {
      acc.idle += times.idle;
      acc.total += times.user + times.nice + times.sys + times.irq + times.idle;
      return acc;
    },
    { idle: 0, total: 0 },
  );
}

/**
 * How busy the machine is without us: the share of all cores in use over `ms`, while the bench
 * itself idles. Others' work on this 2-core machine (a training run, a test suite) slows and
 * scatters every figure, so the report states it next to them.
 */
export async function machineLoad(ms = 1000) {
  const a = cpuTimes();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = cpuTimes();
  const busy = 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
  return { busy, loadavg1: loadavg()[0], cores: cpus().length };
}
