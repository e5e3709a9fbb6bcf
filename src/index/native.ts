import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as Hnswlib from 'hnswlib-node';
import { MemexError } from '../core/index.js';

export type HnswlibModule = typeof Hnswlib;

export interface HnswlibBuild {
  module: HnswlibModule;
  /** `native`: the copy `scripts/build-native.mjs` tuned for this CPU; `portable`: npm's build. */
  kind: 'native' | 'portable';
  /** Why the portable build is used, when it is. */
  reason: string | null;
}

const require = createRequire(import.meta.url);
const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let loaded: HnswlibBuild | null = null;

/**
 * hnswlib-node, as fast as this machine allows. The CPU-tuned addon (-march=native, built at install)
 * is used only where it was built for: same platform, Node ABI and CPU fingerprint, so a copied
 * node_modules never meets an instruction its CPU lacks. `MEMEX_HNSW_NATIVE=0` forces the portable one.
 */
export function hnswlib(): HnswlibBuild {
  loaded ??= load();
  return loaded;
}

function load(): HnswlibBuild {
  const native = nativeBuild();
  if (native.module) return { module: native.module, kind: 'native', reason: null };
  try {
    return { module: require('hnswlib-node') as HnswlibModule, kind: 'portable', reason: native.reason };
  } catch (cause) {
    throw new MemexError('MEMEX_INDEX_UNAVAILABLE', `cannot load hnswlib-node's native addon: ${(cause as Error).message}`, { cause });
  }
}

const nativeDir = join(projectRoot, 'build', 'native');

/** The CPU-tuned build's record, when it was made for this machine; else why not. */
function nativeRecord(): { record: Record<string, unknown> | null; reason: string } {
  const recordPath = join(nativeDir, 'memex-native.json');
  if (!existsSync(recordPath)) return { record: null, reason: 'no CPU-tuned build (run `npm run build:native`)' };
  try {
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as Record<string, unknown>;
    const here = cpuFingerprint();
    for (const key of Object.keys(here) as (keyof typeof here)[]) {
      if (record[key] !== here[key]) return { record: null, reason: `the CPU-tuned build was made for another ${key}` };
    }
    return { record, reason: '' };
  } catch (cause) {
    return { record: null, reason: `the CPU-tuned build's record cannot be read: ${(cause as Error).message}` };
  }
}

function nativeBuild(): { module: HnswlibModule | null; reason: string } {
  if (process.env.MEMEX_HNSW_NATIVE === '0') return { module: null, reason: 'MEMEX_HNSW_NATIVE=0' };
  const { record, reason } = nativeRecord();
  if (!record) return { module: null, reason };
  try {
    const hnswVersion = (require('hnswlib-node/package.json') as { version: string }).version;
    if (record.hnswlib !== hnswVersion) return { module: null, reason: 'the CPU-tuned build is of another hnswlib-node version' };
    return { module: require(join(nativeDir, String(record.addon))) as HnswlibModule, reason: '' };
  } catch (cause) {
    return { module: null, reason: `the CPU-tuned build cannot be loaded: ${(cause as Error).message}` };
  }
}

/** native/scan.cc's exports. */
export interface ScanAddon {
  topk(matrix: Float32Array, dim: number, query: Float32Array, labels: Uint32Array | null, rows: number, k: number): { labels: Uint32Array; scores: Float32Array };
}

let scan: { addon: ScanAddon | null; reason: string } | null = null;

/**
 * Memex's native exact scan (native/scan.cc), built with the CPU-tuned hnswlib by
 * scripts/build-native.mjs and loaded under the same rule; null where it is not (src/index/vector-index.ts
 * then scans in JavaScript). `MEMEX_SCAN_NATIVE=0` turns it off.
 */
export function scanAddon(): { addon: ScanAddon | null; reason: string } {
  scan ??= loadScan();
  return scan;
}

function loadScan(): { addon: ScanAddon | null; reason: string } {
  if (process.env.MEMEX_SCAN_NATIVE === '0') return { addon: null, reason: 'MEMEX_SCAN_NATIVE=0' };
  const { record, reason } = nativeRecord();
  if (!record) return { addon: null, reason };
  if (typeof record.scan !== 'string') return { addon: null, reason: 'the CPU-tuned build has no exact scan (run `npm run build:native`)' };
  try {
    return { addon: require(join(nativeDir, record.scan)) as ScanAddon, reason: '' };
  } catch (cause) {
    return { addon: null, reason: `the native exact scan cannot be loaded: ${(cause as Error).message}` };
  }
}

/** Keep in step with fingerprint() in scripts/build-native.mjs. */
export function cpuFingerprint(): { platform: string; arch: string; abi: string; cpu: string } {
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
