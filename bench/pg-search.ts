/**
 * The Postgres search's vector side, measured on real embeddings: every LoCoMo turn (one user, one
 * session per conversation) through the shared model into PGlite + pgvector, queried with LoCoMo
 * questions. In one run:
 *
 *  - recall@10 of pgvector's HNSW index against the exact scan of the same rows, per ef_search;
 *  - under filters (another conversation's session: ~10% of rows; one speaker's role: ~50%), what the
 *    index scan alone returns with iterative scans off, relaxed_order and strict_order: how often it
 *    comes back with all k (else PostgresSearch falls back to the exact scan), and its recall@10
 *    against the exact filtered answer;
 *  - PostgresSearch end to end (hybrid, k 10): p50 / p99 per query on this PGlite;
 *  - quality: LoCoMo evidence recall@10, lexical and hybrid, flat files' rankers against Postgres's.
 *
 * PGlite is Postgres compiled to WASM, single-threaded, reached over its socket server: absolute
 * times are not a PostgreSQL server's; the recall figures are pgvector's own.
 *
 *   npx tsx bench/pg-search.ts [--queries 200]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { loadConfig, SearchOptionsSchema } from '../src/core/index.js';
import { TransformersEmbedder } from '../src/embedding/index.js';
import { CandidateSet, pick, rank } from '../src/index/fuse.js';
import { DEFAULT_BM25, LexicalIndex, PostgresSearch } from '../src/index/index.js';
import { dot } from '../src/index/vector-index.js';
import { openDatabase, recordAnalysis, recordModel, withUser } from '../src/store/postgres/index.js';
import { evidenceQuestions as questionsWithEvidence, insertChunks, vectorText } from './lib/fixtures.js';
import { benchModel, locomoSessions, machine } from './locomo.js';

const K = 10;
const USER = 'bench';
const { values } = parseArgs({ options: { queries: { type: 'string', default: '200' } } });
const QUERIES = Number(values.queries);

// ---------------------------------------------------------------- data

const sessions = locomoSessions();
const rows = sessions.flatMap((session) =>
  session.turns.map((turn) => ({ session: session.conversation, id: turn.diaId, text: `${turn.speaker}: ${turn.text}`, speaker: turn.speaker })),
);
const firstSpeaker = new Map<string, string>();
for (const session of sessions) if (!firstSpeaker.has(session.conversation)) firstSpeaker.set(session.conversation, session.turns[0]?.speaker ?? '');
const known = new Set(rows.map((row) => `${row.session}/${row.id}`));
const evidenceQuestions = questionsWithEvidence(known);
const questions = evidenceQuestions.slice(0, QUERIES).map((q) => q.text);

const { model, modelDir } = benchModel();
const embedder = await TransformersEmbedder.load({ model, modelDir, batchSize: 32 });
const cache = join(tmpdir(), `memex-bench-pg-search-${rows.length}-${evidenceQuestions.length}.json`);
let embedded: { rows: number[][]; queries: number[][] };
if (existsSync(cache)) {
  embedded = JSON.parse(readFileSync(cache, 'utf8')) as typeof embedded;
} else {
  console.error(`embedding ${rows.length} turns and ${evidenceQuestions.length} questions with ${model}...`);
  const toArrays = (vectors: Float32Array[]): number[][] => vectors.map((v) => Array.from(v));
  embedded = { rows: toArrays(await embedder.embed(rows.map((row) => row.text))), queries: toArrays(await embedder.embed(evidenceQuestions.map((q) => q.text))) };
  writeFileSync(cache, JSON.stringify(embedded));
}
/** All evidence questions' vectors; `embedded.queries` is the first QUERIES of them. */
const allQueries = embedded.queries;
embedded = { rows: embedded.rows, queries: allQueries.slice(0, QUERIES) };
const dim = embedder.dimension;
const text = vectorText;

// ---------------------------------------------------------------- database

