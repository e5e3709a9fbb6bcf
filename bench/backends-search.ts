/**
 * The search half of bench/backends.ts: hybrid search through the two implementations of the search
 * seam, FlatSearch over the flat files and PostgresSearch (what the facade runs on
 * `store: { kind: 'postgres' }`), over the same rows, and recall@10 of each one's graph index
 * against exact search on those rows. Two sets, each in a fresh data dir and a fresh schema:
 *
 *  - LoCoMo size: every LoCoMo turn as a chunk of one user (a session per LoCoMo session), embedded
 *    with the real model, queried with the LoCoMo questions embedded the same way;
 *  - `--chunks` (100k) chunks of one user (1,000 per session): LoCoMo turns cycled for text, and a
 *    FAKE embedding, named as one (seeded PRNG rows around random cluster centres, unit length),
 *    because embedding 100k texts with the model on this machine takes longer than the run may.
 *    Queries are LoCoMo questions for the lexical side with the vector of a stored row moved by noise.
 *
 * Latency is the backend's search alone (the query is embedded before timing, as Recall's query
 * cache has it): p50/p99 of sequential calls taken in rounds that alternate the backends, then
 * queries/s sequential and with 8 concurrent callers. The facade's Recall runs one search per user
 * at a time, so 8 callers of one flat-file service queue up (that is what is measured for the flat
 * files); PostgresSearch keeps nothing in memory, so the 8 callers stand for 8 service instances
 * sharing the database, each on its own connection (PGlite then runs them one after another).
 *
 * Recall@10: vector mode, k 10, through each backend with the default config against the same
 * backend with `index.exactBelow` above the row count (its exact scan), same rows, same options, so
 * the same ef_search (max(index.efSearch, search.candidates), as both backends set it).
 *
 * Loading: PGlite keeps pgvector's HNSW index up at tens of rows/s, so the Postgres rows are written
 * in batches of 1,000 straight into memex.chunks (as the user, under row-level security) before the
 * model is recorded, and recording it (recordModel, what `setEmbeddingModel` runs) then builds the
 * HNSW index over them in one go: that build is timed apart. The flat files load through the Store
 * (appendMessages, appendVectors) and build their hnswlib graph on the first search (FlatSearch's
 * prepare), also timed apart.
 */
import { join } from 'node:path';
import { loadConfig, SearchOptionsSchema, type EmbeddingModel, type ParsedSearchOptions } from '../src/core/index.js';
import { TransformersEmbedder } from '../src/embedding/index.js';
import { FlatSearch, PostgresSearch, type SearchBackend, type SearchQuery } from '../src/index/index.js';
import { recordAnalysis, withUser } from '../src/store/postgres/index.js';
import { FlatFileStore, PostgresStore, type Store } from '../src/store/index.js';
import { resetMemexSchema, type TestDatabase } from '../test/helpers/postgres.js';
import { chunkOf, clusteredVectors, evidenceQuestions, insertChunks, perturbed, prng, type BulkChunk } from './lib/fixtures.js';
import { benchModel, locomoSessions } from './locomo.js';

export interface SearchOptions {
  /** Chunks of the large set; 0 skips it. */
  chunks: number;
  /** Distinct queries (LoCoMo questions) cycled through the timed calls. */
  queries: number;
  /** Timed calls per backend, for p50/p99 and for each queries/s figure. */
  samples: number;
  /** Queries for recall@10 (each runs an exact scan on both backends). */
  recallQueries: number;
}

export interface SearchRow {
  section: string;
  what: string;
  backend: string;
  perSecond?: number;
  p50?: number;
  p99?: number;
  samples?: number;
  baseline?: boolean;
  recall?: number;
  seconds?: number;
}

const K = 10;
const CONCURRENCY = 8;
const ROUNDS = 4;
const WARMUP = 5;
const PER_SESSION = 1000;
const BATCH = 1000;
const USER = 'searcher';
const FAKE_MODEL: EmbeddingModel = { model: 'fake/seeded-prng-clustered-unit-vectors', dimension: 512 };
const FLAT = 'flat files';
const PG = 'PostgreSQL (PGlite)';

interface Side {
  name: string;
  search: SearchBackend;
  exact: SearchBackend;
  /** Recall serialises a user's searches on the flat files; see the header. */
  serial: boolean;
}

interface SearchSet {
  label: string;
  rows: number;
  queries: SearchQuery[];
}

export async function searchSections(root: string, database: TestDatabase, options: SearchOptions, progress: (line: string) => void): Promise<SearchRow[]> {
  const out: SearchRow[] = [];
  await locomoSet(root, database, options, progress, out);
  if (options.chunks > 0) await largeSet(root, database, options, progress, out);
  return out;
}

