/**
 * Approximate nearest-neighbour search, three ways in one run over the same vectors and queries:
 *
 *  - Memex: `HnswVectorIndex` (src/index/hnsw.ts) on the hnswlib build `hnswlib()` picks (the
 *    CPU-tuned addon when it was built for this machine), queries passed as Float32Array;
 *  - raw: hnswlib-node as npm installs it (the portable build), used as a user holding
 *    Float32Arrays would: `addPoint(Array.from(row))`, `searchKnn(Array.from(query), 10)`;
 *  - exact: `ExactVectorIndex` brute force, the ground truth for recall@10 and a qps baseline.
 *
 * Both HNSW indexes use DEFAULT_HNSW's m / efConstruction and the same random seed; efSearch is
 * swept. Sizes: `10k` is real embeddings (LoCoMo turns + MS MARCO passages through the shared
 * model); any other size (`100k`, `1m`, `50k`, ...) is clustered synthetic 384-d unit vectors.
 *
 *   npx tsx bench/ann.ts [--sizes 10k,100k] [--queries 1000] [--exact-queries N]
 *                        [--raw auto|always|never] [--json [file]]
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type * as Hnswlib from 'hnswlib-node';
import { TransformersEmbedder } from '../src/embedding/index.js';
import { DEFAULT_HNSW, HnswVectorIndex } from '../src/index/hnsw.js';
import { hnswlib } from '../src/index/native.js';
import { ExactVectorIndex, type Neighbor } from '../src/index/vector-index.js';
import { LOCOMO, SHARED_MODELS, SHARED_MODEL_ID, locomoSessions, machine } from './locomo.js';

const K = 10;
const EF_SEARCH = [16, 32, 64, 128, 256];
/** Timed passes per system and efSearch, alternating which system goes first. */
const ROUNDS = 3;
const WARMUP_QUERIES = 200;
/** Queries per turn when Memex and raw take turns within a pass. */
const BLOCK = 50;
const SEED = 100;
const SYNTHETIC_DIMENSION = 384;
/** With `--raw auto`, sizes from here up build the raw index only if the size's total stays under RAW_BUDGET_S. */
const RAW_AUTO_FROM = 500_000;
const RAW_BUDGET_S = 600;
const PROBE_ROWS = 20_000;
const MSMARCO = fileURLToPath(new URL('../../shared/eval/retrieval/msmarco-subset-agentset', import.meta.url));
const REAL_CACHE = join(tmpdir(), 'memex-bench-ann-real.bin');

const require = createRequire(import.meta.url);
const rawHnswlib = require('hnswlib-node') as typeof Hnswlib;
const rawVersion = (require('hnswlib-node/package.json') as { version: string }).version;

// Memory is read after a forced collection, so garbage does not count as growth.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

// ---------------------------------------------------------------- options

interface Options {
  sizes: string[];
  queries: number;
  exactQueries: number | null;
  raw: 'auto' | 'always' | 'never';
  json: string | null;
}

