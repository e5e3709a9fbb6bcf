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

function nativeBuild(): { module: HnswlibModule | null; reason: string } {
  if (process.env.MEMEX_HNSW_NATIVE === '0') return { module: null, reason: 'MEMEX_HNSW_NATIVE=0' };
  const dir = join(projectRoot, 'build', 'native');
  const recordPath = join(dir, 'memex-native.json');
  if (!existsSync(recordPath)) return { module: null, reason: 'no CPU-tuned build (run `npm run build:native`)' };
  try {
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as Record<string, unknown>;
    const here = cpuFingerprint();
    for (const key of Object.keys(here) as (keyof typeof here)[]) {
      if (record[key] !== here[key]) return { module: null, reason: `the CPU-tuned build was made for another ${key}` };
    }
    const hnswVersion = (require('hnswlib-node/package.json') as { version: string }).version;
    if (record.hnswlib !== hnswVersion) return { module: null, reason: 'the CPU-tuned build is of another hnswlib-node version' };
    return { module: require(join(dir, String(record.addon))) as HnswlibModule, reason: '' };
  } catch (cause) {
    return { module: null, reason: `the CPU-tuned build cannot be loaded: ${(cause as Error).message}` };
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
