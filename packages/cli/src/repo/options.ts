import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Expiry, RoleName } from '@outpost/protocol';
import { UsageError } from '../cli.js';

/** Every role of an Outpost repository, in the order keys are listed. */
export const ROLES: readonly RoleName[] = ['root', 'targets', 'snapshot', 'timestamp', 'channels'];

/** `util.parseArgs` with its errors turned into usage errors (exit code 2). */
export function parse<O extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: O,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Throws a usage error unless every named option was given. */
export function required<T extends Record<string, unknown>>(values: T, ...names: (keyof T & string)[]): void {
  const missing = names.filter((n) => values[n] === undefined);
  if (missing.length) throw new UsageError(`${missing.map((n) => `--${n}`).join(', ')} required`);
}

function asRole(name: string, flag: string): RoleName {
  if (!(ROLES as readonly string[]).includes(name)) {
    throw new UsageError(`${flag}: unknown role ${name} (roles: ${ROLES.join(', ')})`);
  }
  return name as RoleName;
}

/** `role=value,role=value` into a map, each value through `conv`. */
function roleMap<T>(text: string, flag: string, conv: (v: string) => T): Partial<Record<RoleName, T>> {
  const out: Partial<Record<RoleName, T>> = {};
  for (const item of text.split(',').filter(Boolean)) {
    const [role, value] = item.split('=');
    if (value === undefined) throw new UsageError(`${flag}: expected role=value, got ${item}`);
    out[asRole(role!.trim(), flag)] = conv(value.trim());
  }
  return out;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `--expires timestamp=1d,snapshot=7d`: role lifetimes in seconds (units s, m, h, d). */
export function parseExpires(text: string | undefined): Expiry {
  if (text === undefined) return {};
  return roleMap(text, '--expires', (v) => {
    const m = /^([1-9][0-9]*)([smhd])$/.exec(v);
    if (!m) throw new UsageError(`--expires: ${v} is not a duration such as 30d, 12h, 90m`);
    return Number(m[1]) * UNITS[m[2]!]!;
  });
}

/** `--threshold root=2,targets=1`: signatures each role needs (default 1). */
export function parseThresholds(text: string | undefined): Record<RoleName, number> {
  const given = text === undefined ? {} : roleMap(text, '--threshold', Number);
  const out = {} as Record<RoleName, number>;
  for (const role of ROLES) {
    const t = given[role] ?? 1;
    if (!Number.isInteger(t) || t < 1) throw new UsageError(`--threshold: ${role} needs a whole number ≥ 1`);
    out[role] = t;
  }
  return out;
}

/** `--roles root:2,targets`: roles and how many keys each gets (default: every role, one key). */
export function parseRoles(text: string | undefined): [RoleName, number][] {
  if (text === undefined) return ROLES.map((r) => [r, 1]);
  const out = new Map<RoleName, number>();
  for (const item of text.split(',').filter(Boolean)) {
    const [name, count = '1'] = item.split(':');
    const n = Number(count);
    if (!Number.isInteger(n) || n < 1 || n > 16) throw new UsageError(`--roles: bad key count in ${item}`);
    out.set(asRole(name!.trim(), '--roles'), n);
  }
  return [...out];
}

/** `--rollout-bp`: an integer from 0 to 10000 (basis points of devices). */
export function parseRolloutBp(text: string | undefined): number {
  if (text === undefined) return 10000;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n > 10000) {
    throw new UsageError('--rollout-bp must be a whole number from 0 to 10000 (10000 = every device)');
  }
  return n;
}