const db = await PGlite.create({ extensions: { vector } });
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 8 });
await server.start();
const database = await openDatabase(`postgresql://postgres:postgres@${server.getServerConn()}/postgres`, { maxConnections: 4 });
const { pool } = database;
const config = loadConfig({ env: {}, cwd: '/' });
await recordModel(pool, { model: embedder.modelId, dimension: dim }, { m: config.index.m, efConstruction: config.index.efConstruction });
const analysis = await recordAnalysis(pool, { stopwords: config.search.stopwords, stemming: config.search.stemming });
await withUser(pool, USER, async (c) => {
  await c.query('INSERT INTO memex.users (user_id, name) VALUES ($1, $1)', [USER]);
  for (const conversation of new Set(rows.map((row) => row.session))) await c.query('INSERT INTO memex.sessions (user_id, id) VALUES ($1, $2)', [USER, conversation]);
  for (let at = 0; at < rows.length; at += 500) {
    const batch = rows.slice(at, at + 500);
    await insertChunks(
      c,
      USER,
      embedder.modelId,
      analysis,
      batch.map((row, i) => ({ sessionId: row.session, id: row.id, role: row.speaker === firstSpeaker.get(row.session) ? 'user' : 'assistant', text: row.text, vector: embedded.rows[at + i] as number[] })),
    );
  }
});
await pool.query('ANALYZE memex.chunks');

// ---------------------------------------------------------------- measurements

type Filter = { name: string; sql: string; params: unknown[] };
const FILTERS: Filter[] = [
  { name: 'none', sql: 'true', params: [] },
  // The questions are about the first conversations; the filter keeps the last one, whose turns are rarely their nearest.
  { name: 'another conversation (~10%)', sql: 'c.session_id = $3', params: [rows.at(-1)?.session] },
  { name: 'one speaker (~50%)', sql: "c.source ->> 'role' = $3", params: ['user'] },
];

async function topK(query: number[], filter: Filter, settings: Record<string, string> | null): Promise<string[]> {
  return withUser(pool, USER, async (c) => {
    const indexed = settings !== null;
    if (indexed) {
      for (const [name, value] of Object.entries({ ...settings, enable_seqscan: 'off', enable_sort: 'off' })) await c.query('SELECT set_config($1, $2, true)', [name, value]);
    }
    const column = indexed ? `c.embedding::vector(${dim})` : 'c.embedding';
    const cast = indexed ? `::vector(${dim})` : '::vector';
    const result = await c.query<{ id: string }>(`SELECT c.id FROM memex.chunks c WHERE c.user_id = $1 AND ${filter.sql} ORDER BY ${column} <=> $2${cast} LIMIT ${K}`, [USER, text(query), ...filter.params]);
    return result.rows.map((row) => row.id);
  });
}

function recall(found: string[], truth: string[]): number {
  const want = new Set(truth);
  return truth.length === 0 ? 1 : found.filter((id) => want.has(id)).length / truth.length;
}

const truths = new Map<string, string[][]>();
for (const filter of FILTERS) {
  const exact: string[][] = [];
  for (const q of embedded.queries) exact.push(await topK(q, filter, null));
  truths.set(filter.name, exact);
}

console.log(`# Postgres search: pgvector ${(await pool.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'")).rows[0]?.v} on PGlite, ${rows.length} LoCoMo turns (${dim}-d, ${model}), ${questions.length} questions, k ${K}, m ${config.index.m}, ef_construction ${config.index.efConstruction}`);
console.log(`# ${machine()}`);
console.log('\n## HNSW vs exact, no filter\n\n| ef_search | recall@10 | ms / query |\n|---|---|---|');
for (const ef of [16, 40, 64, 100, 200]) {
  const started = performance.now();
  const found = [];
  for (const q of embedded.queries) found.push(await topK(q, FILTERS[0] as Filter, { 'hnsw.ef_search': String(ef), 'hnsw.iterative_scan': 'off' }));
  const ms = (performance.now() - started) / embedded.queries.length;
  const r = found.reduce((sum, ids, i) => sum + recall(ids, truths.get('none')?.[i] ?? []), 0) / found.length;
  console.log(`| ${ef} | ${r.toFixed(3)} | ${ms.toFixed(1)} |`);
}