// ---------------------------------------------------------------- the two sets

async function locomoSet(root: string, database: TestDatabase, options: SearchOptions, progress: (line: string) => void, out: SearchRow[]): Promise<void> {
  const { model, modelDir } = benchModel();
  const embedder = await TransformersEmbedder.load({ model, modelDir, batchSize: 32 });
  const embedding = { model: embedder.modelId, dimension: embedder.dimension };
  const sessions = locomoSessions();
  const known = new Set(sessions.flatMap((s) => s.turns.map((t) => `${s.conversation}/${t.diaId}`)));
  const questions = evidenceQuestions(known).slice(0, options.queries).map((q) => q.text);
  const started = performance.now();
  const texts = sessions.map((s) => s.turns.map((t) => t.text));
  const vectors = await embedder.embed(texts.flat());
  const queryVectors = await embedder.embed(questions);
  progress(`search: ${vectors.length} LoCoMo turns and ${questions.length} questions embedded with ${model} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
  const roles = sessions.map((s) => s.turns.map((t) => (t.speaker === s.turns[0]?.speaker ? ('user' as const) : ('assistant' as const))));
  const set: SearchSet = {
    label: `LoCoMo (${vectors.length} turns, ${embedding.dimension}-d ${model})`,
    rows: vectors.length,
    queries: questions.map((text, i) => ({ text, vector: queryVectors[i] as Float32Array, model: embedding })),
  };
  await measureSet(root, database, 'search-locomo', set, embedding, texts, roles, vectors, options, progress, out);
}

async function largeSet(root: string, database: TestDatabase, options: SearchOptions, progress: (line: string) => void, out: SearchRow[]): Promise<void> {
  const turns = locomoSessions().flatMap((s) => s.turns.map((t) => ({ text: t.text, user: t.speaker === s.turns[0]?.speaker })));
  const vectors = clusteredVectors(options.chunks, 16, FAKE_MODEL.dimension, 1000, 1);
  const texts: string[][] = [];
  const roles: ('user' | 'assistant')[][] = [];
  for (let at = 0; at < options.chunks; at += PER_SESSION) {
    const n = Math.min(PER_SESSION, options.chunks - at);
    const turn = (i: number) => turns[(at + i) % turns.length] as { text: string; user: boolean };
    texts.push(Array.from({ length: n }, (_, i) => turn(i).text));
    roles.push(Array.from({ length: n }, (_, i) => (turn(i).user ? 'user' : 'assistant')));
  }
  const known = new Set(locomoSessions().flatMap((s) => s.turns.map((t) => `${s.conversation}/${t.diaId}`)));
  const questions = evidenceQuestions(known).slice(0, options.queries).map((q) => q.text);
  const next = prng(17);
  const set: SearchSet = {
    label: `${options.chunks.toLocaleString('en-US')} chunks (fake ${FAKE_MODEL.dimension}-d vectors)`,
    rows: options.chunks,
    queries: questions.map((text) => ({ text, vector: perturbed(vectors[Math.floor(next() * vectors.length)] as Float32Array, 0.5, next), model: FAKE_MODEL })),
  };
  await measureSet(root, database, 'search-large', set, FAKE_MODEL, texts, roles, vectors, options, progress, out);
}

/** Loads `texts` (one array per session) and their `vectors` into both backends, then measures them. */
async function measureSet(
  root: string,
  database: TestDatabase,
  dir: string,
  set: SearchSet,
  embedding: EmbeddingModel,
  texts: string[][],
  roles: ('user' | 'assistant')[][],
  vectors: Float32Array[],
  options: SearchOptions,
  progress: (line: string) => void,
  out: SearchRow[],
): Promise<void> {
  const section = `search, ${set.label}`;
  // A fresh schema: the model is the database's, and each set has its own.
  await resetMemexSchema(database.url);
  const flat = await FlatFileStore.open({ dataDir: join(root, dir), fsync: 'none', onWarning: () => undefined });
  const postgres = await PostgresStore.open({ url: database.url, maxConnections: 10, hnsw: hnswBuild(), onWarning: () => undefined });
  try {
    const flatLoad = await loadFlat(flat, embedding, texts, roles, vectors);
    out.push({ section, what: 'load (rows/s; flat: appendMessages + appendVectors; Postgres: batched INSERT, no HNSW index yet)', backend: FLAT, perSecond: set.rows / flatLoad, baseline: true });
    const pgLoad = await loadPostgres(postgres, embedding, texts, roles, vectors);
    out.push({ section, what: 'load (rows/s; flat: appendMessages + appendVectors; Postgres: batched INSERT, no HNSW index yet)', backend: PG, perSecond: set.rows / pgLoad });
    progress(`${section}: loaded (flat ${flatLoad.toFixed(0)} s, Postgres ${pgLoad.toFixed(0)} s)`);

    // The HNSW index over rows already there, as recordModel builds it.
    let start = performance.now();
    // PGlite is one backend session, so this SET holds for the build below; pgvector builds in
    // memory while the graph fits in maintenance_work_mem and crawls on disk after.
    await postgres.database.pool.query("SET maintenance_work_mem = '1GB'");
    await postgres.setEmbeddingModel(embedding);
    const pgBuild = (performance.now() - start) / 1000;
    // What a server's autovacuum does after a bulk load (PGlite runs none): statistics for the
    // planner, and the visibility map that lets the postings be read from their index alone.
    await postgres.database.pool.query('VACUUM ANALYZE');
    const config = loadConfig({ env: {}, cwd: '/' });
    const exactConfig = { ...config, index: { ...config.index, exactBelow: 1_000_000 } };
    const flatSearch = new FlatSearch({ store: flat, config: { ...config, fsync: 'none' }, onWarning: () => undefined });
    start = performance.now();
    await flatSearch.prepare(USER, { model: embedding });
    const flatBuild = (performance.now() - start) / 1000;
    const hnsw = `m ${config.index.m}, ef_construction ${config.index.efConstruction}`;
    out.push({ section, what: `index build (s; flat: hnswlib on first use; Postgres: CREATE INDEX … USING hnsw, ${hnsw})`, backend: FLAT, seconds: flatBuild, baseline: true });
    out.push({ section, what: `index build (s; flat: hnswlib on first use; Postgres: CREATE INDEX … USING hnsw, ${hnsw})`, backend: PG, seconds: pgBuild });
    progress(`${section}: index built (flat ${flatBuild.toFixed(0)} s, Postgres ${pgBuild.toFixed(0)} s)`);

    const flatExact = new FlatSearch({ store: flat, config: { ...exactConfig, fsync: 'none' }, onWarning: () => undefined });
    const sides: Side[] = [
      { name: FLAT, search: flatSearch, exact: flatExact, serial: true },
      { name: PG, search: new PostgresSearch({ pool: postgres.database.pool, config }), exact: new PostgresSearch({ pool: postgres.database.pool, config: exactConfig }), serial: false },
    ];
    const ef = Math.max(config.index.efSearch, config.search.candidates);
    await timings(section, sides, set, options.samples, progress, out);
    // Saves the graph, so the exact instance opens it from disk instead of building its own.
    await flatSearch.close();
    await recall(section, sides, set, Math.min(options.recallQueries, set.queries.length), ef, progress, out);
    await flatSearch.close();
    await flatExact.close();
  } finally {
    await flat.close();
    await postgres.close();
  }
}

function hnswBuild(): { m: number; efConstruction: number } {
  const { index } = loadConfig({ env: {}, cwd: '/' });
  return { m: index.m, efConstruction: index.efConstruction };
}

async function loadFlat(store: Store, embedding: EmbeddingModel, texts: string[][], roles: ('user' | 'assistant')[][], vectors: Float32Array[]): Promise<number> {
  const start = performance.now();
  await store.setEmbeddingModel(embedding);
  await store.createUser({ id: USER });
  let at = 0;
  for (const [s, session] of texts.entries()) {
    const { id } = await store.createSession(USER, { title: `session ${s}` });
    const messages = await store.appendMessages(USER, id, session.map((content, i) => ({ role: roles[s]?.[i] ?? 'user', content })));
    for (let i = 0; i < messages.length; i += BATCH) {
      const part = messages.slice(i, i + BATCH);
      await store.appendVectors(USER, id, { model: embedding.model, chunks: part.map(chunkOf), vectors: vectors.slice(at + i, at + i + part.length) });
    }
    at += messages.length;
  }
  return (performance.now() - start) / 1000;
}

/** Rows straight into memex.chunks before the model (and so the HNSW index) exists; see the header. */
async function loadPostgres(store: PostgresStore, embedding: EmbeddingModel, texts: string[][], roles: ('user' | 'assistant')[][], vectors: Float32Array[]): Promise<number> {
  const start = performance.now();
  await store.createUser({ id: USER });
  const { search } = loadConfig({ env: {}, cwd: '/' });
  const analysis = await recordAnalysis(store.database.pool, { stopwords: search.stopwords, stemming: search.stemming });
  let at = 0;
  for (const [s, session] of texts.entries()) {
    const { id } = await store.createSession(USER, { title: `session ${s}` });
    for (let i = 0; i < session.length; i += BATCH) {
      const rows: BulkChunk[] = session.slice(i, i + BATCH).map((text, j) => ({
        sessionId: id,
        id: `m${s}-${i + j}:0`,
        role: roles[s]?.[i + j] ?? 'user',
        text,
        vector: vectors[at + i + j] as Float32Array,
      }));
      await withUser(store.database.pool, USER, (client) => insertChunks(client, USER, embedding.model, analysis, rows));
    }
    at += session.length;
  }
  return (performance.now() - start) / 1000;
}

// ---------------------------------------------------------------- measuring

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

/** Hybrid k 10: p50/p99 sequential (rounds alternating the backends), queries/s sequential and 8 concurrent. */
async function timings(section: string, sides: Side[], set: SearchSet, samples: number, progress: (line: string) => void, out: SearchRow[]): Promise<void> {
  const hybrid = SearchOptionsSchema.parse({ k: K, mode: 'hybrid' });
  const query = (i: number): SearchQuery => set.queries[i % set.queries.length] as SearchQuery;
  for (const side of sides) for (let i = 0; i < WARMUP; i++) await side.search.search(USER, query(i), hybrid);
  const times = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const perRound = Math.ceil(samples / ROUNDS);
  let n = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      for (let i = 0; i < perRound; i++) {
        const start = performance.now();
        await side.search.search(USER, query(n + i), hybrid);
        (times.get(side) as number[]).push(performance.now() - start);
      }
    }
    n += perRound;
  }
  for (const side of sides) {
    const all = times.get(side) as number[];
    const sorted = [...all].sort((a, b) => a - b);
    const total = all.reduce((a, b) => a + b, 0) / 1000;
    out.push({ section, what: `hybrid k ${K}, p50 / p99 ms; queries/s, 1 caller`, backend: side.name, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), perSecond: all.length / total, samples: all.length, baseline: side.name === FLAT });
  }
  progress(`${section}: hybrid latency`);
  for (const side of sides) {
    let chain: Promise<unknown> = Promise.resolve();
    const call = (i: number): Promise<unknown> => {
      if (!side.serial) return side.search.search(USER, query(i), hybrid);
      const turn = chain.then(() => side.search.search(USER, query(i), hybrid));
      chain = turn.catch(() => undefined);
      return turn;
    };
    let next = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < samples) await call(next++);
    }));
    out.push({ section, what: `hybrid k ${K}, queries/s, ${CONCURRENCY} concurrent callers`, backend: side.name, perSecond: samples / ((performance.now() - start) / 1000), baseline: side.name === FLAT });
  }
  progress(`${section}: hybrid throughput`);
}

/** Recall@10 of each backend's graph index against its own exact scan, vector mode, same rows and options. */
async function recall(section: string, sides: Side[], set: SearchSet, queries: number, ef: number, progress: (line: string) => void, out: SearchRow[]): Promise<void> {
  const vector: ParsedSearchOptions = SearchOptionsSchema.parse({ k: K, mode: 'vector' });
  // A filter every row passes: the flat files scan exactly only under a filter (unfiltered, they
  // always walk the graph), and then when at most exactBelow rows match.
  const everyRow: ParsedSearchOptions = SearchOptionsSchema.parse({ k: K, mode: 'vector', roles: ['user', 'assistant'] });
  for (const side of sides) {
    let sum = 0;
    const paths = new Set<string>();
    for (let i = 0; i < queries; i++) {
      const q = set.queries[i] as SearchQuery;
      const found = await side.search.search(USER, q, vector);
      const truth = await side.exact.search(USER, q, everyRow);
      paths.add(`${found.vectorPath}/${truth.vectorPath}`);
      const want = new Set(truth.hits.map((h) => `${h.sessionId}\u0000${h.chunkId}`));
      sum += want.size === 0 ? 1 : found.hits.filter((h) => want.has(`${h.sessionId}\u0000${h.chunkId}`)).length / want.size;
    }
    if (![...paths].every((p) => p === 'hnsw/exact')) throw new Error(`${side.name}: recall compared ${[...paths].join(', ')}, not hnsw/exact`);
    out.push({ section, what: `recall@${K} of the HNSW index vs exact (vector mode, ef_search ${ef}, ${queries} queries)`, backend: side.name, recall: sum / queries, baseline: side.name === FLAT });
  }
  progress(`${section}: recall`);
}
