import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { BACKEND_IDS } from '@outpost/core';
import {
  ROLLOUT_PLAN_DEFAULTS,
  addRelease,
  checkRolloutPlan,
  decodeReference,
  isSafeName,
  parseCompareSpec,
  releaseOf,
  targetUrlPath,
  type CompareSpec,
  type MetadataFiles,
  type PublishFile,
  type PublishedBlob,
  type RolloutPlan,
} from '@outpost/protocol';
import { loadRepoState, withRepoLock, writeRepoChanges } from '@outpost/server';
import type { Command } from '../cli.js';
import { UsageError } from '../cli.js';
import { progressBar } from '../progress.js';
import { describePointer, pointChannel } from '../repo/channel.js';
import { signersFor } from '../repo/keys.js';
import { parse, parseExpires, parseRolloutBp, required } from '../repo/options.js';

const usage = `usage: outpost publish [<variant>=]<model> ... --repo <dir> --keys <dir> --name <model> --version <v> [options]

Publishes one version of a model, all its variants at once: content-addressed blobs with their
chunk hashes, then targets, snapshot and timestamp re-signed (timestamp last).

A variant is <id>=<path>, as an argument or with --variant (repeatable):
  fp32=models/digits.onnx             an ONNX model (.onnx)
  tfjs=models/movenet/model.json      a TF.js model: model.json and every weight shard its
                                      manifest lists (a folder holding model.json works too)
A single model may be given as a bare path; its variant is then "default".

options:
  --repo <dir>, --keys <dir>   the repository and its keys (targets, snapshot, timestamp; and
                               channels with --channel)
  --name <model>, --version <v>  the model and the new version (never re-used)
  --variant <id>=<path>        a variant (repeatable)
  --backends <id>=<b,...>      backends a variant is meant for: ${BACKEND_IDS.join(', ')} (repeatable)
  --requires <id>=<f,...>      device features a variant needs, e.g. shader-f16 (repeatable)
  --golden <file.json>         golden inputs, outputs and tolerance checked on each device
  --reference <file.json>      reference output distribution devices measure drift against
                               ({ tensors: { <output>: { edges, counts } } })
  --channel <name>             also point this channel at the new version
  --rollout-bp <n>             share of the channel's devices, in basis points (default 10000 =
                               all); the others stay on the channel's current version
  --expires <role=dur,...>     metadata lifetimes (see outpost init)
  --json                       print the result as JSON

rollout plan (signed with the release; outpost rollout start follows it, see outpost rollout):
  --rollout-plan <bp,...>      the steps in basis points, ascending, ending at 10000
                               (e.g. 100,500,2500,10000)
  --min-devices <n>            devices on the canary before a step is judged (default ${ROLLOUT_PLAN_DEFAULTS.minDevices})
  --min-runs <n>               runs of the canary before a step is judged (default ${ROLLOUT_PLAN_DEFAULTS.minRuns})
  --min-step-seconds <n>       shortest step (default ${ROLLOUT_PLAN_DEFAULTS.minStepSeconds})
  --max-error-bp <n>           abort above this error rate, basis points (default ${ROLLOUT_PLAN_DEFAULTS.maxErrorBp})
  --max-rollback-bp <n>        abort above this share of activations rolled back (default ${ROLLOUT_PLAN_DEFAULTS.maxRollbackBp})
  --max-p95-ratio-pct <n>      abort when p95 latency passes this % of the previous version's (default ${ROLLOUT_PLAN_DEFAULTS.maxP95RatioPct})
  --max-drift-psi-milli <n>    abort above this mean drift PSI, thousandths (default ${ROLLOUT_PLAN_DEFAULTS.maxDriftPsiMilli})
  --min-shadow-agreement-bp <n>  abort when the canary, run as a shadow, agrees with the live model
                               less than this, basis points (default: no such check)

shadow runs (see outpost shadow):
  --compare <spec>             how this version's outputs are compared with the live model's when it
                               runs as a shadow: top1:<output> (classifiers), maxabs:<output>:<milli>
                               (largest difference, thousandths) or iou:<output>:<milli> (maps
                               binarised at the threshold, thousandths), e.g. iou:maps:300`;

