import type { Targets } from './metadata.js';
import { rolloutPlanPath } from './paths.js';

/**
 * A version's rollout plan: how far the server's rollout controller may widen a canary, when,
 * and when it must abort. Signed by the offline targets role with the release it belongs to (the
 * target file `models/<name>/<version>/rollout.json`), so the online channels key the controller
 * holds can follow it but never change it. Canonical JSON has no floats: every figure is an
 * integer in basis points, percent or thousandths.
 */
export interface RolloutPlan {
  /**
   * Rollout shares in basis points, strictly ascending, the last 10000 (everyone). `rollout
   * start` points the channel at the first; each healthy step widens to the next.
   */
  steps: number[];
  /** Devices that must report the canary version during a step before it is judged. */
  minDevices: number;
  /** Runs (successful or failed) of the canary version during a step before it is judged. */
  minRuns: number;
  /**
   * Seconds a step lasts at least, however fast devices report (bake time).
   * @defaultValue 0
   */
  minStepSeconds?: number;
  /** Abort above this error rate, errors / (runs + errors), in basis points. */
  maxErrorBp?: number;
  /** Abort above this share of activations rolled back on the device, in basis points. */
  maxRollbackBp?: number;
  /** Abort when the canary's p95 run latency exceeds this percentage of the previous version's. */
  maxP95RatioPct?: number;
  /** Abort when the mean drift PSI of the canary's windows exceeds this, in thousandths. */
  maxDriftPsiMilli?: number;
  /**
   * Abort when the canary, run as a shadow on devices still on the previous version, agrees with
   * the live model less than this (mean agreement by its signed comparison), in basis points.
   */
  minShadowAgreementBp?: number;
}

/** A rollout plan as the targets role signs it (`custom.outpost` of its target file). */
export interface RolloutPlanInfo extends RolloutPlan {
  kind: 'rollout-plan';
  model: string;
  version: string;
}

/** Thresholds `outpost publish --rollout-plan` uses when none is given. */
export const ROLLOUT_PLAN_DEFAULTS = {
  minDevices: 20,
  minRuns: 500,
  minStepSeconds: 0,
  maxErrorBp: 100,
  maxRollbackBp: 200,
  maxP95RatioPct: 150,
  maxDriftPsiMilli: 250,
} as const satisfies Omit<Required<RolloutPlan>, 'steps' | 'minShadowAgreementBp'>;

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;

/**
 * Checks a plan's shape and returns it with only its known fields; throws a TypeError naming
 * what is wrong. Used when publishing and again when the controller reads a signed plan.
 */
export function checkRolloutPlan(raw: unknown): RolloutPlan {
  const p = (raw ?? {}) as Record<string, unknown>;
  const raws: unknown = p.steps;
  if (!Array.isArray(raws) || raws.length === 0 || !raws.every((s) => isInt(s, 1, 10000))) {
    throw new TypeError('A rollout plan needs steps: basis points from 1 to 10000');
  }
  const steps = raws;
  if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!)) throw new TypeError('Rollout steps must be ascending');
  if (steps[steps.length - 1] !== 10000) throw new TypeError('The last rollout step must be 10000 (everyone)');
  const plan: RolloutPlan = { steps: [...steps], minDevices: 0, minRuns: 0 };
  for (const k of ['minDevices', 'minRuns'] as const) {
    if (!isInt(p[k], 0)) throw new TypeError(`Rollout plan ${k} must be a whole number`);
    plan[k] = p[k];
  }
  const optional = {
    minStepSeconds: Number.MAX_SAFE_INTEGER,
    maxErrorBp: 10000,
    maxRollbackBp: 10000,
    maxP95RatioPct: Number.MAX_SAFE_INTEGER,
    maxDriftPsiMilli: Number.MAX_SAFE_INTEGER,
    minShadowAgreementBp: 10000,
  } as const;
  for (const [k, max] of Object.entries(optional) as [keyof typeof optional, number][]) {
    if (p[k] === undefined) continue;
    if (!isInt(p[k], 0, max)) throw new TypeError(`Rollout plan ${k} must be a whole number from 0 to ${max}`);
    plan[k] = p[k];
  }
  return plan;
}

/**
 * The signed rollout plan of `model@version`, or null when its release has none (or what is
 * there is not a valid plan: a controller must not act on a plan it cannot read).
 */
export function rolloutPlanOf(targets: Targets, model: string, version: string): RolloutPlan | null {
  const o = targets.targets[rolloutPlanPath(model, version)]?.custom?.outpost;
  if (o?.kind !== 'rollout-plan' || o.model !== model || o.version !== version) return null;
  try {
    return checkRolloutPlan(o);
  } catch {
    return null;
  }
}
