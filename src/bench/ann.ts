/**
 * The ANN part of `memex bench`: every system builds an index over the same rows, writes it and
 * reads it back, then answers the same queries at each efSearch, timed one query at a time on one
 * thread; recall@k is against exact search (Memex's own scan, the ground truth) in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DEFAULT_HNSW, HnswVectorIndex, type HnswParams } from '../index/hnsw.js';
import { HnswBuilder } from '../index/hnsw-builder.js';
import { graphAddon } from '../index/native.js';
import { exactScan, exactScanKind } from '../index/vector-index.js';
import type { BenchVectors } from './datasets.js';
import { histogram, latency, type Histogram, type Latency } from './measure.js';

/** One index a user could pick, seen through the calls the sweep makes. */
export interface AnnSystem {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  build(data: BenchVectors, params: HnswParams): void | Promise<void>;
  /** Writes the index under `dir` and reads it back in place of the built one. */
  persist(dir: string): Promise<{ writeSeconds: number; loadSeconds: number; fileBytes: number }>;
  setEf(ef: number): void | Promise<void>;
  /** The labels (row numbers) of the k nearest rows, best first. */
  search(query: Float32Array, k: number): number[] | Promise<number[]>;
  close(): void | Promise<void>;
}

export interface CurvePoint extends Latency {
  efSearch: number;
  recall: number;
}

export interface SystemResult {
  name: string;
  version: string;
  description: string;
  build: {
    seconds: number;
    rowsPerSecond: number;
    /** Resident memory the build added (after a full collection), bytes. */
    memoryBytes: number;
    writeSeconds: number;
    loadSeconds: number;
    fileBytes: number;
    /** The index read back answers the first queries exactly as the one built. */
    reloadMatches: boolean;
  };
  curve: CurvePoint[];
  /** Latencies at the efSearch nearest the default. */
  histogram: Histogram & { efSearch: number };
}

export interface AnnResult {
  rows: number;
  dimension: number;
  queries: number;
  k: number;
  exact: Latency & { kind: 'native' | 'javascript'; histogram: Histogram };
  systems: SystemResult[];
  skipped: { name: string; reason: string }[];
  /** Memex against each other system at Memex's recall at each efSearch (see `atEqualRecall`). */
  equalRecall: { peer: string; points: EqualRecallPoint[] }[];
}

/** One of Memex's curve points beside another system's queries/s at the same recall. */
export interface EqualRecallPoint {
  efSearch: number;
  recall: number;
  qps: number;
  /** The other system's queries/s at `recall`; null where its curve does not reach that recall. */
  peerQps: number | null;
  /** `qps / peerQps`: how many times the queries Memex answers at this recall. */
  ratio: number | null;
}

/**
 * Each of `curve`'s points beside `peer`'s queries/s at the same recall, read off the peer's curve
 * as ann-benchmarks plots it: between the two points around that recall, log(queries/s) taken as
 * linear in recall. Where several of the peer's points share a recall, the fastest stands for it;
 * a point the peer's recall never reaches (or that is below all of it) has no peer figure. Two
 * graphs built from the same rows differ a little in recall at the same efSearch, so this, not
 * the same efSearch, is the fair comparison.
 */
export function atEqualRecall(curve: readonly CurvePoint[], peer: readonly CurvePoint[]): EqualRecallPoint[] {
  const best = new Map<number, number>();
  for (const p of peer) best.set(p.recall, Math.max(best.get(p.recall) ?? 0, p.qps));
  // Faster at a higher recall wins over slower at a lower one: the curve's upper envelope.
  const points = [...best].sort((a, b) => a[0] - b[0]).filter(([recall, qps], i, all) => all.slice(i + 1).every(([higher, faster]) => higher <= recall || faster < qps));
  return curve.map(({ efSearch, recall, qps }) => {
    let peerQps: number | null = null;
    for (let i = 0; i < points.length; i++) {
      const [r1, q1] = points[i] as [number, number];
      if (r1 === recall) {
        peerQps = q1;
        break;
      }
      const next = points[i + 1];
      if (next && r1 < recall && recall < next[0]) {
        const t = (recall - r1) / (next[0] - r1);
        peerQps = Math.exp(Math.log(q1) + t * (Math.log(next[1]) - Math.log(q1)));
        break;
      }
    }
    return { efSearch, recall, qps, peerQps, ratio: peerQps === null || peerQps <= 0 ? null : qps / peerQps };
  });
}

export interface AnnOptions {
  k: number;
  efSearch: number[];
  /** Timed passes per efSearch (the systems take turns within each). */
  rounds: number;
  params?: HnswParams;
  onProgress?: (step: string, done: number, total: number) => void;
}

const WARMUP_QUERIES = 200;
/** Queries per turn when systems take turns within a pass, so a burst of other load lands on all alike. */
const BLOCK = 50;

