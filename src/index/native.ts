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

/** A graph made by native/hnsw.cc's `create` or `read`. */
export type GraphHandle = { readonly brand: 'memex-hnsw-graph' };

/** native/hnsw.cc's exports. */
export interface GraphAddon {
  create(dim: number, capacity: number, m: number, efConstruction: number, seed: number): GraphHandle;
  read(path: string, dim: number): GraphHandle;
  add(graph: GraphHandle, labels: Uint32Array, vectors: Float32Array, threads: number): void;
  write(graph: GraphHandle, path: string): void;
  search(graph: GraphHandle, query: Float32Array, k: number, accept: ((label: number) => boolean) | null): { labels: Uint32Array; distances: Float32Array };
  setEf(graph: GraphHandle, ef: number): void;
  markDelete(graph: GraphHandle, label: number): void;
  resize(graph: GraphHandle, capacity: number): void;
  point(graph: GraphHandle, label: number): Float32Array;
  count(graph: GraphHandle): number;
  capacity(graph: GraphHandle): number;
  dim(graph: GraphHandle): number;
}

export interface OptionalAddon<T> {
  addon: T | null;
  /** Why it is not loaded, when it is not. */
  reason: string;
}

const optional = new Map<string, OptionalAddon<unknown>>();

/**
 * One of Memex's own addons that scripts/build-native.mjs built beside the CPU-tuned hnswlib, loaded
 * under the same rule (made for this machine); null, with the reason, where it is not.
 */
function optionalAddon<T>(key: 'scan' | 'graph', off: string, what: string): OptionalAddon<T> {
  const known = optional.get(key);
  if (known) return known as OptionalAddon<T>;
  const found = ((): OptionalAddon<T> => {
    if (process.env[off] === '0') return { addon: null, reason: `${off}=0` };
    const { record, reason } = nativeRecord();
    if (!record) return { addon: null, reason };
    if (typeof record[key] !== 'string') return { addon: null, reason: `the CPU-tuned build has no ${what} (run \`npm run build:native\`)` };
    try {
      return { addon: require(join(nativeDir, record[key])) as T, reason: '' };
    } catch (cause) {
      return { addon: null, reason: `the native ${what} cannot be loaded: ${(cause as Error).message}` };
    }
  })();
  optional.set(key, found);
  return found;
}

/**
 * Memex's native exact scan (native/scan.cc); null where it is not built for this machine
 * (src/index/vector-index.ts then scans in JavaScript). `MEMEX_SCAN_NATIVE=0` turns it off.
 */
export function scanAddon(): OptionalAddon<ScanAddon> {
  return optionalAddon<ScanAddon>('scan', 'MEMEX_SCAN_NATIVE', 'exact scan');
}

/**
 * Memex's HNSW graph (native/hnsw.cc: threaded builds, typed-array searches); null where it is not
 * built for this machine (src/index/hnsw.ts then uses hnswlib-node). Off with the tuned hnswlib
 * under `MEMEX_HNSW_NATIVE=0`.
 */
export function graphAddon(): OptionalAddon<GraphAddon> {
  return optionalAddon<GraphAddon>('graph', 'MEMEX_HNSW_NATIVE', 'HNSW graph');
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
