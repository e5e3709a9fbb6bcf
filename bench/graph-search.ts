/**
 * One graph, two ways to search it: Memex's graph addon (native/hnsw.cc: typed-array queries, the
 * bottom layer in 2 MB pages) against raw hnswlib-node reading the same file, taking turns every 50
 * queries. The same graph gives both the same recall at each efSearch, so the ratio is the speed of
 * the search alone, at equal recall (`memex bench` builds a graph per system, and two builds of the
 * same rows differ a little in recall).
 *
 *   npx tsx bench/graph-search.ts [--rows 1m] [--queries 1000] [--ef 16,32,64,128,256]
 *
 * The rows are `memex bench`'s synthetic 384-d set; the graph (m 16, efConstruction 200, built on
 * the machine's cores) and the exact answers are kept in the temporary folder for the next run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset, parseCount } from '../src/bench/index.js';
import { DEFAULT_HNSW } from '../src/index/hnsw.js';
import { graphAddon, hnswlib, scanAddon } from '../src/index/native.js';
import { machine } from './locomo.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1m' }, queries: { type: 'string', default: '1000' }, ef: { type: 'string', default: '16,32,64,128,256' } } });
const rows = parseCount(values.rows);
if (!rows) throw new Error(`--rows takes a count such as 100k or 1m, not ${values.rows}`);
const queryCount = Number(values.queries);
const efs = values.ef.split(',').map(Number);
const graphs = graphAddon().addon;
const scan = scanAddon().addon;
if (!graphs || !scan) throw new Error(`Memex's native addons are not built here: ${graphAddon().reason || scanAddon().reason}`);
const raw = hnswlib().module;
const dimension = 384;
const base = join(tmpdir(), `memex-graph-search-${rows}-${queryCount}`);

if (!existsSync(`${base}.truth`)) {
  const vectors = loadDataset(`synthetic:${rows}`, { queries: queryCount, maxMessages: 0 }).vectors;
  if (!vectors) throw new Error('no vectors');
  process.stdout.write(`building the graph of ${rows} rows on ${availableParallelism()} threads... `);
  const start = performance.now();
  const graph = graphs.create(dimension, rows, DEFAULT_HNSW.m, DEFAULT_HNSW.efConstruction, 100);
  for (let at = 0; at < rows; at += 4096) {
    const end = Math.min(rows, at + 4096);
    graphs.add(graph, Uint32Array.from({ length: end - at }, (_, i) => at + i), vectors.rows.subarray(at * dimension, end * dimension), availableParallelism());
  }
  console.log(`${((performance.now() - start) / 1000).toFixed(0)} s`);
  graphs.write(graph, `${base}.hnsw`);
  const truth = new Uint32Array(queryCount * 10);
  for (let q = 0; q < queryCount; q++) truth.set(scan.topk(vectors.rows, dimension, vectors.queries.subarray(q * dimension, (q + 1) * dimension), null, rows, 10).labels, q * 10);
  writeFileSync(`${base}.queries`, vectors.queries.subarray(0, queryCount * dimension));
  writeFileSync(`${base}.truth`, truth);
}

const read = (path: string): Buffer => readFileSync(path);
const queryBytes = read(`${base}.queries`);
const queries = new Float32Array(queryBytes.buffer, queryBytes.byteOffset, queryBytes.byteLength / 4);
const truthBytes = read(`${base}.truth`);
const truth = new Uint32Array(truthBytes.buffer, truthBytes.byteOffset, truthBytes.byteLength / 4);
const memexGraph = graphs.read(`${base}.hnsw`, dimension);
const rawGraph = new raw.HierarchicalNSW('ip', dimension);
rawGraph.readIndexSync(`${base}.hnsw`);
// Memex moves the bottom layer into huge pages in the background after a read (2-4 ms a MB).
await new Promise((resolve) => setTimeout(resolve, Math.max(1000, rows / 100)));

interface System {
  search: (query: Float32Array) => ArrayLike<number>;
  setEf: (ef: number) => void;
}
const systems: Record<string, System> = {
  Memex: { search: (q) => graphs.search(memexGraph, q, 10, null).labels, setEf: (ef) => graphs.setEf(memexGraph, ef) },
  'hnswlib-node': { search: (q) => rawGraph.searchKnn(Array.from(q), 10).neighbors, setEf: (ef) => rawGraph.setEf(ef) },
};
const list = Array.from({ length: queryCount }, (_, i) => queries.subarray(i * dimension, (i + 1) * dimension));
for (const system of Object.values(systems)) {
  system.setEf(64);
  for (const query of list) system.search(query);
}

console.log(`${machine()}; ${rows} x ${dimension}, ${queryCount} queries, one at a time; recall@10 / queries per second / p50 ms`);
console.log('| efSearch | Memex | hnswlib-node | Memex / hnswlib-node |\n|---:|---:|---:|---:|');
for (const ef of efs) {
  const seen = Object.fromEntries(Object.keys(systems).map((name) => [name, { hits: 0, seconds: 0, times: [] as number[] }]));
  for (const system of Object.values(systems)) system.setEf(ef);
  for (let from = 0; from < queryCount; from += 50) {
    for (const [name, system] of Object.entries(systems)) {
      const tally = seen[name]!;
      for (let q = from; q < Math.min(queryCount, from + 50); q++) {
        const start = process.hrtime.bigint();
        const found = system.search(list[q]!);
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        tally.seconds += seconds;
        tally.times.push(seconds * 1000);
        const want = new Set(truth.subarray(q * 10, q * 10 + 10));
        for (let i = 0; i < found.length; i++) if (want.has(found[i] as number)) tally.hits++;
      }
    }
  }
  const cell = (name: string): string => {
    const tally = seen[name]!;
    tally.times.sort((a, b) => a - b);
    return `${(tally.hits / queryCount / 10).toFixed(3)} / ${Math.round(queryCount / tally.seconds).toLocaleString('en')} / ${tally.times[queryCount >> 1]!.toFixed(2)}`;
  };
  console.log(`| ${ef} | ${cell('Memex')} | ${cell('hnswlib-node')} | ${(seen['hnswlib-node']!.seconds / seen.Memex!.seconds).toFixed(2)}x |`);
}
