import { expect, test as base } from '@playwright/test';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseSync } from 'vite';

// A brand-new Vite app, installed from `npm pack` tarballs of the four packages the way a user
// gets them from the registry, builds, previews and runs a real model in Chromium. The workspace
// links hide what this catches: files missing from "files", "exports" pointing at nothing,
// imports of packages that are not dependencies, and anything else only the monorepo provides.

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const appTemplate = join(root, 'e2e/packed-app');
const MODEL = join(root, 'node_modules/@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const PACKAGES = ['@outpost/core', '@outpost/protocol', '@outpost/backend-onnx', '@outpost/runtime', '@outpost/vite'];

interface Run {
  stdout: string;
  /** stdout and stderr, interleaved as they came. */
  output: string;
}

type Child = ChildProcess & { stdout: Readable; output: () => string; stdoutText: () => string };

interface Scratch {
  dir: string;
  /** Starts a child process that teardown stops, whether the test passed, failed or timed out. */
  start(command: string, args: string[], cwd: string): Child;
  /** Runs a command to its end; fails the test, with the command's output, if it exits non-zero. */
  run(command: string, args: string[], cwd: string): Promise<Run>;
}

/**
 * npm run through `npx playwright` exports its own settings (npm_config_local_prefix=<repo>,
 * npm_package_*), and an npm started with them would act on the monorepo instead of the app.
 * User configuration (registry, cache, userconfig) is kept.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const key of Object.keys(env)) {
    if (/^npm_(package_|lifecycle_|command$|config_local_prefix$|config_call$)/i.test(key)) delete env[key];
  }
  delete env.FORCE_COLOR;
  return env;
}

// Teardown is a fixture, not a `finally`: Playwright abandons a test body that times out, but
// still tears its fixtures down.
const test = base.extend<{ scratch: Scratch }>({
  scratch: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-packed-app-'));
    const children = new Set<ChildProcess>();
    const start: Scratch['start'] = (command, args, cwd) => {
      const child = spawn(command, args, { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        stdout += d.toString();
      });
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      children.add(child);
      child.on('exit', () => children.delete(child));
      return Object.assign(child, { output: () => output, stdoutText: () => stdout });
    };
    const run: Scratch['run'] = (command, args, cwd) => {
      const child = start(command, args, cwd);
      return new Promise((done, fail) => {
        child.on('error', fail);
        child.on('close', (code) => {
          if (code === 0) done({ stdout: child.stdoutText(), output: child.output() });
          else fail(new Error(`${command} ${args.join(' ')} exited with ${code}:\n${child.output()}`));
        });
      });
    };
    try {
      await use({ dir, start, run });
    } finally {
      await Promise.all([...children].map(stop));
      await rm(dir, { recursive: true, force: true });
    }
  },
});

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The origin `vite preview` prints once it listens; it is started on port 0, any free port. */
async function previewOrigin(preview: Child): Promise<string> {
  const url = /http:\/\/127\.0\.0\.1:\d+\//;
  await expect.poll(() => url.test(preview.output()) || preview.exitCode !== null, { timeout: 30_000 }).toBe(true);
  const found = url.exec(preview.output());
  if (!found) throw new Error(`vite preview exited with ${preview.exitCode}:\n${preview.output()}`);
  return new URL(found[0]).origin;
}

async function timed<T>(timings: Record<string, string>, name: string, work: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await work();
  } finally {
    timings[name] = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  }
}

async function jsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
}

function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports];
  if (exports && typeof exports === 'object') return Object.values(exports).flatMap(exportTargets);
  return [];
}

const bareName = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

/**
 * What in an installed package's published files would break only outside the monorepo: an
 * "exports" target that was not packed, a relative import or `new URL(..., import.meta.url)`
 * of a file that was not packed, and a bare import of a package it does not depend on (the
 * workspace hoists all devDependencies, an app does not).
 */