function options(): Options {
  const argv = process.argv.slice(2);
  // A bare `--json` writes to a default file.
  const at = argv.indexOf('--json');
  if (at >= 0 && (argv[at + 1] === undefined || argv[at + 1]?.startsWith('--'))) argv.splice(at + 1, 0, join(tmpdir(), 'memex-bench-ann.json'));
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '10k,100k' },
      queries: { type: 'string', default: '1000' },
      'exact-queries': { type: 'string' },
      raw: { type: 'string', default: 'auto' },
      json: { type: 'string' },
    },
  });
  const raw = values.raw;
  if (raw !== 'auto' && raw !== 'always' && raw !== 'never') throw new Error(`--raw takes auto, always or never, not ${raw}`);
  const positive = (text: string, flag: string): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag} takes a positive integer, not ${text}`);
    return n;
  };
  return {
    sizes: values.sizes.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''),
    queries: positive(values.queries, '--queries'),
    exactQueries: values['exact-queries'] === undefined ? null : positive(values['exact-queries'], '--exact-queries'),
    raw,
    json: values.json ?? null,
  };
}

function parseSize(size: string): number {
  const match = /^(\d+(?:\.\d+)?)([km]?)$/.exec(size);
  if (!match) throw new Error(`a size is like 10k, 100k or 1m, not ${size}`);
  const scale = match[2] === 'k' ? 1e3 : match[2] === 'm' ? 1e6 : 1;
  return Math.round(Number(match[1]) * scale);
}

// ---------------------------------------------------------------- data

interface Dataset {
  size: string;
  kind: 'real' | 'synthetic';
  description: string;
  queryDescription: string;
  dimension: number;
  count: number;
  rows: Float32Array;
  queryCount: number;
  queries: Float32Array;
}

/** sfc32: small, fast, seedable; Box–Muller on top for normals. */
class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 16; i++) this.next();
  }

  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  gaussian(): number {
    if (this.spare !== null) {
      const spare = this.spare;
      this.spare = null;
      return spare;
    }
    const u = 1 - this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

function normalize(row: Float32Array): void {
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += (row[i] as number) ** 2;
  const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  for (let i = 0; i < row.length; i++) row[i] = (row[i] as number) * scale;
}

/**
 * A mixture meant to look like sentence embeddings rather than a textbook case: 32 topics, each a
 * blob spread along its own 48-d subspace with a decaying spectrum, holding 1,000 clusters in all
 * (Zipf-ish sizes) as density bumps, plus isotropic noise over all 384 dimensions, normalised.
 * Neighbours cross cluster borders within a topic, so the graph has real work to do.
 */
class ClusteredSource {
  static readonly TOPICS = 32;
  static readonly CLUSTERS = 1000;
  static readonly LOCAL_DIMENSIONS = 48;
  /** Squared norms of each part before normalising: topic 1, cluster offset, spread in the topic's subspace, noise. */
  static readonly CLUSTER_VARIANCE = 0.3;
  static readonly LOCAL_VARIANCE = 1.0;
  static readonly NOISE_VARIANCE = 0.3;

  private readonly centers: Float32Array;
  private readonly clusterTopic: Uint16Array;
  private readonly bases: Float32Array;
  private readonly axisScale: Float64Array;
  private readonly cumulative: Float64Array;

  constructor(
    readonly dimension: number,
    seed: number,
  ) {
    const { TOPICS, CLUSTERS, LOCAL_DIMENSIONS, CLUSTER_VARIANCE, LOCAL_VARIANCE } = ClusteredSource;
    const random = new Random(seed);
    const topics = new Float32Array(TOPICS * dimension);
    for (let t = 0; t < TOPICS; t++) {
      const topic = topics.subarray(t * dimension, (t + 1) * dimension);
      for (let i = 0; i < dimension; i++) topic[i] = random.gaussian();
      normalize(topic);
    }
    // Each topic's subspace: near-orthogonal random directions of about unit length.
    this.bases = new Float32Array(TOPICS * LOCAL_DIMENSIONS * dimension);
    for (let i = 0; i < this.bases.length; i++) this.bases[i] = random.gaussian() / Math.sqrt(dimension);
    // Variance along axis j falls as 1/sqrt(j+1), as in a real embedding's spectrum.
    const weights = Array.from({ length: LOCAL_DIMENSIONS }, (_, j) => 1 / Math.sqrt(j + 1));
    const weightSum = weights.reduce((a, b) => a + b, 0);
    this.axisScale = Float64Array.from(weights, (w) => Math.sqrt((LOCAL_VARIANCE * w) / weightSum));
    // A cluster centre: its topic plus an offset of its own (not renormalised).
    this.centers = new Float32Array(CLUSTERS * dimension);
    this.clusterTopic = new Uint16Array(CLUSTERS);
    this.cumulative = new Float64Array(CLUSTERS);
    const offset = Math.sqrt(CLUSTER_VARIANCE / dimension);
    let total = 0;
    for (let c = 0; c < CLUSTERS; c++) {
      const topic = Math.floor(random.next() * TOPICS);
      this.clusterTopic[c] = topic;
      const center = this.centers.subarray(c * dimension, (c + 1) * dimension);
      for (let i = 0; i < dimension; i++) center[i] = (topics[topic * dimension + i] as number) + random.gaussian() * offset;
      total += 1 / Math.sqrt(c + 10);
      this.cumulative[c] = total;
    }
    for (let c = 0; c < CLUSTERS; c++) this.cumulative[c] = (this.cumulative[c] as number) / total;
  }

  /** Fills `out` (count × dimension) with draws from `random`. */
  fill(out: Float32Array, random: Random): void {
    const { dimension, axisScale } = this;
    const { LOCAL_DIMENSIONS, NOISE_VARIANCE } = ClusteredSource;
    const noise = Math.sqrt(NOISE_VARIANCE / dimension);
    const count = out.length / dimension;
    for (let r = 0; r < count; r++) {
      const row = out.subarray(r * dimension, (r + 1) * dimension);
      const c = this.cluster(random.next());
      const topic = this.clusterTopic[c] as number;
      row.set(this.centers.subarray(c * dimension, (c + 1) * dimension));
      for (let j = 0; j < LOCAL_DIMENSIONS; j++) {
        const z = random.gaussian() * (axisScale[j] as number);
        const at = (topic * LOCAL_DIMENSIONS + j) * dimension;
        for (let i = 0; i < dimension; i++) row[i] = (row[i] as number) + z * (this.bases[at + i] as number);
      }
      for (let i = 0; i < dimension; i++) row[i] = (row[i] as number) + random.gaussian() * noise;
      normalize(row);
    }
  }

  private cluster(u: number): number {
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cumulative[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function syntheticDataset(size: string, count: number, queryCount: number): Dataset {
  const dimension = SYNTHETIC_DIMENSION;
  const source = new ClusteredSource(dimension, SEED);
  const rows = new Float32Array(count * dimension);
  source.fill(rows, new Random(SEED + 1));
  const queries = new Float32Array(queryCount * dimension);
  source.fill(queries, new Random(SEED + 2));
  return {
    size,
    kind: 'synthetic',
    description: `SYNTHETIC: ${count.toLocaleString('en-US')} clustered ${dimension}-d unit vectors (seeded: ${ClusteredSource.TOPICS} topics, ${ClusteredSource.CLUSTERS.toLocaleString('en-US')} clusters of Zipf-ish size as density bumps in each topic's ${ClusteredSource.LOCAL_DIMENSIONS}-d subspace, plus isotropic noise)`,
    queryDescription: `${queryCount.toLocaleString('en-US')} fresh draws from the same mixture (none is a stored row)`,
    dimension,
    count,
    rows,
    queryCount,
    queries,
  };
}

