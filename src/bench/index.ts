/**
 * `memex bench`: recall and speed on a user's own data or a named dataset, every figure beside its
 * baseline in the same run. The CLI and the scripts in bench/ are thin callers of `runBench`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { MemexError } from '../core/index.js';
import { memexVersion } from '../core/version.js';
import type { Embedder } from '../embedding/index.js';
import { DEFAULT_HNSW, type HnswParams } from '../index/hnsw.js';
import type { Memex } from '../memex.js';
import { benchAnn, memexSystem, type AnnSystem } from './ann.js';
import type { BenchDataset, BenchVectors } from './datasets.js';
import { benchE2e } from './e2e.js';
import { loadPeer, type PeerName } from './peers.js';
import type { BenchReport } from './report.js';

export { loadDataset, userDataset, type UserDataSource, parseCount, defaultEvalDir, DATASET_KINDS, type BenchDataset, type BenchSession, type BenchVectors } from './datasets.js';
export { PEERS, type PeerName } from './peers.js';
export { BenchReportSchema, benchReportJsonSchema, type BenchReport } from './report.js';
export { renderHtml } from './html.js';
export { benchAnn, memexSystem, type AnnSystem, type AnnResult } from './ann.js';

export const DEFAULT_EF_SEARCH = [10, 16, 32, 64, 128, 256];

export interface BenchOptions {
  dataset: BenchDataset;
  /** The model that embeds a dataset's texts (the configured one). */
  embedder: () => Promise<Embedder>;
  /** Opens a Memex on a fresh data dir for the end-to-end part; without it that part is skipped. */
  open?: (dataDir: string) => Promise<Memex>;
  k?: number;
  efSearch?: number[];
  rounds?: number;
  peers?: PeerName[];
  params?: HnswParams;
  /** The context window's budget in tokens. */
  budget?: number;
  /** Concurrent callers for the search throughput figure. */
  concurrency?: number;
  onProgress?: (step: string, done: number, total: number) => void;
}

function machine(load: number): BenchReport['machine'] {
  const cpu = cpus();
  return { cpu: cpu[0]?.model.trim() ?? 'unknown', cores: Math.max(1, cpu.length), memoryBytes: totalmem(), platform: process.platform, arch: process.arch, node: process.version, loadAverage: [load, loadavg()[0] ?? 0] };
}

/** The ANN part's vectors: as given, or the dataset's texts through the model (timed). */
async function vectorsOf(dataset: BenchDataset, embedder: Embedder, progress: NonNullable<BenchOptions['onProgress']>): Promise<{ vectors: BenchVectors; embedding: BenchReport['embedding'] }> {
  if (dataset.vectors) return { vectors: dataset.vectors, embedding: null };
  const texts = dataset.texts ?? { rows: [], queries: [] };
  const all = [...texts.rows, ...texts.queries];
  const { dimension } = embedder;
  const flat = new Float32Array(all.length * dimension);
  const batch = 256;
  const start = performance.now();
  for (let i = 0; i < all.length; i += batch) {
    progress('embedding', i, all.length);
    const rows = await embedder.embed(all.slice(i, i + batch), { remember: false });
    rows.forEach((row, j) => flat.set(row, (i + j) * dimension));
  }
  const seconds = (performance.now() - start) / 1000;
  progress('embedding', all.length, all.length);
  const split = texts.rows.length * dimension;
  return {
    vectors: { dimension, rows: flat.subarray(0, split), count: texts.rows.length, queries: flat.subarray(split), queryCount: texts.queries.length },
    embedding: { texts: all.length, seconds, textsPerSecond: all.length / seconds },
  };
}

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const started = new Date();
  const load = loadavg()[0] ?? 0;
  const progress = options.onProgress ?? (() => undefined);
  const k = options.k ?? 10;
  const efSearch = [...new Set(options.efSearch ?? DEFAULT_EF_SEARCH)].sort((a, b) => a - b);
  const rounds = options.rounds ?? 3;
  const params = options.params ?? DEFAULT_HNSW;
  const peers = options.peers ?? [];
  const embedder = await options.embedder();
  const { vectors, embedding } = await vectorsOf(options.dataset, embedder, progress);
  if (vectors.count <= k) throw new MemexError('MEMEX_INVALID_INPUT', `the dataset has ${vectors.count} rows: fewer than k + 1 (${k + 1}); lower -k or bench more data`);

  const systems: AnnSystem[] = [memexSystem()];
  const skipped: BenchReport['ann']['skipped'] = [];
  for (const name of peers) {
    const peer = await loadPeer(name);
    if (typeof peer === 'string') skipped.push({ name, reason: peer });
    else systems.push(peer);
  }
  const ann = await benchAnn(vectors, systems, { k, efSearch, rounds, params, onProgress: progress });
  ann.skipped.unshift(...skipped);

  let e2e: BenchReport['e2e'] = null;
  if (options.open && options.dataset.sessions.length > 0) {
    const dir = await mkdtemp(join(tmpdir(), 'memex-bench-data-'));
    try {
      e2e = await benchE2e({
        open: options.open,
        dataDir: join(dir, 'data'),
        sessions: options.dataset.sessions,
        questions: options.dataset.questions,
        budget: options.budget ?? 4096,
        concurrency: options.concurrency ?? 32,
        onProgress: progress,
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  return {
    format: 'memex-bench',
    version: 1,
    memex: memexVersion(),
    startedAt: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    machine: machine(load),
    dataset: { name: options.dataset.name, description: options.dataset.description, vectorSource: options.dataset.vectorSource },
    model: { id: embedder.modelId, dimension: embedder.dimension },
    options: { k, efSearch, queries: vectors.queryCount, rounds, peers, m: params.m, efConstruction: params.efConstruction },
    embedding,
    ann,
    e2e,
  };
}