const PLAN_FLAGS = {
  'min-devices': 'minDevices',
  'min-runs': 'minRuns',
  'min-step-seconds': 'minStepSeconds',
  'max-error-bp': 'maxErrorBp',
  'max-rollback-bp': 'maxRollbackBp',
  'max-p95-ratio-pct': 'maxP95RatioPct',
  'max-drift-psi-milli': 'maxDriftPsiMilli',
} as const satisfies Record<string, keyof typeof ROLLOUT_PLAN_DEFAULTS>;

/** The rollout plan of the command line (integers only: signed metadata has no floats), or undefined. */
function rolloutPlanOf(v: Record<string, unknown>): RolloutPlan | undefined {
  const given = [...Object.keys(PLAN_FLAGS), 'min-shadow-agreement-bp'].filter((f) => v[f] !== undefined);
  if (v['rollout-plan'] === undefined) {
    if (given.length) throw new UsageError(`--${given[0]} needs --rollout-plan`);
    return undefined;
  }
  const int = (text: string, flag: string) => {
    if (!/^[0-9]+$/.test(text)) throw new UsageError(`${flag} takes whole numbers, got ${text}`);
    return Number(text);
  };
  const plan: Record<string, unknown> = {
    ...ROLLOUT_PLAN_DEFAULTS,
    ...(v['min-shadow-agreement-bp'] !== undefined
      ? { minShadowAgreementBp: int(v['min-shadow-agreement-bp'] as string, '--min-shadow-agreement-bp') }
      : {}),
    steps: (v['rollout-plan'] as string).split(',').map((s) => int(s.trim(), '--rollout-plan')),
  };
  for (const [flag, key] of Object.entries(PLAN_FLAGS)) {
    if (v[flag] !== undefined) plan[key] = int(v[flag] as string, `--${flag}`);
  }
  try {
    return checkRolloutPlan(plan);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

type Format = PublishFile['format'];

interface Source {
  variant: string;
  format: Format;
  /** File name within the variant → path on disk; the primary first. */
  files: [string, string][];
}

async function readSource(variant: string, path: string): Promise<Source> {
  if (!isSafeName(variant)) throw new UsageError(`invalid variant id "${variant}": use letters, digits, ".", "_", "-"`);
  const info = await stat(path).catch(() => null);
  if (!info) throw new Error(`${path} does not exist`);
  if (info.isDirectory()) path = join(path, 'model.json');
  const ext = extname(path).toLowerCase();
  if (ext === '.onnx') return { variant, format: 'onnx', files: [[basename(path), path]] };
  if (ext !== '.json') throw new UsageError(`${path}: publish takes .onnx models and TF.js model.json files`);
  const manifest = JSON.parse(await readFile(path, 'utf8')) as { weightsManifest?: { paths?: unknown }[] };
  if (!Array.isArray(manifest.weightsManifest))
    throw new Error(`${path} is not a TF.js model.json (no weightsManifest)`);
  const files: [string, string][] = [[basename(path), path]];
  for (const group of manifest.weightsManifest) {
    for (const shard of Array.isArray(group.paths) ? group.paths : []) {
      if (typeof shard !== 'string' || !isSafeName(shard)) {
        throw new Error(`${path}: weight shard "${String(shard)}" must be a plain file name beside model.json`);
      }
      if (!files.some(([name]) => name === shard)) files.push([shard, join(dirname(path), shard)]);
    }
  }
  return { variant, format: 'tfjs', files };
}

/** Reads a file into memory, reporting bytes as they arrive (for the progress bar). */
async function readCounting(path: string, onBytes: (n: number) => void): Promise<Uint8Array<ArrayBuffer>> {
  const { size } = await stat(path);
  const out = new Uint8Array(size);
  let at = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    if (at + chunk.length > size) throw new Error(`${path} grew while being read`);
    out.set(chunk, at);
    at += chunk.length;
    onBytes(chunk.length);
  }
  if (at !== size) throw new Error(`${path} shrank while being read`);
  return out;
}

/** `<id>=<a,b>` options into a map from variant to list. */
function perVariant(items: string[] | undefined, flag: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} expects <variant>=<a,b,…>, got ${item}`);
    out.set(
      item.slice(0, eq),
      item
        .slice(eq + 1)
        .split(',')
        .filter(Boolean),
    );
  }
  return out;
}

function checkGolden(bytes: Uint8Array, path: string): void {
  let g: unknown;
  try {
    g = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new Error(`${path} is not JSON`);
  }
  const o = g as { inputs?: unknown; outputs?: unknown; tolerance?: unknown };
  const isObj = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isObj(o) || !isObj(o.inputs) || !isObj(o.outputs) || typeof o.tolerance !== 'number') {
    throw new Error(`${path} must be { inputs: {…}, outputs: {…}, tolerance: number } (see GoldenFile)`);
  }
}

/** `outpost publish`. */
export const publishCommand: Command = {
  name: 'publish',
  summary: 'publish a model version (all its variants) to a repository, optionally to a channel',
  usage,
  async run(args, io) {
    const { values: v, positionals } = parse(
      args,
      {
        repo: { type: 'string' },
        keys: { type: 'string' },
        name: { type: 'string' },
        version: { type: 'string' },
        variant: { type: 'string', multiple: true },
        backends: { type: 'string', multiple: true },
        requires: { type: 'string', multiple: true },
        golden: { type: 'string' },
        reference: { type: 'string' },
        channel: { type: 'string' },
        'rollout-bp': { type: 'string' },
        expires: { type: 'string' },
        json: { type: 'boolean', default: false },
        'rollout-plan': { type: 'string' },
        'min-shadow-agreement-bp': { type: 'string' },
        compare: { type: 'string' },
        ...(Object.fromEntries(Object.keys(PLAN_FLAGS).map((f) => [f, { type: 'string' }])) as Record<
          keyof typeof PLAN_FLAGS,
          { type: 'string' }
        >),
      },
      true,
    );
    const rolloutPlan = rolloutPlanOf(v);
    let compare: CompareSpec | undefined;
    try {
      if (v.compare !== undefined) compare = parseCompareSpec(v.compare);
    } catch (err) {
      throw new UsageError(`--compare: ${(err as Error).message}`);
    }
    required(v, 'repo', 'keys', 'name', 'version');
    if (v['rollout-bp'] !== undefined && v.channel === undefined) throw new UsageError('--rollout-bp needs --channel');
    const rolloutBp = parseRolloutBp(v['rollout-bp']);
    const expiry = parseExpires(v.expires);
    const specs = [...positionals, ...(v.variant ?? [])];
    if (!specs.length) throw new UsageError('give at least one model (<variant>=<path>)');
    const pairs = specs.map((s) => {
      const eq = s.indexOf('=');
      if (eq > 0) return [s.slice(0, eq), s.slice(eq + 1)] as const;
      if (specs.length > 1) throw new UsageError(`name the variant of ${s} (<variant>=<path>) when publishing several`);
      return ['default', s] as const;
    });
    const ids = pairs.map(([id]) => id);
    const dup = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dup) throw new UsageError(`variant ${dup} is given twice`);
    const backends = perVariant(v.backends, '--backends');
    const requires = perVariant(v.requires, '--requires');
    for (const [flag, m] of [
      ['--backends', backends],
      ['--requires', requires],
    ] as const) {
      for (const id of m.keys()) if (!ids.includes(id)) throw new UsageError(`${flag}: no variant ${id}`);
    }
    for (const b of [...backends.values()].flat()) {
      if (!(BACKEND_IDS as readonly string[]).includes(b)) {
        throw new UsageError(`--backends: unknown backend ${b} (${BACKEND_IDS.join(', ')})`);
      }
    }

    const sources = await Promise.all(pairs.map(([id, path]) => readSource(id, path)));
    const paths = sources.flatMap((s) => s.files.map(([, p]) => p));
    const sizes = await Promise.all(paths.map(async (p) => (await stat(p).catch(() => null))?.size));
    const missing = paths.filter((_, i) => sizes[i] === undefined);
    if (missing.length) throw new Error(`missing file(s): ${missing.join(', ')}`);
    const total = sizes.reduce((a: number, b) => a + b!, 0);
    const reading = progressBar(io, 'reading', v.json);
    let done = 0;
    const files: PublishFile[] = [];
    try {
      for (const s of sources) {
        for (const [i, [name, path]] of s.files.entries()) {
          const bytes = await readCounting(path, (n) => reading.update((done += n), total));
          const f: PublishFile = { variant: s.variant, file: name, format: s.format, primary: i === 0, bytes };
          if (backends.has(s.variant)) f.backends = backends.get(s.variant)!;
          if (requires.has(s.variant)) f.requires = requires.get(s.variant)!;
          files.push(f);
        }
      }
    } finally {
      reading.stop();
    }
    let golden: Uint8Array<ArrayBuffer> | undefined;
    if (v.golden) {
      golden = new Uint8Array(await readFile(v.golden));
      checkGolden(golden, v.golden);
    }
    let reference: Uint8Array<ArrayBuffer> | undefined;
    if (v.reference) {
      reference = new Uint8Array(await readFile(v.reference));
      try {
        decodeReference(reference);
      } catch (err) {
        throw new Error(`${v.reference}: ${(err as Error).message}`);
      }
    }

    const repo = v.repo!;
    const model = v.name!;
    const version = v.version!;
    const outcome = await withRepoLock(repo, async () => {
      const state = await loadRepoState(repo);
      const roles = ['targets', 'snapshot', 'timestamp', ...(v.channel ? (['channels'] as const) : [])] as const;
      const signers = await signersFor(v.keys!, state, roles);
      const now = Date.now();
      const release = await addRelease(
        state,
        {
          model,
          version,
          files,
          ...(golden ? { golden } : {}),
          ...(reference ? { reference } : {}),
          ...(rolloutPlan ? { rolloutPlan } : {}),
          ...(compare ? { compare } : {}),
        },
        signers,
        now,
        expiry,
      );
      let changes: { files: MetadataFiles; blobs: PublishedBlob[] } = release;
      let next = release.state;
      let pointer;
      if (v.channel) {
        const pointed = await pointChannel(
          next,
          { channel: v.channel, model, version, rolloutBp },
          signers,
          now,
          expiry,
        );
        pointer = pointed.pointer;
        next = pointed.result.state;
        changes = {
          files: { ...release.files, ...pointed.result.files },
          blobs: [...release.blobs, ...pointed.result.blobs],
        };
      }
      const writing = progressBar(io, 'writing', v.json);
      try {
        await writeRepoChanges(repo, changes, (d, t) => writing.update(d, t));
      } finally {
        writing.stop();
      }
      return { state: next, pointer };
    });

    const rel = releaseOf(outcome.state.targets.signed, model, version)!;
    const summary = {
      model,
      version,
      targetsVersion: outcome.state.targets.signed.version,
      variants: rel.variants.map((va) => ({
        id: va.id,
        format: va.format,
        ...(va.backends ? { backends: va.backends } : {}),
        ...(va.requires ? { requires: va.requires } : {}),
        files: va.files.map((f) => ({ name: f.name, length: f.length, sha256: f.sha256, url: f.url })),
      })),
      ...(rel.golden ? { golden: { length: rel.golden.length, sha256: rel.golden.sha256, url: rel.golden.url } } : {}),
      ...(rel.reference
        ? { reference: { length: rel.reference.length, sha256: rel.reference.sha256, url: rel.reference.url } }
        : {}),
      ...(outcome.pointer ? { channel: outcome.pointer } : {}),
      ...(rolloutPlan ? { rolloutPlan } : {}),
      ...(compare ? { compare } : {}),
    };
    if (v.json) {
      io.out(JSON.stringify(summary, null, 2));
      return 0;
    }
    io.out(`published ${model}@${version} (targets v${summary.targetsVersion})`);
    for (const va of rel.variants) {
      for (const f of va.files) {
        io.out(
          `  ${va.id.padEnd(10)} ${va.format.padEnd(5)} ${f.name.padEnd(24)} ${String(f.length).padStart(10)} B  ${f.url}`,
        );
      }
    }
    if (rel.golden) io.out(`  golden     ${targetUrlPath(rel.golden.path, rel.golden.sha256)}`);
    if (rel.reference) io.out(`  reference  ${targetUrlPath(rel.reference.path, rel.reference.sha256)}`);
    if (rolloutPlan) {
      io.out(
        `  rollout    ${rolloutPlan.steps.map((s) => `${(s / 100).toFixed(2)}%`).join(' → ')} (outpost rollout start)`,
      );
    }
    if (compare) {
      const t = compare.thresholdMilli === undefined ? '' : ` at ${(compare.thresholdMilli / 1000).toFixed(3)}`;
      io.out(`  compare    ${compare.metric} of ${compare.output}${t} (outpost shadow start)`);
    }
    if (outcome.pointer) io.out(describePointer(outcome.pointer));
    return 0;
  },
};
