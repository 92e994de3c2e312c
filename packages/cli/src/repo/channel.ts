import {
  channelPath,
  modelVersions,
  setChannel,
  type ChannelInfo,
  type Expiry,
  type RepoState,
  type Signers,
} from '@outpost/protocol';

/** The channel's current pointer for a model, if it has one. */
export function currentPointer(state: RepoState, channel: string, model: string): ChannelInfo | undefined {
  const o = state.channels.signed.targets[channelPath(channel, model)]?.custom?.outpost;
  return o?.kind === 'channel' ? o : undefined;
}

/**
 * Points a channel at a version. `previous` (what devices outside the rollout run, and where a
 * rollback goes) is the version the whole channel was on: widening a rollout keeps it; a new
 * version replaces the current one if that one was fully rolled out, else keeps the current
 * `previous` (devices outside a 10% rollout never had it, so they must not be moved to it).
 */
export async function pointChannel(
  state: RepoState,
  to: { channel: string; model: string; version: string; rolloutBp: number },
  signers: Signers,
  now: number,
  expiry: Expiry,
) {
  const cur = currentPointer(state, to.channel, to.model);
  let previous: string | undefined;
  if (cur && cur.version === to.version) previous = cur.previous;
  else if (cur) previous = cur.rolloutBp >= 10000 ? cur.version : (cur.previous ?? cur.version);
  if (previous === to.version) previous = undefined;
  // A shadow or an A/B arm running on the channel stays, unless it names the version promoted
  // (it is then what everyone runs): a promotion must not end an experiment without a word.
  const shadow = cur?.shadow && cur.shadow.version !== to.version ? { shadow: cur.shadow } : {};
  const ab = cur?.ab && cur.ab.version !== to.version ? { ab: cur.ab } : {};
  const pointer = { ...to, ...(previous !== undefined ? { previous } : {}), ...shadow, ...ab };
  return { pointer, result: await setChannel(state, pointer, signers, now, expiry) };
}

/**
 * Where `rollback` goes without `--to`: the pointer's `previous`, else the version signed just
 * before the current one.
 */
export function rollbackTarget(state: RepoState, cur: ChannelInfo): string | undefined {
  if (cur.previous !== undefined) return cur.previous;
  const versions = modelVersions(state.targets.signed, cur.model);
  const at = versions.indexOf(cur.version);
  return at > 0 ? versions[at - 1] : undefined;
}

/** One line for a channel pointer: `stable → 1.1.0 for 10.00% of devices (others: 1.0.0)`. */
export function describePointer(p: Omit<ChannelInfo, 'kind'>): string {
  const share = p.rolloutBp >= 10000 ? 'every device' : `${(p.rolloutBp / 100).toFixed(2)}% of devices`;
  const rest = p.rolloutBp < 10000 ? ` (others: ${p.previous ?? 'nothing installed'})` : '';
  return `${p.channel}: ${p.model} → ${p.version} for ${share}${rest}`;
}
