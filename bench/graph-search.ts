/**
 * One graph, two ways to search it: Memex's graph addon (native/hnsw.cc: typed-array queries, the
 * bottom layer in 2 MB pages) against raw hnswlib-node reading the same file, through `memex
 * bench`'s ANN harness (src/bench/ann.ts: exact search for the truth, the systems taking turns every
 * 50 queries). The same graph gives both the same recall at each efSearch, so the ratio is the
 * speed of the search alone, at equal recall (`memex bench` builds a graph per system, and two
 * builds of the same rows differ a little in recall).
 *
 *   npx tsx bench/graph-search.ts [--rows 1m] [--queries 1000] [--ef 16,32,64,128,256]
 *
 * The rows are `memex bench`'s synthetic 384-d set; the graph (m 16, efConstruction 200, built on
 * the machine's cores) is kept in the temporary folder for the next run.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type * as Hnswlib from 'hnswlib-node';
import { benchAnn, loadDataset, parseCount, type AnnSystem } from '../src/bench/index.js';
import { fileBytes } from '../src/bench/ann.js';
import { DEFAULT_HNSW } from '../src/index/hnsw.js';
import { graphAddon, hnswlib, type GraphHandle } from '../src/index/native.js';
import { machine } from './locomo.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1m' }, queries: { type: 'string', default: '1000' }, ef: { type: 'string', default: '16,32,64,128,256' } } });
const rows = parseCount(values.rows);
if (!rows) throw new Error(`--rows takes a count such as 100k or 1m, not ${values.rows}`);
const graphs = graphAddon().addon;
if (!graphs) throw new Error(`Memex's graph addon is not built here: ${graphAddon().reason}`);
const raw = hnswlib().module;
const data = loadDataset(`synthetic:${rows}`, { queries: Number(values.queries), maxMessages: 0 }).vectors;
if (!data) throw new Error('no vectors');
const { dimension } = data;
const shared = join(tmpdir(), `memex-graph-search-${rows}.hnsw`);

if (!existsSync(shared)) {
  process.stderr.write(`building the graph of ${rows} rows on ${availableParallelism()} threads... `);
  const start = performance.now();
  const graph = graphs.create(dimension, rows, DEFAULT_HNSW.m, DEFAULT_HNSW.efConstruction, 100);
  for (let at = 0; at < rows; at += 4096) {
    const end = Math.min(rows, at + 4096);
    graphs.add(graph, Uint32Array.from({ length: end - at }, (_, i) => at + i), data.rows.subarray(at * dimension, end * dimension), availableParallelism());
  }
  graphs.write(graph, shared);
  console.error(`${((performance.now() - start) / 1000).toFixed(0)} s`);
}

// Memex moves the bottom layer into huge pages in the background after a read (2-4 ms a MB).
const settled = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(1000, rows / 100)));

/** A system that "builds" by reading the shared graph, and persists by writing and reading its own copy. */
function reading<T>(name: string, description: string, read: (path: string) => T, write: (index: T, path: string) => void, search: (index: T, query: Float32Array, k: number) => number[], setEf: (index: T, ef: number) => void, after: () => Promise<void> = () => Promise.resolve()): AnnSystem {
  let index: T | null = null;
  const open = (): T => {
    if (index === null) throw new Error(`${name}: used before build`);
    return index;
  };
  return {
    name,
    version: 'the shared graph',
    description,
    async build() {
      index = read(shared);
      await after();
    },
    async persist(dir) {
      const path = `${dir}.hnsw`;
      const t0 = performance.now();
      write(open(), path);
      const t1 = performance.now();
      index = read(path);
      const loadSeconds = (performance.now() - t1) / 1000;
      await after();
      return { writeSeconds: (t1 - t0) / 1000, loadSeconds, fileBytes: await fileBytes(path) };
    },
    setEf: (ef) => setEf(open(), ef),
    search: (query, k) => search(open(), query, k),
    close() {
      index = null;
    },
  };
}

const systems = [
  reading<GraphHandle>(
    'memex',
    "Memex's graph addon",
    (path) => graphs.read(path, dimension),
    (graph, path) => graphs.write(graph, path),
    (graph, query, k) => Array.from(graphs.search(graph, query, k, null).labels),
    (graph, ef) => graphs.setEf(graph, ef),
    settled,
  ),
  reading<Hnswlib.HierarchicalNSW>(
    'hnswlib',
    'hnswlib-node as npm installs it, called with number arrays',
    (path) => {
      const index = new raw.HierarchicalNSW('ip', dimension);
      index.readIndexSync(path);
      return index;
    },
    (index, path) => index.writeIndexSync(path),
    (index, query, k) => index.searchKnn(Array.from(query), k).neighbors,
    (index, ef) => index.setEf(ef),
  ),
];

const result = await benchAnn(data, systems, { k: 10, efSearch: values.ef.split(',').map(Number), rounds: 1 });
const [memex, other] = result.systems;
if (!memex || !other) throw new Error(`a system failed: ${result.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
console.log(`${machine()}; ${rows} x ${dimension}, ${result.queries} queries, one at a time; recall@10 / queries per second / p50 ms`);
console.log('| efSearch | Memex | hnswlib-node | Memex / hnswlib-node |\n|---:|---:|---:|---:|');
const cell = (p: { recall: number; qps: number; p50Ms: number }): string => `${p.recall.toFixed(3)} / ${Math.round(p.qps).toLocaleString('en')} / ${p.p50Ms.toFixed(2)}`;
memex.curve.forEach((point, i) => {
  const theirs = other.curve[i];
  if (theirs) console.log(`| ${point.efSearch} | ${cell(point)} | ${cell(theirs)} | ${(point.qps / theirs.qps).toFixed(2)}x |`);
});
