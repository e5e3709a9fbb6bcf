/**
 * Building a user's search index from the session files, three ways in one run over the same data
 * dir: the HNSW graph built in the calling thread through hnswlib-node, one row at a time (the
 * baseline: how Memex built before), in a worker thread on one thread, and in a worker on the
 * machine's cores with Memex's graph addon (what Memex does from BUILD_IN_THREAD_ROWS rows). What
 * differs is the wall time and how long the event loop is stalled meanwhile (a service's other
 * requests wait that long), and the recall of the graph against exact search.
 *
 *   npx tsx bench/index-build.ts [--rows 50000]
 *
 * The rows are messages embedded with the hashed embedder (fast to make; the graph's cost depends
 * on the row count and dimension, not on the model).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { HashedEmbedder, Memex } from '../src/index.js';
import { UserIndex } from '../src/index/flat/user-index.js';
import { DEFAULT_HNSW } from '../src/index/hnsw.js';
import { graphAddon } from '../src/index/native.js';
import { exactScan } from '../src/index/vector-index.js';
import { DEFAULT_BM25 } from '../src/index/lexical.js';
import { FlatFileStore } from '../src/store/index.js';
import { machine } from './locomo.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '50000' } } });
const rows = Number(values.rows);
const PER_SESSION = 500;
const dir = await mkdtemp(join(tmpdir(), 'memex-bench-index-'));
const dataDir = join(dir, 'data');
const embedder = new HashedEmbedder();

console.error(`seeding ${rows} messages ...`);
const memex = await Memex.open({ dataDir, embedder, config: { fsync: 'none' }, onWarning: () => undefined });
await memex.users.create({ id: 'bench', name: 'Bench' });
const words = 'roof invoice garden Lisbon piano tuna vet train budget recipe passport bicycle river market sister bread figs summer winter office'.split(' ');
for (let made = 0; made < rows; made += PER_SESSION) {
  const session = await memex.sessions.create('bench', { title: `s${made}` });
  await memex.messages.appendMany(
    'bench',
    session.id,
    Array.from({ length: Math.min(PER_SESSION, rows - made) }, (_, i) => {
      const n = made + i;
      return { role: 'user' as const, content: `${words[n % 20]} ${words[(n * 7) % 20]} ${words[(n * 13) % 19]} note ${n} about the ${words[(n * 3) % 17]}` };
    }),
  );
}
await memex.flush();
await memex.close();

const store = await FlatFileStore.open({ dataDir, fsync: 'none' });
const threads = availableParallelism();
const queries = await embedder.embed(Array.from({ length: 200 }, (_, i) => `${words[i % 20]} ${words[(i * 11) % 20]} note ${i * 37} about the ${words[(i * 5) % 17]}`));

interface Build {
  seconds: number;
  maxStallMs: number;
  p99StallMs: number;
  recall: number;
}

async function build(buildInThreadRows: number, buildThreads: number): Promise<Build> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const start = performance.now();
  const index = await UserIndex.rebuild({ store, userId: 'bench', dir: null, model: { model: embedder.modelId, dimension: embedder.dimension }, hnsw: DEFAULT_HNSW, bm25: DEFAULT_BM25, compactAt: 0.2, sync: false, buildInThreadRows, buildThreads });
  const seconds = (performance.now() - start) / 1000;
  delay.disable();
  if (index.size !== rows) throw new Error(`built ${index.size} rows, expected ${rows}`);
  // Recall@10 of the graph (efSearch 64) against exact search over the same rows.
  const matrix = new Float32Array(rows * embedder.dimension);
  for (let label = 0; label < rows; label++) matrix.set(index.vectors.vector(label) ?? new Float32Array(embedder.dimension), label * embedder.dimension);
  let found = 0;
  for (const query of queries) {
    const truth = new Set(exactScan(matrix, embedder.dimension, query, null, rows, 10).map((hit) => hit.label));
    for (const hit of index.vectors.search(query, 10)) if (truth.has(hit.label)) found++;
  }
  return { seconds, maxStallMs: delay.max / 1e6, p99StallMs: delay.percentile(99) / 1e6, recall: found / (queries.length * 10) };
}

const ways = [
  { name: 'in the calling thread, one row at a time (baseline)', inThreadRows: Number.POSITIVE_INFINITY, threads: 1 },
  { name: 'in a worker, on one thread', inThreadRows: 1, threads: 1 },
  { name: `in a worker, on ${threads} threads (Memex)`, inThreadRows: 1, threads },
];
console.error(`building (${graphAddon().addon ? 'graph addon' : `no graph addon here: ${graphAddon().reason}`}) ...`);
const results = ways.map(() => [] as Build[]);
for (let round = 0; round < 2; round++) {
  for (const [i, way] of ways.entries()) results[i]!.push(await build(way.inThreadRows, way.threads));
}
await store.close();
await rm(dir, { recursive: true, force: true });

const best = (list: Build[]): number => Math.min(...list.map((r) => r.seconds));
console.log(`# Building a user's index: ${rows.toLocaleString('en-US')} rows x ${embedder.dimension}-d, m ${DEFAULT_HNSW.m}, efConstruction ${DEFAULT_HNSW.efConstruction}`);
console.log(`\n- machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; two rounds each, taking turns\n`);
console.log('| graph built | build s (best) | x the baseline | event loop stalled at most, ms | p99 stall ms | recall@10 (ef 64) |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [i, way] of ways.entries()) {
  const list = results[i]!;
  console.log(`| ${way.name} | ${best(list).toFixed(1)} | ${(best(results[0]!) / best(list)).toFixed(2)}x | ${Math.max(...list.map((r) => r.maxStallMs)).toFixed(0)} | ${Math.max(...list.map((r) => r.p99StallMs)).toFixed(0)} | ${Math.min(...list.map((r) => r.recall)).toFixed(3)} |`);
}
