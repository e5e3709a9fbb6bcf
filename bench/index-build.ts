/**
 * Building a user's search index from the session files, two ways in one run over the same data
 * dir: the HNSW graph built in the calling thread (the baseline), and in a worker thread (what
 * Memex does from BUILD_IN_THREAD_ROWS rows). Both give the same graph; what differs is the wall
 * time and how long the event loop is stalled meanwhile (a service's other requests wait that long).
 *
 *   npx tsx bench/index-build.ts [--rows 50000] [--dimension 384]
 *
 * The rows are messages embedded with the hashed embedder (fast to make; the graph's cost depends
 * on the row count and dimension, not on the model).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { HashedEmbedder, Memex } from '../src/index.js';
import { BUILD_IN_THREAD_ROWS, UserIndex } from '../src/index/flat/user-index.js';
import { DEFAULT_HNSW } from '../src/index/hnsw.js';
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
async function build(buildInThreadRows: number): Promise<{ seconds: number; maxStallMs: number; p99StallMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const start = performance.now();
  const index = await UserIndex.rebuild({ store, userId: 'bench', dir: null, model: { model: embedder.modelId, dimension: embedder.dimension }, hnsw: DEFAULT_HNSW, bm25: DEFAULT_BM25, compactAt: 0.2, sync: false, buildInThreadRows });
  const seconds = (performance.now() - start) / 1000;
  delay.disable();
  if (index.size !== rows) throw new Error(`built ${index.size} rows, expected ${rows}`);
  return { seconds, maxStallMs: delay.max / 1e6, p99StallMs: delay.percentile(99) / 1e6 };
}

console.error('building ...');
const results = { here: [] as Awaited<ReturnType<typeof build>>[], thread: [] as Awaited<ReturnType<typeof build>>[] };
for (let round = 0; round < 2; round++) {
  results.here.push(await build(Number.POSITIVE_INFINITY));
  results.thread.push(await build(BUILD_IN_THREAD_ROWS));
}
await store.close();
await rm(dir, { recursive: true, force: true });

const best = (list: { seconds: number }[]): number => Math.min(...list.map((r) => r.seconds));
const worst = (list: { maxStallMs: number }[]): number => Math.max(...list.map((r) => r.maxStallMs));
console.log(`# Building a user's index: ${rows.toLocaleString('en-US')} rows x ${embedder.dimension}-d, m ${DEFAULT_HNSW.m}, efConstruction ${DEFAULT_HNSW.efConstruction}`);
console.log(`\n- machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}; two rounds each, taking turns\n`);
console.log('| graph built | build s (best) | event loop stalled at most, ms | p99 stall ms |');
console.log('| --- | ---: | ---: | ---: |');
console.log(`| in the calling thread (baseline) | ${best(results.here).toFixed(1)} | ${worst(results.here).toFixed(0)} | ${Math.max(...results.here.map((r) => r.p99StallMs)).toFixed(0)} |`);
console.log(`| in a worker thread (Memex) | ${best(results.thread).toFixed(1)} | ${worst(results.thread).toFixed(0)} | ${Math.max(...results.thread.map((r) => r.p99StallMs)).toFixed(0)} |`);
console.log(`\n${(best(results.here) / best(results.thread)).toFixed(2)}x faster in the thread.`);
