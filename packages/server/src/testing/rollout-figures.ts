import type { RolloutFigures } from '../storage.js';

/** A healthy canary's figures (5 devices, 100 runs, no error, p95 as before), with `f` over them. */
export const rolloutFigures = (f: Partial<RolloutFigures> = {}): RolloutFigures => ({
  sinceMs: 0,
  devices: 5,
  runs: 100,
  errors: 0,
  errorBp: 0,
  activated: 5,
  rolledBack: 0,
  rollbackBp: 0,
  p95Ms: 4,
  previousP95Ms: 4,
  p95RatioPct: 100,
  driftWindows: 0,
  driftPsiMilli: null,
  ...f,
});