async function packageProblems(pkgDir: string): Promise<string[]> {
  const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as {
    name: string;
    exports?: unknown;
    dependencies?: Record<string, string>;
    peerDependencies?: Record<string, string>;
  };
  const problems: string[] = [];
  for (const target of exportTargets(pkg.exports)) {
    if (!existsSync(join(pkgDir, target))) problems.push(`${pkg.name}: "exports" names ${target}, not in the package`);
  }
  const allowed = new Set([
    pkg.name,
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.peerDependencies ?? {}),
  ]);
  const builtins = new Set(builtinModules);
  for (const file of await jsFiles(join(pkgDir, 'dist'))) {
    const code = await readFile(file, 'utf8');
    const parsed = parseSync(file, code);
    const specifiers = [
      ...parsed.module.staticImports.map((i) => i.moduleRequest.value),
      ...parsed.module.staticExports.flatMap((e) =>
        e.entries.flatMap((x) => (x.moduleRequest ? [x.moduleRequest.value] : [])),
      ),
      ...parsed.module.dynamicImports.map((d) =>
        code.slice(d.moduleRequest.start, d.moduleRequest.end).replace(/^['"`]|['"`]$/g, ''),
      ),
    ];
    // Comments blanked: TSDoc examples quote `new URL(...)` calls of other files.
    let live = code;
    for (const c of parsed.comments) live = live.slice(0, c.start) + ' '.repeat(c.end - c.start) + live.slice(c.end);
    const urls = [...live.matchAll(/new URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g)].map((m) => m[2]!);
    const where = relative(pkgDir, file);
    for (const s of [...specifiers, ...urls]) {
      if (s.startsWith('.')) {
        if (!existsSync(resolve(dirname(file), s))) problems.push(`${pkg.name}/${where}: ${s} is not in the package`);
      } else if (!s.startsWith('node:') && !builtins.has(s) && !allowed.has(bareName(s))) {
        problems.push(`${pkg.name}/${where}: imports ${s}, which is not a dependency`);
      }
    }
  }
  return problems;
}

test('a new Vite app on the packed packages builds, previews isolated and runs Silero VAD on wasm', async ({
  scratch,
  context,
  page,
}) => {
  test.setTimeout(300_000);
  const timings: Record<string, string> = {};
  const packs = join(scratch.dir, 'packs');
  const app = join(scratch.dir, 'app');
  const viteVersion = (
    JSON.parse(await readFile(join(root, 'node_modules/vite/package.json'), 'utf8')) as { version: string }
  ).version;

  // The packages have no prepack script: `npm pack` ships whatever dist/ holds, so build first,
  // as `npm test` does.
  await timed(timings, 'tsc -b', () =>
    scratch.run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b'], root),
  );
  await mkdir(packs);
  const packed = await timed(timings, 'npm pack', () =>
    scratch.run('npm', ['pack', '--json', '--pack-destination', packs, ...PACKAGES.flatMap((p) => ['-w', p])], root),
  );
  const report = JSON.parse(packed.stdout) as { name: string; filename: string }[];
  expect(report.map((r) => r.name).sort()).toEqual([...PACKAGES].sort());
  const tarballs = report.map((r) => join(packs, r.filename));

  await cp(appTemplate, app, { recursive: true });
  await mkdir(join(app, 'public'));
  await copyFile(MODEL, join(app, 'public/silero_vad_v5.onnx'));
  await timed(timings, 'npm install', () =>
    scratch.run(
      'npm',
      ['install', ...tarballs, `vite@${viteVersion}`, '--prefer-offline', '--no-audit', '--no-fund'],
      app,
    ),
  );
  for (const name of PACKAGES) {
    expect(await packageProblems(join(app, 'node_modules', name)), name).toEqual([]);
  }

  const vite = join(app, 'node_modules/vite/bin/vite.js');
  const build = await timed(timings, 'vite build', () => scratch.run(process.execPath, [vite, 'build'], app));
  expect(build.output).toContain('outpost: production hosting must send these headers');
  expect(build.output).toContain('Cross-Origin-Opener-Policy: same-origin');
  expect(build.output).toContain('Cross-Origin-Embedder-Policy: require-corp');
  expect(build.output).toMatch(/\*\.wasm[^\n]*\n\s*Content-Type: application\/wasm/);
  const wasm = await stat(join(app, 'dist/outpost-ort/ort-wasm-simd-threaded.wasm'));
  const shipped = await stat(join(app, 'node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm'));
  expect(wasm.size).toBe(shipped.size);

  const preview = scratch.start(
    process.execPath,
    [vite, 'preview', '--host', '127.0.0.1', '--port', '0', '--strictPort'],
    app,
  );
  const origin = await previewOrigin(preview);

  // Context-wide, so requests from the Outpost worker and ORT's thread workers count too.
  const requests: string[] = [];
  context.on('request', (r) => requests.push(r.url()));
  const t0 = performance.now();
  await page.goto(`${origin}/`);
  await expect(page.locator('#result')).not.toHaveText('pending', { timeout: 60_000 });
  timings['page: load + run'] = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  const result = JSON.parse((await page.locator('#result').textContent()) ?? '') as Record<string, unknown>;

  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  expect(result, JSON.stringify(result)).toMatchObject({
    ok: true,
    backend: 'wasm',
    outputDims: [1, 1],
    stateDims: [2, 1, 128],
  });
  const p = result.probability as number;
  expect(Number.isFinite(p) && p >= 0 && p <= 1, `probability ${p}`).toBe(true);

  const paths = requests
    .map((u) => new URL(u))
    .filter((u) => u.origin === origin)
    .map((u) => u.pathname);
  // Proves the recording sees worker traffic, so the host check below is not vacuous.
  expect(paths).toEqual(
    expect.arrayContaining(['/', '/silero_vad_v5.onnx', '/outpost-ort/ort-wasm-simd-threaded.wasm']),
  );
  expect(requests.filter((u) => new URL(u).origin !== origin)).toEqual([]);

  console.log(
    `packed-app timings: ${Object.entries(timings)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
});
