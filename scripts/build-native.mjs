#!/usr/bin/env node
// Builds a second copy of hnswlib-node's addon tuned for this machine's CPU (-O3 -march=native),
// next to the portable one npm built, and Memex's own addons with the same flags: the exact scan
// (native/scan.cc) and the HNSW graph over hnswlib-node's hnswlib headers (native/hnsw.cc). Memex
// loads them only on a CPU with the same fingerprint (see src/index/native.ts), so a node_modules
// copied to another machine falls back to the portable addon instead of dying with SIGILL. On the
// machines here the tuned hnswlib answered 1.4-1.6x and indexed 1.4-1.7x faster (bench/ann.ts). Optional by design: no compiler, or MEMEX_NATIVE_BUILD=0, means the portable
// addon is used and nothing else changes.
//
// Runs from `postinstall`; `npm run build:native` runs it again by hand.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'build', 'native');
const say = (line) => process.stderr.write(`memex: ${line}\n`);

if (process.env.MEMEX_NATIVE_BUILD === '0') {
  say('MEMEX_NATIVE_BUILD=0: skipping the CPU-tuned hnswlib build (the portable addon is used)');
  process.exit(0);
}

const require = createRequire(import.meta.url);
let hnswDir;
try {
  hnswDir = dirname(require.resolve('hnswlib-node/package.json'));
} catch {
  say('hnswlib-node is not installed; skipping the CPU-tuned build');
  process.exit(0);
}
const hnswVersion = /"version"\s*:\s*"([^"]+)"/.exec(readFileSync(join(hnswDir, 'package.json'), 'utf8'))?.[1] ?? 'unknown';
if (!existsSync(join(hnswDir, 'build', 'Release', 'addon.node'))) {
  say('hnswlib-node was installed without building its addon (npm skipped its install script).');
  say('Fix: `npm rebuild hnswlib-node` (or approve it: `npm install-scripts approve hnswlib-node`).');
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const gyp = {
  targets: [
    {
      target_name: 'addon',
      sources: [relative(out, join(hnswDir, 'src', 'addon.cc'))],
      include_dirs: [dirname(createRequire(join(hnswDir, 'package.json')).resolve('node-addon-api/package.json'))],
      defines: ['NAPI_DISABLE_CPP_EXCEPTIONS'],
      'cflags!': ['-fno-exceptions', '-O2'],
      'cflags_cc!': ['-fno-exceptions', '-O2'],
      cflags_cc: ['-O3', '-march=native'],
    },
    {
      // Memex's own exact scan (native/scan.cc, src/index/vector-index.ts exactScan).
      target_name: 'memex_scan',
      sources: [relative(out, join(root, 'native', 'scan.cc'))],
      'cflags!': ['-O2'],
      'cflags_cc!': ['-O2'],
      cflags_cc: ['-O3', '-march=native'],
    },
    {
      // Memex's HNSW graph over hnswlib-node's own hnswlib (native/hnsw.cc): threaded builds, typed-array searches.
      target_name: 'memex_hnsw',
      sources: [relative(out, join(root, 'native', 'hnsw.cc'))],
      include_dirs: [relative(out, join(hnswDir, 'src'))],
      'cflags!': ['-fno-exceptions', '-O2'],
      'cflags_cc!': ['-fno-exceptions', '-O2'],
      cflags_cc: ['-O3', '-march=native', '-pthread'],
      ldflags: ['-pthread'],
    },
  ],
};
writeFileSync(join(out, 'binding.gyp'), JSON.stringify(gyp, null, 2));

const nodeGyp = process.env.npm_config_node_gyp ?? findNpmNodeGyp();
if (!nodeGyp) {
  say('node-gyp not found; skipping the CPU-tuned hnswlib build (the portable addon is used)');
  process.exit(0);
}
const started = Date.now();
// Offline machines have no headers to download: use the ones installed beside node when npm
// did not name a nodedir.
const installedHeaders = join(dirname(process.execPath), '..');
const nodedir =
  process.env.npm_config_nodedir ?? (existsSync(join(installedHeaders, 'include', 'node', 'node_api.h')) ? installedHeaders : null);
const args = [nodeGyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const build = spawnSync(process.execPath, args, { cwd: out, encoding: 'utf8', env: process.env });
if (build.status !== 0) {
  say(`the CPU-tuned hnswlib build failed; the portable addon is used. node-gyp said:\n${(build.stderr || build.stdout).slice(-2000)}`);
  rmSync(out, { recursive: true, force: true });
  process.exit(0);
}

// Prove it runs here before Memex may load it: an illegal instruction kills only this child.
const addon = join(out, 'build', 'Release', 'addon.node');
const probe = `const { HierarchicalNSW } = require(${JSON.stringify(addon)});
const index = new HierarchicalNSW('ip', 8); index.initIndex(64);
for (let i = 0; i < 64; i++) index.addPoint(Array.from({ length: 8 }, (_, j) => Math.sin(i * 8 + j)), i);
const { neighbors } = index.searchKnn(Array.from({ length: 8 }, (_, j) => Math.sin(24 + j)), 1);
if (neighbors[0] !== 3) process.exit(3);
const { topk } = require(${JSON.stringify(join(out, 'build', 'Release', 'memex_scan.node'))});
const rows = new Float32Array(64 * 8).map((_, i) => Math.sin(i));
const best = topk(rows, 8, rows.subarray(24, 32), null, 64, 1);
if (best.labels[0] !== 3) process.exit(4);
const hnsw = require(${JSON.stringify(join(out, 'build', 'Release', 'memex_hnsw.node'))});
const graph = hnsw.create(8, 64, 16, 200, 100);
hnsw.add(graph, Uint32Array.from({ length: 64 }, (_, i) => i), rows, 2);
if (hnsw.search(graph, rows.subarray(24, 32), 1, null).labels[0] !== 3) process.exit(5);`;
const check = spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' });
if (check.status !== 0) {
  say(`the CPU-tuned hnswlib addon does not run here (${check.signal ?? `exit ${check.status}`}); the portable addon is used`);
  rmSync(out, { recursive: true, force: true });
  process.exit(0);
}

writeFileSync(
  join(out, 'memex-native.json'),
  JSON.stringify({ version: 1, addon: 'build/Release/addon.node', scan: 'build/Release/memex_scan.node', graph: 'build/Release/memex_hnsw.node', hnswlib: hnswVersion, ...fingerprint() }, null, 2) + '\n',
);
say(`built a CPU-tuned hnswlib addon, the exact scan and Memex's graph in ${((Date.now() - started) / 1000).toFixed(1)} s (build/native)`);

function findNpmNodeGyp() {
  const npmDir = process.env.npm_execpath ? join(dirname(process.env.npm_execpath), '..') : null;
  const candidates = [
    npmDir && join(npmDir, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((path) => path && existsSync(path)) ?? null;
}

// Keep in step with cpuFingerprint() in src/index/native.ts.
function fingerprint() {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const flags = /^flags\s*:(.*)$/m.exec(info)?.[1]?.trim().split(/\s+/).sort().join(' ');
    if (flags) cpu += ` | ${flags}`;
  } catch {
    // Not Linux: the model name alone.
  }
  return { platform: process.platform, arch: process.arch, abi: process.versions.modules, cpu };
}
