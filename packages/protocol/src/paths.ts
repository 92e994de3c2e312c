/**
 * Where things live in a repository. Metadata: `metadata/<version>.<role>.json` (and
 * `metadata/timestamp.json`). Targets: content-addressed under TUF's consistent-snapshot rule,
 * `targets/<dir>/<sha256>.<basename>`, so a blob URL never changes meaning and caches forever.
 */

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Model, version, variant, channel and file names: letters, digits, `.`, `_`, `-`, starting with
 * a letter or digit, at most 64 characters, never `..`. Everything that becomes a path segment
 * passes through here, so a name can never climb out of its folder.
 */
export function isSafeName(name: string): boolean {
  return NAME.test(name) && !name.includes('..');
}

/** Throws a TypeError naming `what` unless {@link isSafeName}. */
export function assertSafeName(name: string, what: string): void {
  if (!isSafeName(name)) throw new TypeError(`Invalid ${what} "${name}": use letters, digits, ".", "_", "-"`);
}

/** Target path of one model file. */
export function modelFilePath(model: string, version: string, variant: string, file: string): string {
  return `models/${model}/${version}/${variant}/${file}`;
}

/** Target path of a model version's golden file. */
export function goldenPath(model: string, version: string): string {
  return `models/${model}/${version}/golden.json`;
}

/** Target path of a model version's reference output distribution (drift, a `DriftReference`). */
export function referencePath(model: string, version: string): string {
  return `models/${model}/${version}/reference.json`;
}

/** Target path of a model version's rollout plan (signed with the release by the targets role). */
export function rolloutPlanPath(model: string, version: string): string {
  return `models/${model}/${version}/rollout.json`;
}

/** Target path of how a version's outputs are compared with the live model's as a shadow (signed with the release). */
export function comparePath(model: string, version: string): string {
  return `models/${model}/${version}/compare.json`;
}

/** Target path of a channel pointer (signed by the `channels` role). */
export function channelPath(channel: string, model: string): string {
  return `channels/${channel}/${model}.json`;
}

/** The path patterns the `channels` role is trusted for. */
export const CHANNEL_PATHS = ['channels/*/*'];

/** Name of a role's metadata file for a given version (consistent snapshots). */
export function metadataFile(role: string, version?: number): string {
  return version === undefined ? `${role}.json` : `${version}.${role}.json`;
}

/** Repository-relative URL path of a target's bytes. */
export function targetUrlPath(targetPath: string, sha256: string): string {
  const slash = targetPath.lastIndexOf('/');
  return `targets/${targetPath.slice(0, slash + 1)}${sha256}.${targetPath.slice(slash + 1)}`;
}

/**
 * TUF's path pattern match for delegations: `*` matches within one segment, anything else
 * literally; the pattern must cover the whole path.
 */
export function matchesPattern(path: string, pattern: string): boolean {
  const p = pattern.split('/');
  const s = path.split('/');
  if (p.length !== s.length) return false;
  return p.every((seg, i) => {
    const re = new RegExp(`^${seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    return re.test(s[i] ?? '');
  });
}
