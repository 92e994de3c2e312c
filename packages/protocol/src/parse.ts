import { MetadataError } from '@outpost/core';
import { canonicalize } from './canonical.js';
import type { CompareInfo } from './compare.js';
import { fromUtf8 } from './encoding.js';
import type {
  ChannelInfo,
  DelegatedRole,
  Envelope,
  MetaFile,
  ModelFileInfo,
  PublicKey,
  RoleKeys,
  RoleName,
  Root,
  Snapshot,
  TargetFile,
  Targets,
  Timestamp,
} from './metadata.js';

/**
 * Parsing of untrusted metadata bytes. Every field the client reads is checked for type and
 * range, so a hostile or broken file fails as one `METADATA_FORMAT` error instead of a
 * TypeError deep inside the update logic.
 */

class Bad extends Error {}

function fail(what: string): never {
  throw new Bad(what);
}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} is not an object`);
  return v as Obj;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(`${what} is not a string`);
  return v;
}

function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(`${what} is not an integer >= ${min}`);
  return v;
}

function strs(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) fail(`${what} is not an array`);
  return v.map((x, i) => str(x, `${what}[${i}]`));
}

const HEX64 = /^[0-9a-f]{64}$/;

function sha(v: unknown, what: string): { sha256: string } {
  const h = str(obj(v, what).sha256, `${what}.sha256`);
  if (!HEX64.test(h)) fail(`${what}.sha256 is not a hex SHA-256`);
  return { sha256: h };
}

function expires(v: unknown): string {
  const s = str(v, 'expires');
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(s) || Number.isNaN(Date.parse(s))) fail('expires is not a UTC time');
  return s;
}

function base(s: Obj, type: string) {
  if (s._type !== type) fail(`_type is ${String(s._type)}, expected ${type}`);
  return {
    spec_version: str(s.spec_version, 'spec_version'),
    version: int(s.version, 'version', 1),
    expires: expires(s.expires),
  };
}

function keys(v: unknown, what: string): Record<string, PublicKey> {
  const out: Record<string, PublicKey> = {};
  for (const [id, k] of Object.entries(obj(v, what))) {
    const key = obj(k, `${what}.${id}`);
    out[id] = {
      keytype: str(key.keytype, 'keytype') as PublicKey['keytype'],
      scheme: str(key.scheme, 'scheme') as PublicKey['scheme'],
      keyval: { public: str(obj(key.keyval, 'keyval').public, 'keyval.public') },
    };
  }
  return out;
}

function roleKeys(v: unknown, what: string): RoleKeys {
  const r = obj(v, what);
  return { keyids: strs(r.keyids, `${what}.keyids`), threshold: int(r.threshold, `${what}.threshold`, 1) };
}

function metaFile(v: unknown, what: string): MetaFile {
  const m = obj(v, what);
  const out: MetaFile = { version: int(m.version, `${what}.version`, 1) };
  if (m.length !== undefined) out.length = int(m.length, `${what}.length`);
  if (m.hashes !== undefined) out.hashes = sha(m.hashes, `${what}.hashes`);
  return out;
}

function modelFileInfo(o: Obj, what: string): ModelFileInfo {
  const out: ModelFileInfo = {
    kind: 'model-file',
    model: str(o.model, `${what}.model`),
    version: str(o.version, `${what}.version`),
    variant: str(o.variant, `${what}.variant`),
    file: str(o.file, `${what}.file`),
    format: o.format === 'tfjs' ? 'tfjs' : o.format === 'onnx' ? 'onnx' : fail(`${what}.format is unknown`),
    primary: o.primary === true,
    chunkSize: int(o.chunkSize, `${what}.chunkSize`, 1),
    chunks: strs(o.chunks, `${what}.chunks`),
  };
  if (!out.chunks.every((c) => HEX64.test(c))) fail(`${what}.chunks has a non-hash`);
  if (o.backends !== undefined) out.backends = strs(o.backends, `${what}.backends`);
  if (o.requires !== undefined) out.requires = strs(o.requires, `${what}.requires`);
  return out;
}

function channelInfo(o: Obj, what: string): ChannelInfo {
  const out: ChannelInfo = {
    kind: 'channel',
    channel: str(o.channel, `${what}.channel`),
    model: str(o.model, `${what}.model`),
    version: str(o.version, `${what}.version`),
    rolloutBp: int(o.rolloutBp, `${what}.rolloutBp`),
  };
  if (out.rolloutBp > 10000) fail(`${what}.rolloutBp is above 10000`);
  if (o.previous !== undefined) out.previous = str(o.previous, `${what}.previous`);
  const bp = (v: unknown, at: string) => {
    const n = int(v, at);
    return n > 10000 ? fail(`${at} is above 10000`) : n;
  };
  if (o.shadow !== undefined) {
    const s = obj(o.shadow, `${what}.shadow`);
    out.shadow = {
      version: str(s.version, `${what}.shadow.version`),
      sampleBp: bp(s.sampleBp, `${what}.shadow.sampleBp`),
    };
  }
  if (o.ab !== undefined) {
    const a = obj(o.ab, `${what}.ab`);
    out.ab = { version: str(a.version, `${what}.ab.version`), shareBp: bp(a.shareBp, `${what}.ab.shareBp`) };
  }
  return out;
}

function targetFile(v: unknown, what: string): TargetFile {
  const t = obj(v, what);
  const out: TargetFile = { length: int(t.length, `${what}.length`), hashes: sha(t.hashes, `${what}.hashes`) };
  const custom = t.custom === undefined ? undefined : obj(t.custom, `${what}.custom`);
  if (custom?.outpost !== undefined) {
    const o = obj(custom.outpost, `${what}.custom.outpost`);
    if (o.kind === 'model-file') out.custom = { outpost: modelFileInfo(o, what) };
    else if (o.kind === 'channel') out.custom = { outpost: channelInfo(o, what) };
    else if (o.kind === 'compare') {
      // Read as the release signed it; a spec this client cannot use is refused where it is used.
      const c: CompareInfo = {
        kind: 'compare',
        model: str(o.model, `${what}.model`),
        version: str(o.version, `${what}.version`),
        metric: str(o.metric, `${what}.metric`) as CompareInfo['metric'],
        output: str(o.output, `${what}.output`),
      };
      if (o.thresholdMilli !== undefined) c.thresholdMilli = int(o.thresholdMilli, `${what}.thresholdMilli`);
      out.custom = { outpost: c };
    } else if (o.kind === 'golden' || o.kind === 'reference') {
      out.custom = {
        outpost: { kind: o.kind, model: str(o.model, `${what}.model`), version: str(o.version, `${what}.version`) },
      };
    }
  }
  return out;
}

function delegatedRole(v: unknown, what: string): DelegatedRole {
  const r = obj(v, what);
  return {
    ...roleKeys(r, what),
    name: str(r.name, `${what}.name`),
    terminating: r.terminating === true,
    paths: strs(r.paths, `${what}.paths`),
  };
}

const PARSERS: Record<'root' | 'timestamp' | 'snapshot' | 'targets', (s: Obj) => unknown> = {
  root: (s: Obj): Root => {
    const roles = obj(s.roles, 'roles');
    return {
      _type: 'root',
      ...base(s, 'root'),
      consistent_snapshot: s.consistent_snapshot === true,
      keys: keys(s.keys, 'keys'),
      roles: {
        root: roleKeys(roles.root, 'roles.root'),
        timestamp: roleKeys(roles.timestamp, 'roles.timestamp'),
        snapshot: roleKeys(roles.snapshot, 'roles.snapshot'),
        targets: roleKeys(roles.targets, 'roles.targets'),
      },
    };
  },
  timestamp: (s: Obj): Timestamp => {
    const meta = obj(s.meta, 'meta');
    return {
      _type: 'timestamp',
      ...base(s, 'timestamp'),
      meta: { 'snapshot.json': metaFile(meta['snapshot.json'], 'meta') },
    };
  },
  snapshot: (s: Obj): Snapshot => {
    const meta: Record<string, MetaFile> = {};
    for (const [name, m] of Object.entries(obj(s.meta, 'meta'))) meta[name] = metaFile(m, `meta.${name}`);
    return { _type: 'snapshot', ...base(s, 'snapshot'), meta };
  },
  targets: (s: Obj): Targets => {
    const targets: Record<string, TargetFile> = {};
    for (const [path, t] of Object.entries(obj(s.targets, 'targets'))) targets[path] = targetFile(t, path);
    const out: Targets = { _type: 'targets', ...base(s, 'targets'), targets };
    if (s.delegations !== undefined) {
      const d = obj(s.delegations, 'delegations');
      if (!Array.isArray(d.roles)) fail('delegations.roles is not an array');
      out.delegations = {
        keys: keys(d.keys, 'delegations.keys'),
        roles: d.roles.map((r, i) => delegatedRole(r, `delegations.roles[${i}]`)),
      };
    }
    return out;
  },
};

function parserFor(role: RoleName): (s: Obj) => unknown {
  return role === 'channels' ? PARSERS.targets : PARSERS[role];
}

/** The parsed `signed` type of each role. */
export interface SignedOf {
  root: Root;
  timestamp: Timestamp;
  snapshot: Snapshot;
  targets: Targets;
  channels: Targets;
}

/**
 * Parses one role's metadata from untrusted bytes. The returned envelope's `signed` is the
 * parsed object; `raw` is the object as received, which is what signatures cover (a field this
 * client does not know must still be covered, or it could be slipped in unsigned).
 */
export function parseMetadata<R extends RoleName>(
  role: R,
  bytes: Uint8Array,
): Envelope<SignedOf[R]> & { raw: unknown } {
  try {
    const json = obj(JSON.parse(fromUtf8(bytes)), 'metadata');
    const signatures = (Array.isArray(json.signatures) ? json.signatures : fail('signatures is not an array')).map(
      (s, i) => {
        const o = obj(s, `signatures[${i}]`);
        return { keyid: str(o.keyid, 'keyid'), sig: str(o.sig, 'sig') };
      },
    );
    const raw = obj(json.signed, 'signed');
    const signed = parserFor(role)(raw) as SignedOf[R];
    // What signatures cover must be canonical JSON (no floats anywhere, unknown fields included):
    // checked here, or canonicalize would throw a bare TypeError in the signature check.
    canonicalize(raw);
    return { signed, signatures, raw };
  } catch (err) {
    const why = err instanceof Bad ? err.message : err instanceof Error ? err.message : String(err);
    throw new MetadataError('METADATA_FORMAT', `${role} metadata is malformed: ${why}`, role);
  }
}
