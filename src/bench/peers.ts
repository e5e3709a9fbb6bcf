/**
 * Other indexes a user might pick instead of Memex, for `memex bench --peers`, each called the way
 * its documentation shows, with the same rows, queries, m / efConstruction and efSearch sweep:
 *
 *  - `hnswlib`: hnswlib-node as npm installs it (Memex's own dependency), arrays in and out;
 *  - `usearch`: usearch's HNSW (inner product, float32), built on the machine's cores (as Memex's
 *    is), searched on one thread;
 *  - `lancedb`: LanceDB's embedded table with an HNSW-SQ index (one partition, cosine distance: on
 *    unit rows the ranking of the inner product; its `dot` ranks wrongly in 0.31, recall near 0).
 *
 * usearch, LanceDB and apache-arrow are development dependencies: a peer that is not installed is
 * skipped with the command that installs it, never required to run Memex.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Hnswlib from 'hnswlib-node';
import type { HnswParams } from '../index/hnsw.js';
import { builtIndex, fileBytes, type AnnSystem } from './ann.js';
import type { BenchVectors } from './datasets.js';

export const PEERS = ['hnswlib', 'usearch', 'lancedb'] as const;
export type PeerName = (typeof PEERS)[number];

const require = createRequire(import.meta.url);

/** A package's version, from the package.json above its entry point (some packages do not export it). */
function versionOf(pkg: string): string {
  try {
    let dir = dirname(require.resolve(pkg));
    for (;;) {
      const file = join(dir, 'package.json');
      if (existsSync(file)) {
        const json = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (json.name === pkg && json.version) return json.version;
      }
      const parent = dirname(dir);
      if (parent === dir) return 'unknown';
      dir = parent;
    }
  } catch {
    return 'unknown';
  }
}

/** The peer's system, or why it cannot run here. */
export async function loadPeer(name: PeerName): Promise<AnnSystem | string> {
  try {
    if (name === 'hnswlib') return hnswlibPeer();
    if (name === 'usearch') return await usearchPeer();
    return await lancedbPeer();
  } catch (cause) {
    const pkg = name === 'hnswlib' ? 'hnswlib-node' : name === 'usearch' ? 'usearch' : '@lancedb/lancedb apache-arrow@18';
    return `not installed or not loadable here (${(cause as Error).message.split('\n')[0]}); install it with \`npm install --no-save ${pkg}\` in the Memex folder`;
  }
}

function rowOf(data: BenchVectors, i: number): Float32Array {
  return data.rows.subarray(i * data.dimension, (i + 1) * data.dimension);
}

function hnswlibPeer(): AnnSystem {
  const hnswlib = require('hnswlib-node') as typeof Hnswlib;
  let index: Hnswlib.HierarchicalNSW | null = null;
  let dimension = 0;
  const built = builtIndex('hnswlib', () => index);
  return {
    name: 'hnswlib',
    version: versionOf('hnswlib-node'),
    description: 'hnswlib-node as npm installs it (the portable build), called with number arrays',
    build(data, params) {
      dimension = data.dimension;
      index = new hnswlib.HierarchicalNSW('ip', data.dimension);
      index.initIndex(data.count, params.m, params.efConstruction, 100);
      for (let i = 0; i < data.count; i++) index.addPoint(Array.from(rowOf(data, i)), i);
    },
    async persist(dir) {
      const path = `${dir}.hnsw`;
      const t0 = performance.now();
      built().writeIndexSync(path);
      const t1 = performance.now();
      const loaded = new hnswlib.HierarchicalNSW('ip', dimension);
      loaded.readIndexSync(path);
      index = loaded;
      return { writeSeconds: (t1 - t0) / 1000, loadSeconds: (performance.now() - t1) / 1000, fileBytes: await fileBytes(path) };
    },
    setEf(ef) {
      built().setEf(ef);
    },
    search: (query, k) => built().searchKnn(Array.from(query), k).neighbors,
    close() {
      index = null;
    },
  };
}

interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vector: Float32Array, k: number, threads: number): { keys: BigUint64Array };
  save(path: string): void;
  load(path: string): void;
  size(): number;
}
type UsearchModule = { Index: new (config: Record<string, unknown>) => UsearchIndex };