interface RealTexts {
  rows: string[];
  queries: string[];
  turns: number;
  passages: number;
  questions: number;
  marcoQueries: number;
}

function jsonLines(path: string): { text: string; title?: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as { text: string; title?: string });
}

function realTexts(): RealTexts {
  const turns = locomoSessions()
    .flatMap((s) => s.turns.map((t) => `${t.speaker}: ${t.text}`))
    .filter((t) => t.trim() !== '');
  const passages = jsonLines(join(MSMARCO, 'corpus.jsonl'))
    .map((p) => (p.title ? `${p.title}\n${p.text}` : p.text))
    .filter((t) => t.trim() !== '');
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { qa: { question?: string }[] }[];
  const questions = samples.flatMap((s) => s.qa.map((q) => q.question ?? '')).filter((q) => q.trim() !== '');
  const marco = jsonLines(join(MSMARCO, 'queries.jsonl'))
    .map((q) => q.text)
    .filter((q) => q.trim() !== '');
  return { rows: [...turns, ...passages], queries: [...marco, ...questions], turns: turns.length, passages: passages.length, questions: questions.length, marcoQueries: marco.length };
}

/** The cache file: a u32 header length, the JSON header (padded to 4 bytes), rows, then queries, float32. */
interface CacheHeader {
  version: 1;
  key: string;
  dimension: number;
  rows: number;
  queries: number;
}

function readCache(key: string): { header: CacheHeader; rows: Float32Array; queries: Float32Array } | null {
  if (!existsSync(REAL_CACHE)) return null;
  try {
    const buffer = readFileSync(REAL_CACHE);
    const headerBytes = buffer.readUInt32LE(0);
    const header = JSON.parse(buffer.subarray(4, 4 + headerBytes).toString('utf8')) as CacheHeader;
    if (header.version !== 1 || header.key !== key) return null;
    const start = 4 + Math.ceil(headerBytes / 4) * 4;
    const floats = new Float32Array(buffer.buffer.slice(buffer.byteOffset + start, buffer.byteOffset + buffer.length));
    if (floats.length !== (header.rows + header.queries) * header.dimension) return null;
    return { header, rows: floats.subarray(0, header.rows * header.dimension), queries: floats.subarray(header.rows * header.dimension) };
  } catch {
    return null;
  }
}

function writeCache(header: CacheHeader, rows: Float32Array[], queries: Float32Array[]): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 4) * 4;
  const buffer = Buffer.alloc(4 + padded + (rows.length + queries.length) * header.dimension * 4);
  buffer.writeUInt32LE(json.length, 0);
  json.copy(buffer, 4);
  const floats = new Float32Array(buffer.buffer, buffer.byteOffset + 4 + padded, (rows.length + queries.length) * header.dimension);
  [...rows, ...queries].forEach((row, i) => floats.set(row, i * header.dimension));
  writeFileSync(REAL_CACHE, buffer);
}

/** Every other query index, spread evenly, so `count` of them cover the whole list. */
function spread(total: number, count: number): number[] {
  if (count >= total) return Array.from({ length: total }, (_, i) => i);
  return Array.from({ length: count }, (_, i) => Math.floor((i * total) / count));
}