/** A system's index, or an error naming the system when it is used before `build`. */
export function builtIndex<T>(name: string, get: () => T | null): () => T {
  return () => {
    const value = get();
    if (value === null) throw new Error(`${name}: used before build`);
    return value;
  };
}

/**
 * Memex's index, built as Memex builds a user's graph from nothing: in a worker thread, on `threads`
 * threads with its graph addon (the machine's cores by default, as `index.buildThreads`).
 */
export function memexSystem(threads = availableParallelism()): AnnSystem {
  let index: HnswVectorIndex | null = null;
  let data: BenchVectors | null = null;
  let params = DEFAULT_HNSW;
  const built = builtIndex('memex', () => index);
  const native = graphAddon().addon !== null;
  return {
    name: 'memex',
    version: 'HnswVectorIndex',
    description: `Memex's HnswVectorIndex (its hnswlib build, float32 queries), built in a worker ${native ? `on ${threads} thread${threads === 1 ? '' : 's'}` : 'one row at a time (no graph addon here)'}`,
    async build(vectors, hnsw) {
      data = vectors;
      params = hnsw;
      const builder = new HnswBuilder({ dimension: vectors.dimension, params: hnsw, capacity: vectors.count, threads });
      for (let i = 0; i < vectors.count; i++) {
        builder.add(i, vectors.rows.subarray(i * vectors.dimension, (i + 1) * vectors.dimension));
        await builder.room();
      }
      index = await builder.finish(join(tmpdir(), `memex-bench-graph-${process.pid}-${Date.now()}.hnsw`));
    },
    async persist(dir) {
      const path = `${dir}.hnsw`;
      const t0 = performance.now();
      built().write(path);
      const t1 = performance.now();
      const count = (data as BenchVectors).count;
      index = HnswVectorIndex.read(path, (data as BenchVectors).dimension, params, labels(count));
      return { writeSeconds: (t1 - t0) / 1000, loadSeconds: (performance.now() - t1) / 1000, fileBytes: await fileBytes(path) };
    },
    setEf(ef) {
      built().setEf(ef);
    },
    search: (query, k) => built().search(query, k).map((n) => n.label),
    close() {
      index = null;
    },
  };
}

function* labels(count: number): Generator<number> {
  for (let i = 0; i < count; i++) yield i;
}

export async function fileBytes(path: string): Promise<number> {
  const { stat, readdir } = await import('node:fs/promises');
  const info = await stat(path);
  if (!info.isDirectory()) return info.size;
  let total = 0;
  for (const entry of await readdir(path, { withFileTypes: true })) total += await fileBytes(join(path, entry.name));
  return total;
}

// Memory is read after a forced collection, so garbage does not count as growth.
let collector: (() => void) | null = null;
function residentAfterCollection(): number {
  if (!collector) {
    setFlagsFromString('--expose-gc');
    collector = runInNewContext('gc') as () => void;
  }
  collector();
  collector();
  return process.memoryUsage().rss;
}

async function timeQueries(system: AnnSystem, queries: readonly Float32Array[], k: number, from: number, to: number, into: Float64Array, offset: number, keep: number[][] | null): Promise<number> {
  const start = performance.now();
  for (let q = from; q < to; q++) {
    const t = performance.now();
    let found = system.search(queries[q] as Float32Array, k);
    if (found instanceof Promise) found = await found;
    into[offset + q] = performance.now() - t;
    if (keep) keep[q] = found;
  }
  return performance.now() - start;
}

async function searchAll(system: AnnSystem, queries: readonly Float32Array[], k: number): Promise<number[][]> {
  const out: number[][] = [];
  for (const query of queries) out.push(await system.search(query, k));
  return out;
}

async function closeQuietly(system: AnnSystem): Promise<void> {
  try {
    await system.close();
  } catch {
    // A peer that failed half-way may not close cleanly; its files go with the temporary folder.
  }
}

function recallAt(found: readonly (readonly number[])[], truth: readonly Set<number>[]): number {
  let hits = 0;
  let wanted = 0;
  truth.forEach((expected, q) => {
    for (const label of found[q] ?? []) if (expected.has(label)) hits++;
    wanted += expected.size;
  });
  return wanted === 0 ? 1 : hits / wanted;
}

/** The efSearch of the sweep nearest the default (64): the one whose latencies the histogram shows. */
export function histogramEf(efSearch: readonly number[]): number {
  return efSearch.reduce((best, ef) => (Math.abs(Math.log(ef / DEFAULT_HNSW.efSearch)) < Math.abs(Math.log(best / DEFAULT_HNSW.efSearch)) ? ef : best), efSearch[0] as number);
}

/**
 * Builds, persists and sweeps every system over `data`. A system that fails to build (a peer that
 * cannot load here, say) is reported in `skipped` with its reason; the others go on.
 */