console.log(`\n## Filtered, index scan alone (ef_search ${config.index.efSearch}, max_scan_tuples 20000)\n\n| filter | iterative scan | k hits | recall@10 vs exact filtered | ms / query |\n|---|---|---|---|---|`);
for (const filter of FILTERS.slice(1)) {
  for (const mode of ['off', 'relaxed_order', 'strict_order']) {
    const started = performance.now();
    let full = 0;
    let sum = 0;
    for (const [i, q] of embedded.queries.entries()) {
      const ids = await topK(q, filter, { 'hnsw.ef_search': String(config.index.efSearch), 'hnsw.iterative_scan': mode, 'hnsw.max_scan_tuples': '20000' });
      if (ids.length === K) full++;
      sum += recall(ids, truths.get(filter.name)?.[i] ?? []);
    }
    const ms = (performance.now() - started) / embedded.queries.length;
    console.log(`| ${filter.name} | ${mode} | ${((100 * full) / embedded.queries.length).toFixed(0)}% | ${(sum / embedded.queries.length).toFixed(3)} | ${ms.toFixed(1)} |`);
  }
}

console.log('\n## PostgresSearch end to end (hybrid, k 10, default config)\n\n| filter | path | p50 ms | p99 ms |\n|---|---|---|---|');
const search = new PostgresSearch({ pool, config });
for (const [name, extra] of [
  ['lexical only, none', { mode: 'lexical' }],
  ['none', {}],
  ['another conversation (~10%)', { sessionIds: [rows.at(-1)?.session] }],
  ['one speaker (~50%)', { roles: ['user'] }],
] as const) {
  const times: number[] = [];
  const paths = new Set<string>();
  for (const [i, q] of embedded.queries.entries()) {
    const started = performance.now();
    const report = await search.search(USER, { text: questions[i] as string, vector: Float32Array.from(q), model: { model: embedder.modelId, dimension: dim } }, SearchOptionsSchema.parse({ k: K, ...extra }));
    times.push(performance.now() - started);
    paths.add(report.vectorPath);
  }
  times.sort((a, b) => a - b);
  const at = (p: number): number => times[Math.min(times.length - 1, Math.floor(p * times.length))] as number;
  console.log(`| ${name} | ${[...paths].join(', ')} | ${at(0.5).toFixed(1)} | ${at(0.99).toFixed(1)} |`);
}

// ---------------------------------------------------------------- quality

/**
 * Evidence recall@10 over every LoCoMo question, each searched within its own conversation: the
 * lexical rankers alone (MiniSearch's BM25+ as the flat files run it, the same BM25+ in SQL as Postgres runs it), and
 * hybrid, fused by the same fuse.ts over each backend's lists (flat: exact vector list + BM25).
 */