async function realDataset(queryCount: number): Promise<Dataset | string> {
  const modelDir = process.env.MEMEX_MODEL_DIR ?? SHARED_MODELS;
  const model = process.env.MEMEX_MODEL ?? SHARED_MODEL_ID;
  for (const need of [LOCOMO, join(MSMARCO, 'corpus.jsonl'), join(MSMARCO, 'queries.jsonl'), modelDir]) {
    if (!existsSync(need)) return `skipped: ${need} is missing (the real-embedding size needs ../shared beside the clone)`;
  }
  const texts = realTexts();
  const key = createHash('sha256').update(JSON.stringify([model, texts.rows, texts.queries])).digest('hex');
  let cached = readCache(key);
  if (cached) {
    console.error(`real embeddings: read from ${REAL_CACHE}`);
  } else {
    console.error(`real embeddings: embedding ${texts.rows.length + texts.queries.length} texts with ${model} (cached afterwards in ${REAL_CACHE}) ...`);
    const start = performance.now();
    const embedder = await TransformersEmbedder.load({ model, modelDir, batchSize: 32 });
    const rows = await embedder.embed(texts.rows);
    const queries = await embedder.embed(texts.queries);
    console.error(`real embeddings: ${((performance.now() - start) / 1000).toFixed(0)} s`);
    writeCache({ version: 1, key, dimension: embedder.dimension, rows: rows.length, queries: queries.length }, rows, queries);
    cached = readCache(key);
    if (!cached) throw new Error(`cannot read back ${REAL_CACHE}`);
  }
  const { dimension } = cached.header;
  // All MS MARCO queries, then LoCoMo questions spread across the conversations to fill the count;
  // then shuffled (seeded) so a prefix used for ground truth is a fair sample of both.
  const marco = Array.from({ length: Math.min(texts.marcoQueries, queryCount) }, (_, i) => i);
  const fromLocomo = spread(texts.questions, Math.max(0, queryCount - marco.length)).map((i) => texts.marcoQueries + i);
  const chosen = [...marco, ...fromLocomo];
  const random = new Random(SEED + 3);
  for (let i = chosen.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [chosen[i], chosen[j]] = [chosen[j] as number, chosen[i] as number];
  }
  const queries = new Float32Array(chosen.length * dimension);
  chosen.forEach((q, i) => queries.set(cached.queries.subarray(q * dimension, (q + 1) * dimension), i * dimension));
  const marcoChosen = marco.length;
  return {
    size: '10k',
    kind: 'real',
    description: `REAL embeddings: ${texts.rows.length.toLocaleString('en-US')} texts (${texts.turns.toLocaleString('en-US')} LoCoMo turns + ${texts.passages.toLocaleString('en-US')} MS MARCO passages), ${model}, ${dimension}-d`,
    queryDescription: `${chosen.length.toLocaleString('en-US')} real queries embedded the same way (${marcoChosen} MS MARCO queries + ${chosen.length - marcoChosen} LoCoMo questions)`,
    dimension,
    count: cached.header.rows,
    rows: cached.rows,
    queryCount: chosen.length,
    queries,
  };
}

// ---------------------------------------------------------------- measuring

interface Memory {
  rssMB: number;
  heapMB: number;
  externalMB: number;
}

function memory(): Memory {
  collect();
  collect();
  const m = process.memoryUsage();
  return { rssMB: m.rss / 2 ** 20, heapMB: m.heapUsed / 2 ** 20, externalMB: (m.external + m.arrayBuffers) / 2 ** 20 };
}

function growth(before: Memory, after: Memory): Memory {
  return { rssMB: after.rssMB - before.rssMB, heapMB: after.heapMB - before.heapMB, externalMB: after.externalMB - before.externalMB };
}

interface BuildResult {
  seconds: number;
  insertsPerSecond: number;
  memory: Memory;
  writeSeconds: number;
  loadSeconds: number;
  fileMB: number;
  /** The index read back from its file answers the first queries exactly as the one built. */
  reloadMatches: boolean;
}

interface Latency {
  qps: number;
  p50Ms: number;
  p99Ms: number;
}

interface EfResult extends Latency {
  efSearch: number;
  recall: number;
}

interface SystemResult {
  build: BuildResult;
  efs: EfResult[];
}