async function usearchPeer(): Promise<AnnSystem> {
  const mod = (await import('usearch')) as unknown as UsearchModule & { default?: UsearchModule };
  const { Index } = mod.default ?? mod;
  let index: UsearchIndex | null = null;
  let config: Record<string, unknown> = {};
  let path: string | null = null;
  const built = builtIndex('usearch', () => index);
  return {
    name: 'usearch',
    version: versionOf('usearch'),
    description: `usearch's HNSW (inner product, float32), built on ${availableParallelism()} threads as Memex's is, searched on one`,
    build(data: BenchVectors, params: HnswParams) {
      config = { metric: 'ip', dimensions: data.dimension, connectivity: params.m, expansion_add: params.efConstruction, expansion_search: params.efSearch };
      index = new Index(config);
      const keys = new BigUint64Array(data.count);
      for (let i = 0; i < data.count; i++) keys[i] = BigInt(i);
      index.add(keys, data.rows.subarray(0, data.count * data.dimension), availableParallelism());
    },
    async persist(dir) {
      path = `${dir}.usearch`;
      const t0 = performance.now();
      built().save(path);
      const t1 = performance.now();
      const loaded = new Index(config);
      loaded.load(path);
      index = loaded;
      return { writeSeconds: (t1 - t0) / 1000, loadSeconds: (performance.now() - t1) / 1000, fileBytes: await fileBytes(path) };
    },
    // usearch fixes expansion_search when an index is made: a new one reads the saved file.
    setEf(ef) {
      if (!path || config.expansion_search === ef) return;
      config = { ...config, expansion_search: ef };
      const loaded = new Index(config);
      loaded.load(path);
      index = loaded;
    },
    search: (query, k) => Array.from(built().search(query, k, 1).keys, Number),
    close() {
      index = null;
    },
  };
}

async function lancedbPeer(): Promise<AnnSystem> {
  const lancedb = await import('@lancedb/lancedb');
  const arrow = await import('apache-arrow');
  type Table = Awaited<ReturnType<Awaited<ReturnType<typeof lancedb.connect>>['openTable']>>;
  let table: Table | null = null;
  let dir = '';
  let ef = 64;
  let connection: Awaited<ReturnType<typeof lancedb.connect>> | null = null;
  const built = builtIndex('lancedb', () => table);
  return {
    name: 'lancedb',
    version: versionOf('@lancedb/lancedb'),
    description: "LanceDB's embedded table with an HNSW-SQ index (one partition, cosine distance), queried one at a time",
    async build(data, params) {
      const { mkdtemp } = await import('node:fs/promises');
      const { tmpdir } = await import('node:os');
      dir = await mkdtemp(join(tmpdir(), 'memex-bench-lancedb-'));
      connection = await lancedb.connect(dir);
      const schema = new arrow.Schema([new arrow.Field('id', new arrow.Int32()), new arrow.Field('vector', new arrow.FixedSizeList(data.dimension, new arrow.Field('item', new arrow.Float32(), true)))]);
      table = await connection.createEmptyTable('vectors', schema);
      for (let from = 0; from < data.count; from += 10_000) {
        const batch = [];
        for (let i = from; i < Math.min(data.count, from + 10_000); i++) batch.push({ id: i, vector: Array.from(rowOf(data, i)) });
        await table.add(batch);
      }
      await table.createIndex('vector', { config: lancedb.Index.hnswSq({ distanceType: 'cosine', m: params.m, efConstruction: params.efConstruction, numPartitions: 1 }) });
    },
    // The table is on disk once built: "loading" is opening it again and answering a query.
    async persist() {
      const t0 = performance.now();
      built().close();
      connection?.close();
      connection = await lancedb.connect(dir);
      table = await connection.openTable('vectors');
      return { writeSeconds: 0, loadSeconds: (performance.now() - t0) / 1000, fileBytes: await fileBytes(dir) };
    },
    setEf(value) {
      ef = value;
    },
    search: async (query, k) => {
      const rows = (await built().vectorSearch(query).distanceType('cosine').limit(k).ef(Math.max(ef, k)).select(['id', '_distance']).toArray()) as { id: number }[];
      return rows.map((row) => row.id);
    },
    async close() {
      table?.close();
      connection?.close();
      table = null;
      connection = null;
      if (dir) {
        const { rm } = await import('node:fs/promises');
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}