const bm25 = new Map<string, { index: LexicalIndex; ids: string[] }>();
for (const row of rows) {
  let entry = bm25.get(row.session);
  if (!entry) bm25.set(row.session, (entry = { index: LexicalIndex.create({ ...DEFAULT_BM25, k: config.search.bm25K, b: config.search.bm25B }), ids: [] }));
  entry.index.add(entry.ids.length, row.text);
  entry.ids.push(row.id);
}
// FlatSearch keeps one index per user (N, lengths and document frequencies over all the user's
// chunks, filters applied to the hits), as Postgres computes them: the like-for-like flat figure.
const userIndex = LexicalIndex.create({ ...DEFAULT_BM25, k: config.search.bm25K, b: config.search.bm25B, stopwords: config.search.stopwords, stemming: config.search.stemming });
rows.forEach((row, i) => userIndex.add(i, row.text));
const vectorsBySession = new Map<string, { id: string; v: Float32Array }[]>();
rows.forEach((row, i) => {
  const list = vectorsBySession.get(row.session) ?? [];
  list.push({ id: row.id, v: Float32Array.from(embedded.rows[i] as number[]) });
  vectorsBySession.set(row.session, list);
});
const settings = { rrfK: config.search.rrfK, vectorWeight: config.search.vectorWeight, lexicalWeight: config.search.lexicalWeight, contextWeight: config.search.contextWeight, unrelatedCosine: config.search.unrelatedCosine };
const sums = { flatLexical: 0, flatUserLexical: 0, pgLexical: 0, flatHybrid: 0, pgHybrid: 0, pgContext: 0 };
const evidence = (ids: string[], refs: string[]): number => refs.filter((ref) => ids.includes(ref)).length / refs.length;
for (const [i, question] of evidenceQuestions.entries()) {
  const q = Float32Array.from(allQueries[i] as number[]);
  // Two lists, as the replay above fuses them; the contextual list (turn-context.ts) is measured on its own row.
  const options = SearchOptionsSchema.parse({ k: K, sessionIds: [question.conversation], contextWeight: 0 });
  const { index, ids } = bm25.get(question.conversation) as { index: LexicalIndex; ids: string[] };
  const lexical = index.search(question.text, config.search.candidates).map((hit) => ({ key: ids[hit.label] as string, score: hit.score }));
  const exact = (vectorsBySession.get(question.conversation) ?? [])
    .map((row) => ({ key: row.id, score: dot(q, row.v) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, config.search.candidates);
  const order = new Map([...new Set([...exact, ...lexical].map((c) => c.key))].sort().map((key, n) => [key, n]));
  const set = new CandidateSet<string, string>((key) => ({ ref: key, order: order.get(key) as number, createdAt: Number.NaN }));
  set.addVector(exact);
  set.addLexical(lexical, index.ideal(question.text));
  sums.flatHybrid += evidence(pick(rank(set.values(), options, settings), options, () => null).map((c) => c.ref), question.refs);
  sums.flatLexical += evidence(lexical.slice(0, K).map((c) => c.key), question.refs);
  const inConversation = (label: number): boolean => rows[label]?.session === question.conversation;
  sums.flatUserLexical += evidence(userIndex.search(question.text, K, inConversation).map((hit) => rows[hit.label]?.id as string), question.refs);
  const model = { model: embedder.modelId, dimension: dim };
  const pgHybrid = await search.search(USER, { text: question.text, vector: q, model }, options);
  sums.pgHybrid += evidence(pgHybrid.hits.map((hit) => hit.chunkId), question.refs);
  const pgContext = await search.search(USER, { text: question.text, vector: q, model }, SearchOptionsSchema.parse({ k: K, sessionIds: [question.conversation] }));
  sums.pgContext += evidence(pgContext.hits.map((hit) => hit.chunkId), question.refs);
  const pgLexical = await search.search(USER, { text: question.text, vector: null, model }, SearchOptionsSchema.parse({ k: K, mode: 'lexical', sessionIds: [question.conversation] }));
  sums.pgLexical += evidence(pgLexical.hits.map((hit) => hit.chunkId), question.refs);
}
const n = evidenceQuestions.length;
console.log(`\n## Quality: LoCoMo evidence recall@10, ${n} questions, each within its conversation\n\n| ranking | flat files | Postgres |\n|---|---|---|`);
console.log(`| lexical, BM25+ (flat: one index per conversation) | ${(sums.flatLexical / n).toFixed(3)} | ${(sums.pgLexical / n).toFixed(3)} |`);
console.log(`| lexical, BM25+ (flat: one index per user, as FlatSearch) | ${(sums.flatUserLexical / n).toFixed(3)} | ${(sums.pgLexical / n).toFixed(3)} |`);
console.log(`| hybrid (same fusion, vector and lexical lists) | ${(sums.flatHybrid / n).toFixed(3)} | ${(sums.pgHybrid / n).toFixed(3)} |`);
console.log(`| hybrid with the contextual list (the default) | | ${(sums.pgContext / n).toFixed(3)} |`);

await database.close();
await server.stop();
await db.close();