interface SizeResult {
  size: string;
  kind: 'real' | 'synthetic';
  description: string;
  queryDescription: string;
  count: number;
  dimension: number;
  queries: number;
  groundTruthQueries: number;
  exact: Latency & { buildSeconds: number };
  memex: SystemResult;
  raw: SystemResult | null;
  rawSkipped: string | null;
  seconds: number;
  /** 1-minute load average at the start and end of the size: other work on the machine skews timings. */
  load: [number, number];
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

/**
 * Runs `search` over queries [from, to), timing each call into `latencies[offset + q]`; results land
 * in `keep[q]` for recall afterwards. Returns the loop's wall time.
 */
function timeQueries<R>(search: (query: Float32Array) => R, queries: readonly Float32Array[], from: number, to: number, latencies: Float64Array, offset: number, keep: R[] | null): number {
  const start = performance.now();
  for (let q = from; q < to; q++) {
    const t = performance.now();
    const result = search(queries[q] as Float32Array);
    latencies[offset + q] = performance.now() - t;
    if (keep) keep[q] = result;
  }
  return performance.now() - start;
}

function latency(latencies: Float64Array, totalMs: number): Latency {
  const sorted = Float64Array.from(latencies).sort();
  return { qps: (latencies.length / totalMs) * 1000, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
}

function recall(found: readonly (readonly number[])[], truth: readonly Set<number>[]): number {
  let hits = 0;
  let wanted = 0;
  truth.forEach((expected, q) => {
    for (const label of found[q] ?? []) if (expected.has(label)) hits++;
    wanted += expected.size;
  });
  return wanted === 0 ? 1 : hits / wanted;
}

/** An HNSW index seen through one interface, however it is called. */
interface Contender<R> {
  name: string;
  readonly setEf: (ef: number) => void;
  readonly search: (query: Float32Array) => R;
  readonly labels: (result: R) => readonly number[];
}

function memexContender(index: HnswVectorIndex): Contender<Neighbor[]> {
  return {
    name: 'memex',
    setEf: (ef) => index.setEf(ef),
    search: (query) => index.search(query, K),
    labels: (result) => result.map((n) => n.label),
  };
}

function rawContender(index: Hnswlib.HierarchicalNSW): Contender<Hnswlib.SearchResult> {
  return {
    name: 'raw',
    setEf: (ef) => index.setEf(ef),
    search: (query) => index.searchKnn(Array.from(query), K),
    labels: (result) => result.neighbors,
  };
}

function buildMemex(data: Dataset, rows: readonly Float32Array[]): { index: HnswVectorIndex; seconds: number; memory: Memory } {
  const before = memory();
  const start = performance.now();
  const index = HnswVectorIndex.create(data.dimension, DEFAULT_HNSW, data.count);
  for (let i = 0; i < data.count; i++) index.add(i, rows[i] as Float32Array);
  const seconds = (performance.now() - start) / 1000;
  return { index, seconds, memory: growth(before, memory()) };
}

function buildRaw(data: Dataset, rows: readonly Float32Array[]): { index: Hnswlib.HierarchicalNSW; seconds: number; memory: Memory } {
  const before = memory();
  const start = performance.now();
  const index = new rawHnswlib.HierarchicalNSW('ip', data.dimension);
  index.initIndex(data.count, DEFAULT_HNSW.m, DEFAULT_HNSW.efConstruction, 100);
  for (let i = 0; i < data.count; i++) index.addPoint(Array.from(rows[i] as Float32Array), i);
  const seconds = (performance.now() - start) / 1000;
  return { index, seconds, memory: growth(before, memory()) };
}

function sameAnswers<R>(a: Contender<R>, b: Contender<R>, queries: readonly Float32Array[]): boolean {
  return queries.every((q) => a.labels(a.search(q)).join(',') === b.labels(b.search(q)).join(','));
}

function* labels(count: number): Generator<number> {
  for (let i = 0; i < count; i++) yield i;
}

function persistMemex(index: HnswVectorIndex, data: Dataset, dir: string, check: readonly Float32Array[]): Omit<BuildResult, 'seconds' | 'insertsPerSecond' | 'memory'> {
  const path = join(dir, 'memex.hnsw');
  let start = performance.now();
  index.write(path);
  const writeSeconds = (performance.now() - start) / 1000;
  const fileMB = statSync(path).size / 2 ** 20;
  start = performance.now();
  const loaded = HnswVectorIndex.read(path, data.dimension, DEFAULT_HNSW, labels(data.count));
  const loadSeconds = (performance.now() - start) / 1000;
  index.setEf(DEFAULT_HNSW.efSearch);
  const reloadMatches = loaded.size === data.count && sameAnswers(memexContender(index), memexContender(loaded), check);
  rmSync(path);
  return { writeSeconds, loadSeconds, fileMB, reloadMatches };
}

function persistRaw(index: Hnswlib.HierarchicalNSW, data: Dataset, dir: string, check: readonly Float32Array[]): Omit<BuildResult, 'seconds' | 'insertsPerSecond' | 'memory'> {
  const path = join(dir, 'raw.hnsw');
  let start = performance.now();
  index.writeIndexSync(path);
  const writeSeconds = (performance.now() - start) / 1000;
  const fileMB = statSync(path).size / 2 ** 20;
  start = performance.now();
  const loaded = new rawHnswlib.HierarchicalNSW('ip', data.dimension);
  loaded.readIndexSync(path);
  const loadSeconds = (performance.now() - start) / 1000;
  index.setEf(DEFAULT_HNSW.efSearch);
  loaded.setEf(DEFAULT_HNSW.efSearch);
  const reloadMatches = loaded.getCurrentCount() === data.count && sameAnswers(rawContender(index), rawContender(loaded), check);
  rmSync(path);
  return { writeSeconds, loadSeconds, fileMB, reloadMatches };
}

/**
 * Every efSearch: a warm-up pass per system, then ROUNDS timed passes each. Within a pass the two
 * systems take turns in blocks of BLOCK queries (who goes first alternates), so a burst of other
 * load on the machine lands on both alike. Latencies are pooled over the rounds; qps is queries
 * over summed loop time.
 */
function sweep(contenders: [Contender<Neighbor[]>, Contender<Hnswlib.SearchResult> | null], queries: readonly Float32Array[], truth: readonly Set<number>[]): [EfResult[], EfResult[]] {
  const [memex, raw] = contenders;
  const memexResults: EfResult[] = [];
  const rawResults: EfResult[] = [];
  const n = queries.length;
  const warm = Math.min(WARMUP_QUERIES, n);
  for (const ef of EF_SEARCH) {
    memex.setEf(ef);
    raw?.setEf(ef);
    timeQueries(memex.search, queries, 0, warm, new Float64Array(warm), 0, null);
    if (raw) timeQueries(raw.search, queries, 0, warm, new Float64Array(warm), 0, null);
    const memexLatency = new Float64Array(n * ROUNDS);
    const rawLatency = new Float64Array(n * ROUNDS);
    const memexKept: Neighbor[][] = [];
    const rawKept: Hnswlib.SearchResult[] = [];
    let memexMs = 0;
    let rawMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let from = 0, block = 0; from < n; from += BLOCK, block++) {
        const to = Math.min(n, from + BLOCK);
        const runMemex = (): void => void (memexMs += timeQueries(memex.search, queries, from, to, memexLatency, round * n, round === 0 ? memexKept : null));
        const runRaw = (): void => void (rawMs += raw ? timeQueries(raw.search, queries, from, to, rawLatency, round * n, round === 0 ? rawKept : null) : 0);
        if ((round + block) % 2 === 0) {
          runMemex();
          runRaw();
        } else {
          runRaw();
          runMemex();
        }
      }
    }
    memexResults.push({ efSearch: ef, recall: recall(memexKept.map(memex.labels), truth), ...latency(memexLatency, memexMs) });
    if (raw) rawResults.push({ efSearch: ef, recall: recall(rawKept.map(raw.labels), truth), ...latency(rawLatency, rawMs) });
  }
  return [memexResults, rawResults];
}