export async function benchAnn(data: BenchVectors, systems: AnnSystem[], options: AnnOptions): Promise<AnnResult> {
  const { k, rounds } = options;
  const params = options.params ?? DEFAULT_HNSW;
  const { dimension } = data;
  const queries = Array.from({ length: data.queryCount }, (_, i) => data.queries.subarray(i * dimension, (i + 1) * dimension));
  const progress = options.onProgress ?? (() => undefined);

  // Exact search: the ground truth, and the baseline every curve ends at.
  progress('exact search', 0, queries.length);
  const exactLatencies = new Float64Array(queries.length);
  const truth: Set<number>[] = [];
  const exactStart = performance.now();
  for (const [q, query] of queries.entries()) {
    const t = performance.now();
    const found = exactScan(data.rows, dimension, query, null, data.count, k);
    exactLatencies[q] = performance.now() - t;
    truth.push(new Set(found.map((n) => n.label)));
    if (q % 50 === 0) progress('exact search', q, queries.length);
  }
  const exact = { ...latency(exactLatencies, performance.now() - exactStart), kind: exactScanKind().kind, histogram: histogram(exactLatencies) };

  const dir = mkdtempSync(join(tmpdir(), 'memex-bench-'));
  const ready: { system: AnnSystem; build: SystemResult['build'] }[] = [];
  const skipped: AnnResult['skipped'] = [];
  const check = queries.slice(0, 20);
  try {
    for (const system of systems) {
      progress(`building ${system.name}`, 0, 1);
      try {
        const before = residentAfterCollection();
        const start = performance.now();
        await system.build(data, params);
        const seconds = (performance.now() - start) / 1000;
        const memoryBytes = Math.max(0, residentAfterCollection() - before);
        await system.setEf(params.efSearch);
        const answers = await searchAll(system, check, k);
        const persisted = await system.persist(join(dir, system.name));
        await system.setEf(params.efSearch);
        const again = await searchAll(system, check, k);
        const reloadMatches = answers.every((a, i) => a.join(',') === again[i]?.join(','));
        ready.push({ system, build: { seconds, rowsPerSecond: data.count / seconds, memoryBytes, ...persisted, reloadMatches } });
      } catch (cause) {
        skipped.push({ name: system.name, reason: `failed here: ${(cause as Error).message}` });
        await closeQuietly(system);
      }
    }

    const histogramAt = histogramEf(options.efSearch);
    const curves = ready.map(() => [] as CurvePoint[]);
    const histograms: SystemResult['histogram'][] = ready.map(() => ({ efSearch: histogramAt, edgesMs: [], counts: [] }));
    const n = queries.length;
    const warm = Math.min(WARMUP_QUERIES, n);
    for (const [e, ef] of options.efSearch.entries()) {
      progress(`efSearch ${ef}`, e, options.efSearch.length);
      for (const { system } of ready) {
        await system.setEf(ef);
        await timeQueries(system, queries, k, 0, warm, new Float64Array(warm), 0, null);
      }
      const latencies = ready.map(() => new Float64Array(n * rounds));
      const kept = ready.map(() => [] as number[][]);
      const spent = ready.map(() => 0);
      for (let round = 0; round < rounds; round++) {
        for (let from = 0, block = 0; from < n; from += BLOCK, block++) {
          const to = Math.min(n, from + BLOCK);
          // Who goes first turns with each block and round.
          for (let i = 0; i < ready.length; i++) {
            const s = (i + block + round) % ready.length;
            spent[s] = (spent[s] as number) + (await timeQueries((ready[s] as (typeof ready)[number]).system, queries, k, from, to, latencies[s] as Float64Array, round * n, round === 0 ? (kept[s] as number[][]) : null));
          }
        }
      }
      ready.forEach((_, s) => {
        (curves[s] as CurvePoint[]).push({ efSearch: ef, recall: recallAt(kept[s] as number[][], truth), ...latency(latencies[s] as Float64Array, spent[s] as number) });
        if (ef === histogramAt) histograms[s] = { efSearch: ef, ...histogram(latencies[s] as Float64Array) };
      });
    }
    progress('efSearch', options.efSearch.length, options.efSearch.length);
    return {
      rows: data.count,
      dimension,
      queries: n,
      k,
      exact,
      systems: ready.map(({ system, build }, s) => ({ name: system.name, version: system.version, description: system.description, build, curve: curves[s] as CurvePoint[], histogram: histograms[s] as SystemResult['histogram'] })),
      skipped,
      equalRecall: equalRecalls(ready.map(({ system }, s) => ({ name: system.name, curve: curves[s] as CurvePoint[] }))),
    };
  } finally {
    for (const { system } of ready) await closeQuietly(system);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Memex's curve against each other system's, at equal recall; none without Memex among them. */
function equalRecalls(systems: { name: string; curve: CurvePoint[] }[]): AnnResult['equalRecall'] {
  const memex = systems.find((s) => s.name === 'memex');
  if (!memex) return [];
  return systems.filter((s) => s !== memex).map((s) => ({ peer: s.name, points: atEqualRecall(memex.curve, s.curve) }));
}