async function benchSize(size: string, opts: Options): Promise<SizeResult | null> {
  const started = performance.now();
  const loadBefore = loadavg()[0] ?? 0;
  const count = parseSize(size);
  let data: Dataset;
  if (size === '10k') {
    const real = await realDataset(opts.queries);
    if (typeof real === 'string') {
      console.log(`\n## 10k: ${real}\n`);
      return null;
    }
    data = real;
  } else {
    console.error(`${size}: generating ${count.toLocaleString('en-US')} + ${opts.queries} synthetic vectors ...`);
    data = syntheticDataset(size, count, opts.queries);
  }
  const { dimension } = data;
  const rows = Array.from({ length: data.count }, (_, i) => data.rows.subarray(i * dimension, (i + 1) * dimension));
  const queries = Array.from({ length: data.queryCount }, (_, i) => data.queries.subarray(i * dimension, (i + 1) * dimension));
  const groundTruthQueries = Math.min(data.queryCount, opts.exactQueries ?? (data.count >= RAW_AUTO_FROM ? 200 : data.queryCount));

  // Exact: the ground truth, timed like the others.
  console.error(`${size}: exact search, ${groundTruthQueries} queries ...`);
  const start = performance.now();
  const exact = new ExactVectorIndex(dimension, data.count);
  for (let i = 0; i < data.count; i++) exact.add(i, rows[i] as Float32Array);
  const exactBuildSeconds = (performance.now() - start) / 1000;
  const truthQueries = queries.slice(0, groundTruthQueries);
  const exactSearch = (q: Float32Array): Neighbor[] => exact.search(q, K);
  timeQueries(exactSearch, truthQueries, 0, Math.min(20, truthQueries.length), new Float64Array(20), 0, null);
  const exactKept: Neighbor[][] = [];
  const exactLatency = new Float64Array(truthQueries.length);
  const exactMs = timeQueries(exactSearch, truthQueries, 0, truthQueries.length, exactLatency, 0, exactKept);
  const truth = exactKept.map((result) => new Set(result.map((n) => n.label)));
  const exactResult = { buildSeconds: exactBuildSeconds, ...latency(exactLatency, exactMs) };

  // Should the raw index be built at all? At large sizes only if the whole size stays within budget.
  let includeRaw = opts.raw !== 'never';
  let rawSkipped: string | null = opts.raw === 'never' ? '--raw never' : null;
  let probeRatio: number | null = null;
  if (opts.raw === 'auto' && data.count >= RAW_AUTO_FROM) {
    console.error(`${size}: probing build speed on the first ${PROBE_ROWS.toLocaleString('en-US')} rows ...`);
    const probeData = { ...data, count: Math.min(PROBE_ROWS, data.count) };
    const m = buildMemex(probeData, rows);
    const r = buildRaw(probeData, rows);
    probeRatio = r.seconds / m.seconds;
  }

  const dir = mkdtempSync(join(tmpdir(), 'memex-bench-ann-'));
  const check = queries.slice(0, 50);
  try {
    console.error(`${size}: building Memex's index ...`);
    const memexBuilt = buildMemex(data, rows);
    const memexPersist = persistMemex(memexBuilt.index, data, dir, check);
    if (probeRatio !== null) {
      const estimate = memexBuilt.seconds * probeRatio;
      const elapsed = (performance.now() - started) / 1000;
      if (elapsed + estimate > RAW_BUDGET_S) {
        includeRaw = false;
        rawSkipped = `the raw portable build was NOT built at this size: it builds ${probeRatio.toFixed(2)}x slower than Memex's on a ${PROBE_ROWS.toLocaleString('en-US')}-row probe, so about ${estimate.toFixed(0)} s here, and this size has already taken ${elapsed.toFixed(0)} s (budget ${RAW_BUDGET_S} s; --raw always forces it)`;
      }
    }
    let rawBuilt: ReturnType<typeof buildRaw> | null = null;
    let rawPersist: ReturnType<typeof persistRaw> | null = null;
    if (includeRaw) {
      console.error(`${size}: building the raw index ...`);
      rawBuilt = buildRaw(data, rows);
      rawPersist = persistRaw(rawBuilt.index, data, dir, check);
    }
    console.error(`${size}: sweeping efSearch ...`);
    const [memexEfs, rawEfs] = sweep([memexContender(memexBuilt.index), rawBuilt ? rawContender(rawBuilt.index) : null], queries, truth);
    const result = (built: { seconds: number; memory: Memory }, persist: ReturnType<typeof persistRaw>, efs: EfResult[]): SystemResult => ({
      build: { seconds: built.seconds, insertsPerSecond: data.count / built.seconds, memory: built.memory, ...persist },
      efs,
    });
    return {
      size,
      kind: data.kind,
      description: data.description,
      queryDescription: data.queryDescription,
      count: data.count,
      dimension,
      queries: data.queryCount,
      groundTruthQueries,
      exact: exactResult,
      memex: result(memexBuilt, memexPersist, memexEfs),
      raw: rawBuilt && rawPersist ? result(rawBuilt, rawPersist, rawEfs) : null,
      rawSkipped,
      seconds: (performance.now() - started) / 1000,
      load: [loadBefore, loadavg()[0] ?? 0],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

const f = (n: number, digits: number): string => n.toFixed(digits);
const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const qps = (n: number): string => (n < 100 ? n.toFixed(1) : int(n));

function report(r: SizeResult): void {
  const { memex, raw } = r;
  console.log(`\n## ${r.size}: ${r.kind === 'real' ? 'REAL embeddings' : 'SYNTHETIC clustered vectors'} (${r.count.toLocaleString('en-US')} x ${r.dimension}-d)\n`);
  console.log(`- data: ${r.description}`);
  console.log(`- queries: ${r.queryDescription}; qps and latency over all ${r.queries.toLocaleString('en-US')} (x${ROUNDS} rounds, Memex and raw taking turns every ${BLOCK} queries, after a ${WARMUP_QUERIES}-query warm-up per efSearch)`);
  console.log(
    r.groundTruthQueries === r.queries
      ? `- recall@10 against exact search on all ${r.queries.toLocaleString('en-US')} queries`
      : `- recall@10 against exact search on the first ${r.groundTruthQueries.toLocaleString('en-US')} queries only (exact ground truth computed on that subset); qps/latency use all ${r.queries.toLocaleString('en-US')}`,
  );
  if (r.rawSkipped) console.log(`- **${r.rawSkipped}**`);
  console.log('');
  console.log('| build & file | build s | rows/s | RSS growth MB | JS heap growth MB | write s | load s | file MB | reloaded = built |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |');
  const buildRow = (name: string, b: BuildResult): void =>
    console.log(`| ${name} | ${f(b.seconds, 1)} | ${int(b.insertsPerSecond)} | ${int(b.memory.rssMB)} | ${f(b.memory.heapMB, 1)} | ${f(b.writeSeconds, 2)} | ${f(b.loadSeconds, 2)} | ${f(b.fileMB, 1)} | ${b.reloadMatches ? 'yes' : '**no**'} |`);
  buildRow(`Memex HnswVectorIndex (${hnswlib().kind})`, memex.build);
  if (raw) buildRow('raw hnswlib-node (portable npm build)', raw.build);
  console.log(`| exact (ExactVectorIndex) | ${f(r.exact.buildSeconds, 1)} | ${int(r.count / r.exact.buildSeconds)} | | | | | | |`);
  console.log('');
  console.log('| efSearch | recall@10 Memex / raw | qps Memex / raw | **Memex/raw qps** | p50 ms Memex / raw | p99 ms Memex / raw |');
  console.log('| ---: | :---: | :---: | ---: | :---: | :---: |');
  memex.efs.forEach((m, i) => {
    const w = raw?.efs[i];
    const ef = m.efSearch === DEFAULT_HNSW.efSearch ? `${m.efSearch} (default)` : String(m.efSearch);
    const pair = (a: string, b: string | undefined): string => (b === undefined ? `${a} / —` : `${a} / ${b}`);
    console.log(
      `| ${ef} | ${pair(f(m.recall, 4), w && f(w.recall, 4))} | ${pair(qps(m.qps), w && qps(w.qps))} | ${w ? `**${f(m.qps / w.qps, 2)}x**` : '—'} | ${pair(f(m.p50Ms, 3), w && f(w.p50Ms, 3))} | ${pair(f(m.p99Ms, 3), w && f(w.p99Ms, 3))} |`,
    );
  });
  console.log(`| exact | 1 | ${qps(r.exact.qps)} | | ${f(r.exact.p50Ms, 3)} | ${f(r.exact.p99Ms, 3)} |`);
  const good = memex.efs.find((e) => e.recall >= 0.95 && e.p50Ms < 1);
  console.log(`\nSmallest efSearch where Memex has recall@10 >= 0.95 and p50 < 1 ms: ${good ? `${good.efSearch} (recall ${f(good.recall, 4)}, p50 ${f(good.p50Ms, 3)} ms, ${qps(good.qps)} qps)` : 'none in the sweep'}.`);
  console.log(`This size took ${f(r.seconds, 0)} s; 1-min load average ${f(r.load[0], 2)} at its start, ${f(r.load[1], 2)} at its end (${cpus().length} cores).`);
}

// ---------------------------------------------------------------- main

const opts = options();
const build = hnswlib();
console.log('# ANN search: Memex HnswVectorIndex vs raw hnswlib-node vs exact\n');
console.log(`- machine: ${machine()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`);
console.log(`- Memex's hnswlib build: **${build.kind}**${build.reason ? ` (${build.reason})` : ' (CPU-tuned addon from build/native)'}; raw: hnswlib-node ${rawVersion} as npm installs it (portable)`);
console.log(`- both: inner product, m=${DEFAULT_HNSW.m}, efConstruction=${DEFAULT_HNSW.efConstruction}, seed 100, pre-sized to the row count, rows added in the same order; k=${K}`);
console.log('- Memex: add(label, Float32Array) / search(Float32Array, 10); raw: addPoint(Array.from(row)) / searchKnn(Array.from(query), 10), the conversion timed as part of each call');
console.log('- memory: process RSS and V8 heapUsed after a forced GC, before and after the build (the graph itself lives outside the JS heap)');

const results: SizeResult[] = [];
for (const size of opts.sizes) {
  const result = await benchSize(size, opts);
  if (!result) continue;
  report(result);
  results.push(result);
}
if (opts.json) {
  writeFileSync(opts.json, `${JSON.stringify({ machine: machine(), cpu: cpus()[0]?.model ?? null, cores: cpus().length, build: { kind: build.kind, reason: build.reason }, rawVersion, params: DEFAULT_HNSW, results }, null, 2)}\n`);
  console.log(`\nraw numbers: ${opts.json}`);
}
