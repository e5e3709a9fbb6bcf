/**
 * Retrieval quality of `memex.search` in its three modes, on three shared evaluation sets, plus
 * query latency:
 *
 * - LoCoMo (../shared/eval/locomo): one user per conversation (so each question searches its own
 *   conversation only), one session per LoCoMo session, one message per turn ("<speaker>: <text>").
 *   Evidence recall@5 and @10 over the 1,535 questions that have evidence (category 5 excluded):
 *   the share of a question's evidence turns among the first k distinct messages returned.
 * - MS MARCO subset (../shared/eval/retrieval/msmarco-subset-agentset): 5,000 passages as messages
 *   of one user over 50 sessions; nDCG@10 (graded qrels as gains) and recall@10 over the queries
 *   that have judgements. Beside them, a plain BM25 over whole passages (Lucene k1 0.9, b 0.4, and
 *   Robertson k1 1.2, b 0.75; its own tokenisation), the baseline a document ranking should beat;
 *   and how many chunks Memex cut the passages into.
 * - Multi-Session Chat (../shared/eval/msc, session-3 test split; `--msc-episodes N`, default 100):
 *   three sessions an episode (the two previous dialogs and the episode's own), ten episodes a user
 *   (`--msc-per-user`), one message per turn ("Speaker 1: <text>"). Each persona fact of a previous dialog is a query, as
 *   written; its evidence is its speaker's turns in that dialog sharing at least two content words
 *   with it (one for facts of fewer than three), after a small stopword list and a crude suffix
 *   strip (bench/lib/msc.ts says exactly, and where that leans lexical). Facts with no such turn
 *   are skipped: 1,437 queries of 1,686 facts for 100 episodes. Evidence recall@5/@10 as LoCoMo's.
 * - LoCoMo's recall by question category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop),
 *   per mode, and how many adversarial (category 5) questions were left out.
 *
 * `--grid` also measures the lexical settings (stopwords, stemming) and the fusion settings
 * (vectorWeight : lexicalWeight, rrfK, candidates). Fusion is replayed from each query's vector and
 * BM25 lists with search.ts's formula (weighted reciprocal rank fusion), so a grid point costs no
 * search; the replay of the configured settings is checked against `memex.search` itself.
 * The grid also replays fusions that read the lists' scores (CombSUM/CombMNZ over min-max or z-score
 * normalised scores, the calibrated relevance of fuse.ts, per-query weights) and the relevance floor;
 * `--fusion-grid` runs only that section (and RRF at the configured depth), `--dump-replays FILE`
 * writes each query's lists with their scores as JSON.
 *
 *   npx tsx bench/quality.ts [--grid] [--json] [--data-dir DIR] [--msc-episodes N] [--search '{"vectorWeight": 0.25, "rrfK": 5}']
 *       [--understand '{"dates": "boost"}'] [--understand-grid [--understand-only 'PREFIX|...']] [--context-grid] [--question-grid]
 *
 * `--understand` asks every measured search for query understanding (src/index/query.ts), read
 * against each user's asking time (a day after their last message); `--understand-grid` measures
 * each of its switches, and its constants' neighbours, against all off: hybrid on the three sets,
 * LoCoMo by category and on the questions that name a date, and LoCoMo's hybrid latency.
 *
 * `--context-grid` measures the contextual list (src/index/turn-context.ts) through memex.search at
 * other weights (`contextWeight`) and coherence thresholds (`contextCoherence`), each around the
 * default with the other at its default, with LoCoMo's hybrid latency timed in turn with the list off.
 *
 * `--question-grid` replays the default hybrid search (fusion with the contextual list, date and
 * speaker boosts) over an exact scan of the stored vectors, with the question embedded without its
 * scaffolding (`understand.questionWords`), alone, averaged or the better cosine; it prints LoCoMo
 * by category, MSC and MS MARCO.
 *
 * Ingesting the sets takes a few minutes on two cores (the MS MARCO passages are long); the grid
 * about five more. `--data-dir` keeps the ingested data (and reuses it when it is already there,
 * adding the users it lacks, e.g. more MSC episodes);
 * `--search` overrides the config's `search` section for the whole run. Progress goes to stderr.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Memex, type NewMessage, type SearchOptions } from '../src/index.js';
import { DEFAULT_BM25, LexicalIndex, type Bm25Params } from '../src/index/lexical.js';
import { COHERENCE_ROWS, contextCosine, contextList, isConversation, messageOfChunk, type ContextRow } from '../src/index/turn-context.js';
import { DEFAULT_UNDERSTANDING, findDates, inRanges, namesIn, questionCore, speakerOf } from '../src/index/query.js';
import { processTerm, tokenize } from '../src/core/index.js';
import { lexicalRelevance, vectorRelevance } from '../src/index/fuse.js';
import { LOCOMO, benchModel, locomoSessions, machine, type LocomoSession } from './locomo.js';
import { MSC, loadMsc } from './lib/msc.js';

const MSMARCO = fileURLToPath(new URL('../../shared/eval/retrieval/msmarco-subset-agentset', import.meta.url));
const MSMARCO_USER = 'msmarco';
const MSMARCO_SESSIONS = 50;
/** Deepest candidate list the grid replays. */
const GRID_DEPTH = 400;

// ---------------------------------------------------------------- arguments and data sets

const args = process.argv.slice(2);
const flag = (name: string): boolean => args.includes(name);
const option = (name: string): string | undefined => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const asJson = flag('--json');
/** `--fusion-grid`: only the grid's score-aware fusion section (no BM25 sweep, no other lexical variants, RRF at the configured depth). */
const fusionOnly = flag('--fusion-grid');
const runGrid = flag('--grid') || fusionOnly;
/** `--dump-replays FILE`: with the grid, writes each query's configured-variant lists (refs, scores, ideal) as JSON, for exploring fusions offline. */
const dumpReplays = option('--dump-replays');
const keptDir = option('--data-dir');
const searchOverrides = JSON.parse(option('--search') ?? '{}') as Record<string, unknown>;
/** Query understanding for every measured search (`--understand '{"dates": "boost"}'`); see src/index/query.ts. */
const understandFlag = JSON.parse(option('--understand') ?? 'null') as Understand | null;
/** Measure query understanding's switches one by one (hybrid, all three sets, LoCoMo by category, latency). */
const runUnderstandGrid = flag('--understand-grid');
/** Measure the contextual list (src/index/turn-context.ts) at other weights and coherence thresholds, through memex.search (issue 20). */
const runContextGrid = flag('--context-grid');
/** Replay the vector side with the question's scaffolding taken out, alone, averaged or the better cosine (issue 20). */
const runQuestionGrid = flag('--question-grid');
/** The vector replays need every chunk's stored vector, its session and time. */
/** `--next-grid`: replays of a contextual list read forwards (each row with the row after it), beside the default's. */
const runNextGrid = flag('--next-grid');
const wantVectors = runQuestionGrid || runNextGrid;
/** MSC episodes to ingest (one user each, ~36 turns): 100 keep the whole bench to a few minutes. */
const mscEpisodes = Number(option('--msc-episodes') ?? 100);
/** MSC episodes a user holds (`--msc-per-user`): 10 give ~370 turns a user, near LoCoMo's ~590. */
const mscPerUser = Number(option('--msc-per-user') ?? 10);
const progress = (message: string): void => void process.stderr.write(`${message}\n`);

for (const [name, path] of [
  ['LoCoMo', LOCOMO],
  ['the MS MARCO subset', MSMARCO],
  ['the Multi-Session Chat set', MSC],
] as const) {
  if (!existsSync(path)) {
    console.error(`${name} not found at ${path}: bench/quality.ts reads the shared evaluation sets in ../shared/eval beside the clone.`);
    process.exit(1);
  }
}
const { model, modelDir } = benchModel();

type DatasetName = 'locomo' | 'msmarco' | 'msc';
const DATASETS: readonly DatasetName[] = ['locomo', 'msmarco', 'msc'];

/** One question: the user whose data it searches, and the gain of each relevant document (by ref). */
interface Query {
  dataset: DatasetName;
  user: string;
  text: string;
  gains: Map<string, number>;
  /** LoCoMo's question category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop). */
  category?: number;
}

/** A message to ingest, with the ref its relevance judgements use. */
interface Doc {
  ref: string;
  message: NewMessage & { content: string };
}

interface Collection {
  user: string;
  title: string;
  docs: Doc[];
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** "1:56 pm on 8 May, 2023" as a time (taken as UTC); undefined when it does not read that way. */
function locomoTime(date: string): number | undefined {
  const match = /^(\d{1,2}):(\d{2})\s*(am|pm) on (\d{1,2}) ([a-z]+),? (\d{4})$/i.exec(date.trim());
  if (!match) return undefined;
  const [, hour, minute, half, day, month, year] = match as unknown as [string, string, string, string, string, string, string];
  const monthIndex = MONTHS.indexOf(month.toLowerCase());
  if (monthIndex < 0) return undefined;
  const hours = (Number(hour) % 12) + (half.toLowerCase() === 'pm' ? 12 : 0);
  return Date.UTC(Number(year), monthIndex, Number(day), hours, Number(minute));
}

function loadLocomo(): { collections: Collection[]; queries: Query[]; adversarial: number } {
  const sessions: LocomoSession[] = locomoSessions();
  const collections = sessions.map((session): Collection => {
    const start = locomoTime(session.date);
    return {
      user: session.conversation,
      title: `${session.conversation} session ${session.index}`,
      docs: session.turns.map((turn, i) => ({
        ref: `${session.conversation}/${turn.diaId}`,
        message: {
          role: 'user',
          content: `${turn.speaker}: ${turn.text}`,
          // A second apart, so the turns keep their order in time.
          ...(start === undefined ? {} : { createdAt: new Date(start + i * 1000).toISOString() }),
        },
      })),
    };
  });
  const known = new Set(collections.flatMap((c) => c.docs.map((d) => d.ref)));
  const samples = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { sample_id: string; qa: { question: string; evidence?: string[]; category: number }[] }[];
  const queries: Query[] = [];
  let adversarial = 0;
  for (const sample of samples) {
    for (const qa of sample.qa) {
      if (qa.category === 5) {
        adversarial++;
        continue;
      }
      // A few evidence entries hold several ids ("D8:6; D9:17"); some name no turn at all.
      const refs = (qa.evidence ?? []).flatMap((e) => e.split(/[;\s]+/)).map((id) => `${sample.sample_id}/${id}`).filter((ref) => known.has(ref));
      if (refs.length > 0) queries.push({ dataset: 'locomo', user: sample.sample_id, text: qa.question, gains: new Map(refs.map((ref) => [ref, 1])), category: qa.category });
    }
  }
  return { collections, queries, adversarial };
}

function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as T);
}

function loadMsmarco(): { collections: Collection[]; queries: Query[] } {
  const corpus = readJsonl<{ _id: string; title: string; text: string }>(join(MSMARCO, 'corpus.jsonl'));
  const perSession = Math.ceil(corpus.length / MSMARCO_SESSIONS);
  const collections: Collection[] = [];
  for (let s = 0; s * perSession < corpus.length; s++) {
    const docs = corpus.slice(s * perSession, (s + 1) * perSession).map((p) => ({
      ref: p._id,
      message: { role: 'user' as const, content: p.title.trim() ? `${p.title}\n${p.text}` : p.text },
    }));
    collections.push({ user: MSMARCO_USER, title: `passages ${s + 1}`, docs });
  }
  const judged = new Map<string, Map<string, number>>();
  for (const line of readFileSync(join(MSMARCO, 'qrels', 'test.tsv'), 'utf8').split('\n')) {
    const [queryId, docId, gain] = line.trim().split(/\t/);
    // Skips a header line ("query-id corpus-id score") and blank lines.
    if (queryId === undefined || docId === undefined || gain === undefined || !/^\d+$/.test(gain)) continue;
    const gains = judged.get(queryId) ?? new Map<string, number>();
    gains.set(docId, Number(gain));
    judged.set(queryId, gains);
  }
  const queries = readJsonl<{ _id: string; text: string }>(join(MSMARCO, 'queries.jsonl')).flatMap((q): Query[] => {
    const gains = judged.get(q._id);
    return gains && [...gains.values()].some((g) => g > 0) ? [{ dataset: 'msmarco', user: MSMARCO_USER, text: q.text, gains }] : [];
  });
  return { collections, queries };
}

function loadMscSet(): { collections: Collection[]; queries: Query[] } {
  const msc = loadMsc(mscEpisodes, mscPerUser);
  if (!msc) throw new Error(`${MSC} not found`);
  return {
    collections: msc.sessions.map((session) => ({
      user: session.user,
      title: session.title,
      docs: session.turns.map((turn, i) => ({
        ref: turn.ref,
        // A second apart, so the turns keep their order in time; sessions a day apart.
        message: { role: 'user' as const, content: turn.content, createdAt: new Date(Date.UTC(2024, 0, 1 + session.day) + i * 1000).toISOString() },
      })),
    })),
    queries: msc.questions.map((q) => ({ dataset: 'msc' as const, user: q.user, text: q.text, gains: new Map(q.evidence.map((ref) => [ref, 1])) })),
  };
}

// ---------------------------------------------------------------- metrics

interface Metrics {
  recall5: number;
  recall10: number;
  ndcg10: number;
}

/** The metrics of one ranking: `refs` are distinct documents, best first. */
function metricsOf(query: Query, refs: readonly string[]): Metrics {
  const relevant = [...query.gains.values()].filter((g) => g > 0).length;
  const found = (k: number): number => refs.slice(0, k).filter((ref) => (query.gains.get(ref) ?? 0) > 0).length;
  const dcg = (gains: readonly number[]): number => gains.slice(0, 10).reduce((sum, gain, i) => sum + gain / Math.log2(i + 2), 0);
  const ideal = dcg([...query.gains.values()].sort((a, b) => b - a));
  return {
    recall5: found(5) / relevant,
    recall10: found(10) / relevant,
    ndcg10: ideal > 0 ? dcg(refs.map((ref) => query.gains.get(ref) ?? 0)) / ideal : 0,
  };
}

function mean(all: readonly Metrics[]): Metrics {
  const sum = (pick: (m: Metrics) => number): number => all.reduce((s, m) => s + pick(m), 0) / Math.max(1, all.length);
  return { recall5: sum((m) => m.recall5), recall10: sum((m) => m.recall10), ndcg10: sum((m) => m.ndcg10) };
}

/** What the README quotes: recall@5/@10 on LoCoMo, nDCG@10/recall@10 on MS MARCO. */
type Quality = Record<DatasetName, Metrics>;
const HEADLINE = [
  ['locomo', 'recall5', 'LoCoMo R@5'],
  ['locomo', 'recall10', 'LoCoMo R@10'],
  ['msmarco', 'ndcg10', 'MS MARCO nDCG@10'],
  ['msmarco', 'recall10', 'MS MARCO R@10'],
  ['msc', 'recall5', 'MSC R@5'],
  ['msc', 'recall10', 'MSC R@10'],
] as const;
const headline = (q: Quality): number[] => HEADLINE.map(([set, metric]) => q[set][metric]);

// ---------------------------------------------------------------- ingest

const ownDir = keptDir === undefined;
const dataDir = keptDir ?? (await mkdtemp(join(tmpdir(), 'memex-quality-')));
const locomo = loadLocomo();
const msmarco = loadMsmarco();
const msc = loadMscSet();
const collections = [...locomo.collections, ...msmarco.collections, ...msc.collections];
const queries: Record<DatasetName, Query[]> = { locomo: locomo.queries, msmarco: msmarco.queries, msc: msc.queries };

const memex = await Memex.open({ dataDir, config: { embedding: { model, modelDir }, search: searchOverrides } });
const embedder = await memex.embedder();
const search = memex.config.search;

const present = new Set((await memex.users.list()).map((u) => u.id as string));
let ingestMs: number | null = null;
// A user is ingested whole or not at all (a kept dir from a run with fewer sets or MSC episodes
// gets the missing users); a run stopped mid-user leaves a partial one: delete the dir then.
const missing = collections.filter((c) => !present.has(c.user));
if (missing.length > 0) {
  progress(`ingesting ${missing.reduce((n, c) => n + c.docs.length, 0)} messages into ${dataDir} ...`);
  const start = performance.now();
  for (const collection of missing) {
    await memex.users.ensure(collection.user);
    const session = await memex.sessions.create(collection.user, { title: collection.title });
    await memex.messages.appendMany(
      collection.user,
      session.id,
      collection.docs.map((d) => ({ ...d.message, metadata: { ref: d.ref } })),
    );
  }
  await memex.flush();
  ingestMs = performance.now() - start;
}

/** Every chunk of a user, in session order, with the ref of the message it came from. */
interface UserChunks {
  chunkIds: string[];
  texts: string[];
  /** With `wantVectors`: each chunk's session (its place in the list), and its stored vector. */
  sessions: number[];
  vectors: Float32Array[];
}
const chunkRef = new Map<string, string>();
/** A chunk's position among its user's chunks: the label the user index gives it. */
const chunkLabel = new Map<string, number>();
const chunksOf = new Map<string, UserChunks>();
/** With `wantVectors`: when each chunk's message was written (ms), and its text. */
const chunkTime = new Map<string, number>();
const chunkText = new Map<string, string>();
for (const user of new Set(collections.map((c) => c.user))) {
  const chunks: UserChunks = { chunkIds: [], texts: [], sessions: [], vectors: [] };
  const { sessions } = await memex.sessions.list(user, { limit: 1000 });
  // In the order the user index numbers them (the session list's), so that BM25 ties fall the same way.
  for (const [sessionIndex, session] of sessions.entries()) {
    const messageRef = new Map<string, string>();
    const messageTime = new Map<string, number>();
    for await (const message of memex.messages.stream(user, session.id)) {
      messageRef.set(message.id, String(message.metadata?.ref));
      messageTime.set(message.id, Date.parse(message.createdAt));
    }
    const stored = await memex.vectors.read(user, session.id);
    for (const [row, line] of stored.lines.entries()) {
      if (line.source.kind !== 'message') continue;
      chunkRef.set(line.chunkId, messageRef.get(line.source.messageId) ?? '?');
      chunkLabel.set(line.chunkId, chunks.chunkIds.length);
      chunks.chunkIds.push(line.chunkId);
      chunks.texts.push(line.text);
      if (!wantVectors) continue;
      chunks.sessions.push(sessionIndex);
      chunks.vectors.push(stored.vectors.subarray(row * embedder.dimension, (row + 1) * embedder.dimension));
      chunkTime.set(line.chunkId, messageTime.get(line.source.messageId) ?? NaN);
      chunkText.set(line.chunkId, line.text);
    }
  }
  chunksOf.set(user, chunks);
}
// A kept data dir's indexes are built again: BM25 settings that the saved index does not record
// (stemming) may have changed since. A fresh ingest builds them here for the first time.
for (const user of chunksOf.keys()) await (ingestMs === null ? memex.index.rebuild(user) : memex.index.prepare(user));

/** Chunk ids to distinct document refs, best first. */
function refsOf(chunkIds: readonly string[]): string[] {
  return [...new Set(chunkIds.map((id) => chunkRef.get(id) ?? '?'))];
}

async function searchRefs(query: Query, options: SearchOptions): Promise<string[]> {
  // Twenty chunks, so that ten distinct messages remain when a long one was split.
  const { hits } = await memex.search(query.user, query.text, { k: 20, ...understandingFor(query, understandFlag), ...options });
  return refsOf(hits.map((hit) => hit.chunkId));
}

type Understand = NonNullable<SearchOptions['understand']>;

/**
 * When each user's conversation ended, plus a day: the asking time a question about it is read
 * against ("last May", "yesterday"), as an app passes the time a question is asked.
 */
const askedAt = new Map<string, string>();
for (const collection of collections) {
  for (const doc of collection.docs) {
    const at = doc.message.createdAt === undefined ? NaN : Date.parse(doc.message.createdAt);
    const known = askedAt.has(collection.user) ? Date.parse(askedAt.get(collection.user) as string) - 86_400_000 : -Infinity;
    if (at > known) askedAt.set(collection.user, new Date(at + 86_400_000).toISOString());
  }
}

/** The search options that ask for `understand` on a query's user (with its asking time); none for null. */
function understandingFor(query: Pick<Query, 'user'>, understand: Understand | null): Pick<SearchOptions, 'understand'> {
  if (!understand) return {};
  const now = askedAt.get(query.user);
  return { understand: { ...(now === undefined ? {} : { now }), ...understand } };
}

type Categories = Map<number, Metrics & { questions: number }>;

/** Each set's mean metrics in one mode, and LoCoMo's by question category. */
async function measure(options: SearchOptions): Promise<{ quality: Quality; categories: Categories }> {
  const per = new Map<Query, Metrics>();
  for (const set of DATASETS) for (const query of queries[set]) per.set(query, metricsOf(query, await searchRefs(query, options)));
  const quality = Object.fromEntries(DATASETS.map((set) => [set, mean(queries[set].map((q) => per.get(q) as Metrics))])) as Quality;
  const categories: Categories = new Map();
  for (const category of [...new Set(queries.locomo.map((q) => q.category ?? 0))].sort((a, b) => a - b)) {
    const all = queries.locomo.filter((q) => q.category === category).map((q) => per.get(q) as Metrics);
    categories.set(category, { ...mean(all), questions: all.length });
  }
  return { quality, categories };
}

// ---------------------------------------------------------------- quality by mode

progress('searching in each mode ...');
const measured = {
  vector: await measure({ mode: 'vector' }),
  lexical: await measure({ mode: 'lexical' }),
  hybrid: await measure({ mode: 'hybrid' }),
};
const modes: Record<keyof typeof measured, Quality> = { vector: measured.vector.quality, lexical: measured.lexical.quality, hybrid: measured.hybrid.quality };

/**
 * Where LoCoMo's evidence ranks in the default hybrid search, 100 deep (each evidence turn once per
 * question, by the rank of its message among the distinct messages hit): what a re-ranking of the
 * top 100 could still reach, and what no re-ranking can (not in the top 100).
 */
const DEPTH_BUCKETS = [
  [0, 5, 'top 5'],
  [5, 10, '6-10'],
  [10, 20, '11-20'],
  [20, 50, '21-50'],
  [50, 100, '51-100'],
] as const;
async function evidenceDepth(): Promise<Map<number, { turns: number; buckets: number[]; missing: number }>> {
  const out = new Map<number, { turns: number; buckets: number[]; missing: number }>();
  for (const query of queries.locomo) {
    const { hits } = await memex.search(query.user, query.text, { k: 100, ...understandingFor(query, understandFlag) });
    const ranked = refsOf(hits.map((hit) => hit.chunkId));
    const entry = out.get(query.category ?? 0) ?? { turns: 0, buckets: DEPTH_BUCKETS.map(() => 0), missing: 0 };
    for (const ref of query.gains.keys()) {
      entry.turns++;
      const rank = ranked.indexOf(ref);
      const bucket = DEPTH_BUCKETS.findIndex(([from, to]) => rank >= from && rank < to);
      if (rank < 0 || bucket < 0) entry.missing++;
      else entry.buckets[bucket] = (entry.buckets[bucket] as number) + 1;
    }
    out.set(query.category ?? 0, entry);
  }
  return out;
}
progress('evidence depth ...');
const depth = await evidenceDepth();

// ---------------------------------------------------------------- whole-document BM25 baseline (MS MARCO)

/**
 * Plain Lucene-style BM25 (k1 0.9, b 0.4: Anserini's MS MARCO passage defaults; idf
 * log(1 + (N - n + 0.5) / (n + 0.5))) over whole passages (title and text, as ingested), with its
 * own tokenisation (lower-cased [a-z0-9]+ runs, no stopwords, no stemming): independent of Memex's
 * lexical index and of its chunking, the baseline a document collection's ranking should beat.
 */
function wholeDocumentBm25(docs: readonly Doc[], list: readonly Query[], k1 = 0.9, b = 0.4): Metrics {
  const tokens = (text: string): string[] => text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
  const tfs = docs.map((doc) => {
    const tf = new Map<string, number>();
    const terms = tokens(doc.message.content);
    for (const term of terms) tf.set(term, (tf.get(term) ?? 0) + 1);
    return { ref: doc.ref, tf, length: terms.length };
  });
  const df = new Map<string, number>();
  for (const { tf } of tfs) for (const term of tf.keys()) df.set(term, (df.get(term) ?? 0) + 1);
  const avgLength = tfs.reduce((n, d) => n + d.length, 0) / tfs.length;
  const idf = (term: string): number => Math.log(1 + (tfs.length - (df.get(term) ?? 0) + 0.5) / ((df.get(term) ?? 0) + 0.5));
  return mean(
    list.map((query) => {
      const terms = tokens(query.text);
      const scored = tfs.map((d) => ({
        ref: d.ref,
        score: terms.reduce((sum, term) => {
          const tf = d.tf.get(term) ?? 0;
          return sum + (tf === 0 ? 0 : (idf(term) * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * d.length) / avgLength)));
        }, 0),
      }));
      const ranked = scored.filter((d) => d.score > 0).sort((x, y) => y.score - x.score);
      return metricsOf(query, ranked.slice(0, 10).map((d) => d.ref));
    }),
  );
}
const msmarcoDocs = msmarco.collections.flatMap((c) => c.docs);
/** Memex's own BM25+ (configured settings) over whole passages: what chunking alone changes. */
function memexBm25Whole(): Metrics {
  const index = LexicalIndex.create({ ...DEFAULT_BM25, k: search.bm25K, b: search.bm25B, stopwords: search.stopwords });
  msmarcoDocs.forEach((doc, label) => index.add(label, doc.message.content));
  return mean(queries.msmarco.map((query) => metricsOf(query, index.search(query.text, 10).map((hit) => msmarcoDocs[hit.label]?.ref ?? '?'))));
}
const baseline = {
  lucene: wholeDocumentBm25(msmarcoDocs, queries.msmarco),
  robertson: wholeDocumentBm25(msmarcoDocs, queries.msmarco, 1.2, 0.75),
  memexWhole: memexBm25Whole(),
};
/** How Memex's chunking cut the MS MARCO passages: chunks, and passages in more than one. */
const msmarcoChunks = (() => {
  const ids = chunksOf.get(MSMARCO_USER)?.chunkIds ?? [];
  const perRef = new Map<string, number>();
  for (const id of ids) perRef.set(chunkRef.get(id) ?? '?', (perRef.get(chunkRef.get(id) ?? '?') ?? 0) + 1);
  return { chunks: ids.length, split: [...perRef.values()].filter((n) => n > 1).length };
})();

// ---------------------------------------------------------------- latency

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Latency {
  calls: number;
  p50: number;
  p99: number;
}

/**
 * Every timed call asks a text never asked before in this process (the query and a call number), so
 * neither the embedder's memo of recent texts nor recall's cache of query vectors answers it: the
 * times include embedding the query, as a new question's do.
 */
let calls = 0;
const fresh = (q: Query): string => `${q.text} (${++calls})`;
const TIMED = {
  hybrid: (q: Query) => memex.search(q.user, fresh(q), { k: 10, ...understandingFor(q, understandFlag) }),
  lexical: (q: Query) => memex.search(q.user, fresh(q), { k: 10, mode: 'lexical', ...understandingFor(q, understandFlag) }),
  embed: (q: Query) => embedder.embed([fresh(q)]),
} as const;

/** Each query through each call in turn, so that a busy moment of the machine costs them alike. */
async function time(list: readonly Query[], rounds: number): Promise<Record<keyof typeof TIMED, Latency>> {
  const names = Object.keys(TIMED) as (keyof typeof TIMED)[];
  for (const query of list.slice(0, 50)) for (const name of names) await TIMED[name](query); // warm-up
  const ms = { hybrid: [] as number[], lexical: [] as number[], embed: [] as number[] };
  for (let round = 0; round < rounds; round++) {
    for (const query of list) {
      for (const name of names) {
        const start = performance.now();
        await TIMED[name](query);
        ms[name].push(performance.now() - start);
      }
    }
  }
  const summary = (values: number[]): Latency => ({ calls: values.length, p50: percentile(values, 50), p99: percentile(values, 99) });
  return { hybrid: summary(ms.hybrid), lexical: summary(ms.lexical), embed: summary(ms.embed) };
}

progress('timing searches ...');
const latency = { locomo: await time(queries.locomo, 1), msmarco: await time(queries.msmarco, 10) };

// ---------------------------------------------------------------- grid (replayed fusion)

interface Fusion {
  vectorWeight: number;
  lexicalWeight: number;
  rrfK: number;
  candidates: number;
}
const configured: Fusion = { vectorWeight: search.vectorWeight, lexicalWeight: search.lexicalWeight, rrfK: search.rrfK, candidates: search.candidates };

/** search.ts's hybrid score: each list adds `weight / (rrfK + rank)` for the chunks it holds. Best first, ties by label. */
function fuse(vector: readonly string[], lexical: readonly string[], f: Fusion): { id: string; score: number }[] {
  const scores = new Map<string, number>();
  const add = (list: readonly string[], weight: number): void =>
    list.slice(0, f.candidates).forEach((id, i) => scores.set(id, (scores.get(id) ?? 0) + weight / (f.rrfK + i + 1)));
  add(vector, f.vectorWeight);
  add(lexical, f.lexicalWeight);
  const label = (id: string): number => chunkLabel.get(id) ?? 0;
  return [...scores].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score || label(a.id) - label(b.id));
}
const fusedIds = (r: Replay, f: Fusion): string[] => fuse(r.vector, r.lexical, f).map((hit) => hit.id);

interface Replay {
  query: Query;
  vector: string[];
  lexical: string[];
  /** The lists' scores, position by position (cosine; BM25+), and the query's ideal BM25+ score (lexical.ts `idealScore`). */
  vectorScores: number[];
  lexicalScores: number[];
  ideal: number;
}

type LexicalVariant = Pick<Bm25Params, 'stopwords' | 'stemming'>;
const VARIANTS: LexicalVariant[] = [
  { stopwords: false, stemming: false },
  { stopwords: true, stemming: false },
  { stopwords: false, stemming: true },
  { stopwords: true, stemming: true },
];
const variantName = (v: LexicalVariant): string => `stopwords ${v.stopwords ? 'on' : 'off'}, stemming ${v.stemming ? 'on' : 'off'}`;

/** The BM25 settings the data dir's index uses. */
const configuredBm25: Bm25Params = { ...DEFAULT_BM25, k: search.bm25K, b: search.bm25B, stopwords: search.stopwords };

/** Each query's vector list (from memex.search) and BM25 list (from a LexicalIndex with `bm25`, built like the user's). */
function replays(bm25: Bm25Params, vectorLists: Map<Query, string[]>, vectorScores = new Map<Query, number[]>()): Record<DatasetName, Replay[]> {
  const indexes = new Map<string, LexicalIndex>();
  for (const [user, chunks] of chunksOf) {
    const index = LexicalIndex.create(bm25);
    chunks.texts.forEach((text, label) => index.add(label, text));
    indexes.set(user, index);
  }
  const replay = (query: Query): Replay => {
    const chunks = chunksOf.get(query.user) as UserChunks;
    const index = indexes.get(query.user) as LexicalIndex;
    const hits = index.search(query.text, GRID_DEPTH);
    const lexical = hits.map((hit) => chunks.chunkIds[hit.label] as string);
    return { query, vector: vectorLists.get(query) ?? [], lexical, vectorScores: vectorScores.get(query) ?? [], lexicalScores: hits.map((hit) => hit.score), ideal: index.ideal(query.text) };
  };
  return { locomo: queries.locomo.map(replay), msmarco: queries.msmarco.map(replay), msc: queries.msc.map(replay) };
}

function replayQuality(sets: Record<DatasetName, Replay[]>, rank: (r: Replay) => string[]): Quality {
  const run = (list: Replay[]): Metrics => mean(list.map((r) => metricsOf(r.query, refsOf(rank(r)))));
  return { locomo: run(sets.locomo), msmarco: run(sets.msmarco), msc: run(sets.msc) };
}

interface GridPoint {
  fusion: Fusion;
  quality: Quality;
  /** The smallest of hybrid minus the better single mode, over the four headline metrics. */
  margin: number;
}

interface GridResult {
  bm25: { k: number; b: number; d: number; lexical: Quality }[];
  variants: { variant: LexicalVariant; lexical: Quality; hybrid: Quality; best: GridPoint }[];
  vector: Quality;
  points: GridPoint[];
  /** How often the replay of the configured fusion scored the top 10 as memex.search did. */
  replayAgreement: number;
  /** Fusions that read the lists' scores, not only their ranks (configured lexical settings and depth). */
  scoreFusions: { name: string; quality: Quality }[];
}

/**
 * Score-aware fusions, replayed like the grid's RRF (each list cut to `depth`; best first, ties by
 * label). `lexRel` is fuse.ts's calibrated lexical relevance (the root of BM25+ over the query's ideal
 * score), `vecRel` the cosine's place above what unrelated text scores (search.unrelatedCosine).
 */
type ScoreFusion = (r: Replay, depth: number) => string[];
function fuseScores(r: Replay, depth: number, score: (lex: number | null, vec: number | null, lexRank: number | null, vecRank: number | null) => number): string[] {
  const seen = new Map<string, { lex: number | null; vec: number | null; lexRank: number | null; vecRank: number | null }>();
  const entry = (id: string): { lex: number | null; vec: number | null; lexRank: number | null; vecRank: number | null } => {
    let e = seen.get(id);
    if (!e) seen.set(id, (e = { lex: null, vec: null, lexRank: null, vecRank: null }));
    return e;
  };
  r.vector.slice(0, depth).forEach((id, i) => Object.assign(entry(id), { vec: r.vectorScores[i] ?? 0, vecRank: i + 1 }));
  r.lexical.slice(0, depth).forEach((id, i) => Object.assign(entry(id), { lex: r.lexicalScores[i] ?? 0, lexRank: i + 1 }));
  const label = (id: string): number => chunkLabel.get(id) ?? 0;
  return [...seen]
    .map(([id, e]) => ({ id, score: score(e.lex, e.vec, e.lexRank, e.vecRank) }))
    .filter((h) => h.score > -Infinity)
    .sort((a, b) => b.score - a.score || label(a.id) - label(b.id))
    .map((h) => h.id);
}
const stats = (values: readonly number[]): { min: number; max: number; mean: number; sd: number } => {
  const min = Math.min(...values);
  const max = Math.max(...values);
  const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, values.length)) || 1;
  return { min, max, mean, sd };
};
const minMax = (v: number, s: { min: number; max: number }): number => (s.max > s.min ? (v - s.min) / (s.max - s.min) : 1);
const rrfOf = (rank: number | null, weight: number): number => (rank ? weight / (configured.rrfK + rank) : 0);
const vecRelOf = (cos: number | null): number => (cos === null ? 0 : vectorRelevance(cos, search.unrelatedCosine));
const SCORE_FUSIONS: { name: string; fuse: ScoreFusion }[] = [
  { name: `RRF (configured: ${configured.vectorWeight}:${configured.lexicalWeight}, rrfK ${configured.rrfK})`, fuse: (r, d) => fuseScores(r, d, (_l, _v, lr, vr) => rrfOf(lr, configured.lexicalWeight) + rrfOf(vr, configured.vectorWeight)) },
  ...[0.25, 0.5, 1].map((w) => ({
    name: `calibrated CombSUM: lexRel + ${w} vecRel`,
    fuse: (r: Replay, d: number) => fuseScores(r, d, (l, v) => lexicalRelevance(l ?? 0, r.ideal) + w * vecRelOf(v)),
  })),
  ...[0.1, 0.15, 0.25, 0.5, 1].flatMap((w) => [
    {
      name: `min-max CombSUM: lex + ${w} vec`,
      fuse: (r: Replay, d: number) => {
        const ls = stats(r.lexicalScores.slice(0, d));
        const vs = stats(r.vectorScores.slice(0, d));
        return fuseScores(r, d, (l, v) => (l === null ? 0 : minMax(l, ls)) + w * (v === null ? 0 : minMax(v, vs)));
      },
    },
    {
      name: `min-max CombMNZ: (lex + ${w} vec) x lists`,
      fuse: (r: Replay, d: number) => {
        const ls = stats(r.lexicalScores.slice(0, d));
        const vs = stats(r.vectorScores.slice(0, d));
        return fuseScores(r, d, (l, v) => ((l === null ? 0 : minMax(l, ls)) + w * (v === null ? 0 : minMax(v, vs))) * (Number(l !== null) + Number(v !== null)));
      },
    },
    {
      name: `z-score CombSUM: lex + ${w} vec`,
      fuse: (r: Replay, d: number) => {
        const ls = stats(r.lexicalScores.slice(0, d));
        const vs = stats(r.vectorScores.slice(0, d));
        return fuseScores(r, d, (l, v) => (l === null ? (ls.min - ls.mean) / ls.sd : (l - ls.mean) / ls.sd) + w * (v === null ? (vs.min - vs.mean) / vs.sd : (v - vs.mean) / vs.sd));
      },
    },
  ]),
  // CombMNZ on scores shifted to the list's least and divided by its spread: the best near miss.
  ...[0.1, 0.15, 0.25].map((w) => ({
    name: `z-score CombMNZ: ((lex - min) / sd + ${w} (vec - min) / sd) x lists`,
    fuse: (r: Replay, d: number) => {
      const ls = stats(r.lexicalScores.slice(0, d));
      const vs = stats(r.vectorScores.slice(0, d));
      return fuseScores(r, d, (l, v) => ((l === null ? 0 : (l - ls.min) / ls.sd) + w * (v === null ? 0 : (v - vs.min) / vs.sd)) * (Number(l !== null) + Number(v !== null)));
    },
  })),
  ...[0.05, 0.1, 0.2].map((lambda) => ({
    name: `RRF + ${lambda} lexRel (rank and score)`,
    fuse: (r: Replay, d: number) => fuseScores(r, d, (l, _v, lr, vr) => rrfOf(lr, configured.lexicalWeight) + rrfOf(vr, configured.vectorWeight) + lambda * lexicalRelevance(l ?? 0, r.ideal)),
  })),
  // The relevance floor (fuse.ts `dropIrrelevant`) over the configured RRF: what it costs a search.
  ...[0.1, 0.2, 0.3].map((floor) => ({
    name: `RRF (configured), minRelevance ${floor}`,
    fuse: (r: Replay, d: number) => {
      const onlyMatch = Math.min(d, r.lexical.length) === 1;
      return fuseScores(r, d, (l, v, lr, vr) =>
        Math.max(lexicalRelevance(l ?? 0, r.ideal), vecRelOf(v)) >= floor || (onlyMatch && l !== null) ? rrfOf(lr, configured.lexicalWeight) + rrfOf(vr, configured.vectorWeight) : -Infinity,
      );
    },
  })),
  {
    name: 'RRF, vectorWeight x 2 (1 - top lexRel) per query',
    fuse: (r: Replay, d: number) => {
      const w = configured.vectorWeight * 2 * (1 - lexicalRelevance(r.lexicalScores[0] ?? 0, r.ideal));
      return fuseScores(r, d, (_l, _v, lr, vr) => rrfOf(lr, configured.lexicalWeight) + rrfOf(vr, w));
    },
  },
  {
    name: 'RRF, vectorWeight x 2 (1 - lexical gap) per query',
    fuse: (r: Replay, d: number) => {
      const [s1 = 0, s2 = 0] = r.lexicalScores;
      const w = configured.vectorWeight * 2 * (1 - (s1 > 0 ? (s1 - s2) / s1 : 0));
      return fuseScores(r, d, (_l, _v, lr, vr) => rrfOf(lr, configured.lexicalWeight) + rrfOf(vr, w));
    },
  },
];

async function grid(): Promise<GridResult> {
  progress('grid: vector lists ...');
  const vectorLists = new Map<Query, string[]>();
  const vectorScores = new Map<Query, number[]>();
  for (const query of DATASETS.flatMap((set) => queries[set])) {
    const { hits } = await memex.search(query.user, query.text, { k: GRID_DEPTH, mode: 'vector' });
    vectorLists.set(query, hits.map((hit) => hit.chunkId));
    vectorScores.set(query, hits.map((hit) => hit.scores.vector ?? 0));
  }
  const ratios = [0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1, 1.5];
  const rrfKs = [1, 2, 3, 5, 7, 10, 15, 20, 30, 60];
  const depths = [20, 50, 100, 200, 400];
  const at = (candidates: number): Fusion[] => rrfKs.flatMap((rrfK) => ratios.map((ratio) => ({ vectorWeight: ratio, lexicalWeight: 1, rrfK, candidates })));
  const current: LexicalVariant = { stopwords: configuredBm25.stopwords, stemming: configuredBm25.stemming };

  // BM25's k1 and b, then BM25+'s d, lexical alone.
  const bm25: GridResult['bm25'] = [];
  const sweep = [
    ...[0.9, 1.2, 1.5, 2].flatMap((k) => [0.3, 0.5, 0.7, 0.9].map((b) => ({ k, b, d: configuredBm25.d }))),
    ...[0, 0.25, 1].map((d) => ({ k: configuredBm25.k, b: configuredBm25.b, d })),
  ];
  for (const params of fusionOnly ? [] : sweep) {
    progress(`grid: BM25 k1 ${params.k}, b ${params.b}, d ${params.d} ...`);
    bm25.push({ ...params, lexical: replayQuality(replays({ ...configuredBm25, ...params }, vectorLists), (r) => r.lexical.slice(0, 20)) });
  }

  let vector: Quality | null = null;
  const variants: GridResult['variants'] = [];
  let points: GridPoint[] = [];
  let replayAgreement = 0;
  let scoreFusions: GridResult['scoreFusions'] = [];
  for (const variant of fusionOnly ? [current] : VARIANTS) {
    progress(`grid: ${variantName(variant)} ...`);
    const sets = replays({ ...configuredBm25, ...variant }, vectorLists, vectorScores);
    vector ??= replayQuality(sets, (r) => r.vector.slice(0, 20));
    const lexical = replayQuality(sets, (r) => r.lexical.slice(0, 20));
    const better = headline(vector).map((v, i) => Math.max(v, headline(lexical)[i] as number));
    const score = (fusion: Fusion): GridPoint => {
      const quality = replayQuality(sets, (r) => fusedIds(r, fusion));
      return { fusion, quality, margin: Math.min(...headline(quality).map((h, i) => h - (better[i] as number))) };
    };
    // Every variant over weights and rrfK at the configured depth; the configured variant over every depth.
    const isCurrent = variant.stopwords === current.stopwords && variant.stemming === current.stemming;
    const scored = (isCurrent && !fusionOnly ? depths.flatMap(at) : at(configured.candidates)).map(score);
    const best = scored.reduce((a, b) => (b.margin > a.margin ? b : a));
    variants.push({ variant, lexical, hybrid: replayQuality(sets, (r) => fusedIds(r, configured)), best });
    if (!isCurrent) continue;
    points = scored;
    progress('grid: score-aware fusions ...');
    scoreFusions = SCORE_FUSIONS.map(({ name, fuse: fusion }) => ({ name, quality: replayQuality(sets, (r) => fusion(r, configured.candidates)) }));
    if (dumpReplays) {
      const cut = (ids: string[], scores: number[]): [string, number, number][] => ids.slice(0, configured.candidates).map((id, i) => [chunkRef.get(id) ?? '?', scores[i] ?? 0, chunkLabel.get(id) ?? 0]);
      const dump = DATASETS.flatMap((set) =>
        sets[set].map((r) => ({ set, category: r.query.category ?? null, gains: [...r.query.gains], ideal: r.ideal, vector: cut(r.vector, r.vectorScores), lexical: cut(r.lexical, r.lexicalScores) })),
      );
      writeFileSync(dumpReplays, JSON.stringify(dump));
    }
    if (fusionOnly) break;
    // The replay of the configured fusion against memex.search, query by query: the same scores at
    // each of the first ten ranks (chunks with equal scores may come in another order).
    let same = 0;
    const all = DATASETS.flatMap((set) => sets[set]);
    for (const r of all) {
      const replayed = fuse(r.vector, r.lexical, configured).slice(0, 10);
      // The replay's vector lists came from a graph walk with efSearch = GRID_DEPTH: so does this one.
      const { hits } = await memex.search(r.query.user, r.query.text, { k: 10, mode: 'hybrid', efSearch: GRID_DEPTH });
      if (hits.length === replayed.length && hits.every((hit, i) => Math.abs(hit.score - (replayed[i]?.score ?? NaN)) < 1e-9)) same++;
    }
    replayAgreement = same / all.length;
  }
  return { variants, vector: vector as Quality, points, replayAgreement, bm25, scoreFusions };
}

const gridResult = runGrid ? await grid() : null;

// ---------------------------------------------------------------- query understanding (src/index/query.ts)

interface UnderstandPoint {
  name: string;
  understand: Understand;
  quality: Quality;
  categories: Categories;
  /** LoCoMo's questions that name a date (findDates finds one). */
  dated: Metrics & { questions: number };
  /** Hybrid p50 / p99 over the LoCoMo questions, ms, query embedding included. */
  p50: number;
  p99: number;
  /** All off, timed in turn with this point's calls. */
  offP50: number;
}

/** Every switch of query understanding off: the ranking of fuse.ts alone. */
const ALL_OFF: Understand = { dates: 'off', feedback: false, names: 'keep', speakers: 'off' };

/** Each switch of query understanding on its own, and its constants' neighbours, against all off; then the defaults. */
const UNDERSTAND_GRID: { name: string; understand: Understand }[] = [
  { name: 'all off', understand: ALL_OFF },
  { name: 'defaults (dates boost + speakers boost)', understand: {} },
  { name: 'dates boost (weight 0.5, slack 7 d, date words kept)', understand: { ...ALL_OFF, dates: 'boost', stripDates: false } },
  { name: 'dates boost, date words stripped', understand: { ...ALL_OFF, dates: 'boost', stripDates: true } },
  { name: 'dates: date words stripped only (weight 0)', understand: { ...ALL_OFF, dates: 'boost', stripDates: true, dateWeight: 0 } },
  { name: 'dates boost, weight 0.25', understand: { ...ALL_OFF, dates: 'boost', stripDates: false, dateWeight: 0.25 } },
  { name: 'dates boost, weight 1', understand: { ...ALL_OFF, dates: 'boost', stripDates: false, dateWeight: 1 } },
  { name: 'dates boost, slack 0 d', understand: { ...ALL_OFF, dates: 'boost', stripDates: false, dateSlackDays: 0 } },
  { name: 'dates boost, slack 30 d', understand: { ...ALL_OFF, dates: 'boost', stripDates: false, dateSlackDays: 30 } },
  { name: 'dates filter (slack 7 d)', understand: { ...ALL_OFF, dates: 'filter', stripDates: false } },
  { name: 'feedback (5 chunks, 5 terms)', understand: { ...ALL_OFF, feedback: true, feedbackDocs: 5 } },
  { name: 'feedback (3 chunks, 5 terms)', understand: { ...ALL_OFF, feedback: true, feedbackDocs: 3 } },
  { name: 'feedback (10 chunks, 5 terms)', understand: { ...ALL_OFF, feedback: true, feedbackDocs: 10 } },
  { name: 'feedback (5 chunks, 10 terms)', understand: { ...ALL_OFF, feedback: true, feedbackDocs: 5, feedbackTerms: 10 } },
  { name: 'feedback (5 chunks, 3 terms)', understand: { ...ALL_OFF, feedback: true, feedbackDocs: 5, feedbackTerms: 3 } },
  { name: "feedback 'documents' (10 chunks, 5 terms: the default), alone", understand: { ...ALL_OFF, feedback: 'documents' } },
  { name: 'names dropped from the lexical query', understand: { ...ALL_OFF, names: 'drop' } },
  { name: 'speakers boost (weight 0.5, depth 2k)', understand: { ...ALL_OFF, speakers: 'boost' } },
  { name: 'speakers boost, weight 0.25', understand: { ...ALL_OFF, speakers: 'boost', speakerWeight: 0.25 } },
  { name: 'speakers boost, weight 1', understand: { ...ALL_OFF, speakers: 'boost', speakerWeight: 1 } },
  { name: 'speakers boost, depth 3k', understand: { ...ALL_OFF, speakers: 'boost', speakerDepth: 3 } },
  { name: 'question words stripped on the vector side', understand: { ...ALL_OFF, questionWords: 'strip' } },
  { name: 'question words: mean of asked and stripped vectors', understand: { ...ALL_OFF, questionWords: 'both' } },
  { name: 'defaults + question words stripped', understand: { questionWords: 'strip' } },
  { name: 'defaults + question words: mean of both', understand: { questionWords: 'both' } },
];

async function understandGrid(): Promise<UnderstandPoint[]> {
  const dated = new Set(queries.locomo.filter((q) => findDates(q.text, Date.parse(askedAt.get(q.user) ?? '')).ranges.length > 0));
  const points: UnderstandPoint[] = [];
  // `--understand-only 'dates|speakers'`: the points whose names start so (and all off).
  const only = option('--understand-only')?.split('|');
  for (const { name, understand } of UNDERSTAND_GRID.filter((p, i) => i === 0 || only === undefined || only.some((prefix) => p.name.startsWith(prefix)))) {
    progress(`understand grid: ${name} ...`);
    const per = new Map<Query, Metrics>();
    for (const set of DATASETS) {
      for (const query of queries[set]) {
        const { hits } = await memex.search(query.user, query.text, { k: 20, ...understandingFor(query, understand) });
        per.set(query, metricsOf(query, refsOf(hits.map((hit) => hit.chunkId))));
      }
    }
    const quality = Object.fromEntries(DATASETS.map((set) => [set, mean(queries[set].map((q) => per.get(q) as Metrics))])) as Quality;
    const categories: Categories = new Map();
    for (const category of [...new Set(queries.locomo.map((q) => q.category ?? 0))].sort((a, b) => a - b)) {
      const all = queries.locomo.filter((q) => q.category === category).map((q) => per.get(q) as Metrics);
      categories.set(category, { ...mean(all), questions: all.length });
    }
    // Timed in turn with all off, query by query, so a busy moment of the machine costs both alike.
    const ms: number[] = [];
    const offMs: number[] = [];
    for (const query of queries.locomo) {
      for (const [list, options] of [
        [ms, understandingFor(query, understand)],
        [offMs, understandingFor(query, ALL_OFF)],
      ] as const) {
        const start = performance.now();
        await memex.search(query.user, fresh(query), { k: 10, ...options });
        list.push(performance.now() - start);
      }
    }
    const datedMetrics = [...dated].map((q) => per.get(q) as Metrics);
    points.push({ name, understand, quality, categories, dated: { ...mean(datedMetrics), questions: datedMetrics.length }, p50: percentile(ms, 50), p99: percentile(ms, 99), offP50: percentile(offMs, 50) });
  }
  return points;
}

const understandResult = runUnderstandGrid ? await understandGrid() : null;

// ---------------------------------------------------------------- context from the turn before (src/index/turn-context.ts)

interface ContextPoint {
  name: string;
  options: Pick<SearchOptions, 'contextWeight' | 'contextCoherence'>;
  quality: Quality;
  categories: Categories;
  /** Hybrid p50 over the LoCoMo questions, ms, query embedding included; and without the list (contextWeight 0), timed in turn. */
  p50: number;
  offP50: number;
}

/** The contextual list's weight and coherence threshold, each around the default with the other at its default, through memex.search. */
async function contextGrid(): Promise<ContextPoint[]> {
  const { contextWeight, contextCoherence } = search;
  const settings: { name: string; options: ContextPoint['options'] }[] = [
    { name: 'no contextual list (weight 0)', options: { contextWeight: 0 } },
    ...[0.25, 0.5, 0.75, 1].map((w) => ({ name: `weight ${w}, coherence ${contextCoherence}`, options: { contextWeight: w } })),
    ...[-1, 0.3, 0.5, 0.6].map((c) => ({ name: `weight ${contextWeight}, coherence ${c === -1 ? '-1 (every session)' : c}`, options: { contextCoherence: c } })),
  ];
  const points: ContextPoint[] = [];
  for (const { name, options } of settings) {
    progress(`context grid: ${name} ...`);
    const { quality, categories } = await measure(options);
    const ms: number[] = [];
    const offMs: number[] = [];
    for (const query of queries.locomo) {
      for (const [list, extra] of [
        [ms, options],
        [offMs, { contextWeight: 0 }],
      ] as const) {
        const start = performance.now();
        await memex.search(query.user, fresh(query), { k: 10, ...understandingFor(query, understandFlag), ...extra });
        list.push(performance.now() - start);
      }
    }
    points.push({ name, options, quality, categories, p50: percentile(ms, 50), offP50: percentile(offMs, 50) });
  }
  return points;
}

const contextResult = runContextGrid ? await contextGrid() : null;

// ---------------------------------------------------------------- vector-side replays (issue 20)

/**
 * The default hybrid search replayed from vector rankings given here: each list cut to the
 * configured depth and fused by weighted RRF (fuse.ts), the default date boost (asked a day after
 * the conversation, as the understand grid asks), the default speaker boost over the top
 * `speakerDepth` times k, k = 20 as `searchRefs`. Vector rankings come from an exact scan of the
 * stored vectors (memex.search walks the graph: recall@10 0.99 against exact), so every variant and
 * its baseline are scored the same way.
 */
interface RankedList {
  ids: readonly string[];
  weight: number;
}
const DAY_MS = 86_400_000;
function replayDefaults(query: Query, lists: readonly RankedList[]): string[] {
  const settings = DEFAULT_UNDERSTANDING;
  const scores = new Map<string, number>();
  for (const { ids, weight } of lists) ids.slice(0, configured.candidates).forEach((id, i) => scores.set(id, (scores.get(id) ?? 0) + weight / (configured.rrfK + i + 1)));
  const asked = Date.parse(askedAt.get(query.user) ?? '');
  const { ranges } = findDates(query.text, Number.isNaN(asked) ? Date.now() : asked);
  const slack = settings.dateSlackDays * DAY_MS;
  const label = (id: string): number => chunkLabel.get(id) ?? 0;
  const ranked = [...scores]
    .map(([id, score]) => ({ id, score: ranges.length > 0 && inRanges(chunkTime.get(id) ?? NaN, ranges, slack) ? score * (1 + settings.dateWeight) : score }))
    .sort((a, b) => b.score - a.score || label(a.id) - label(b.id));
  const k = 20;
  const names = namesIn(query.text);
  if (names.size === 0) return ranked.slice(0, k).map((hit) => hit.id);
  const factor = 1 + settings.speakerWeight;
  return ranked
    .slice(0, Math.ceil(k * settings.speakerDepth))
    .map((hit, i) => {
      const speaker = speakerOf(chunkText.get(hit.id) ?? '');
      return { id: hit.id, i, score: speaker !== null && names.has(speaker) ? hit.score * factor : hit.score };
    })
    .sort((a, b) => b.score - a.score || a.i - b.i)
    .slice(0, k)
    .map((hit) => hit.id);
}

/**
 * The contextual list (src/index/turn-context.ts) replayed from exact cosines, as the backends build
 * it from the vector list: the best `candidates` rows by `scores` and the row after each, those in a
 * conversation (the session's last COHERENCE_ROWS rows judged by `isConversation`) with a row before
 * them, ranked by `contextList`. Every stored row here is a message chunk.
 */
interface ContextShape {
  /** Index of the row before in its session, or -1. */
  previous: Int32Array;
  /** Cosine of each row to the row before it (NaN without one). */
  pair: Float64Array;
  /** Whether each row's session is a conversation at `search.contextCoherence`. */
  conversation: Uint8Array;
}
const contextShapes = new Map<string, ContextShape>();
function contextShapeOf(user: string): ContextShape {
  const known = contextShapes.get(user);
  if (known) return known;
  const { chunkIds, sessions, vectors } = chunksOf.get(user) as UserChunks;
  const n = chunkIds.length;
  const previous = new Int32Array(n).fill(-1);
  const pair = new Float64Array(n).fill(NaN);
  for (let i = 1; i < n; i++) {
    if (sessions[i - 1] !== sessions[i]) continue;
    previous[i] = i - 1;
    pair[i] = cosines(vectors[i] as Float32Array, [vectors[i - 1] as Float32Array])[0] as number;
  }
  const conversation = new Uint8Array(n);
  for (let start = 0; start < n; ) {
    let end = start;
    while (end < n && sessions[end] === sessions[start]) end++;
    const pairs: number[] = [];
    for (let i = Math.max(start + 1, end - COHERENCE_ROWS); i < end; i++) {
      if (messageOfChunk(chunkIds[i] as string) !== messageOfChunk(chunkIds[i - 1] as string)) pairs.push(pair[i] as number);
    }
    conversation.fill(isConversation(pairs, search.contextCoherence) ? 1 : 0, start, end);
    start = end;
  }
  const shape = { previous, pair, conversation };
  contextShapes.set(user, shape);
  return shape;
}
function contextIds(user: string, scores: Float64Array): string[] {
  const { previous, pair, conversation } = contextShapeOf(user);
  const { chunkIds, sessions } = chunksOf.get(user) as UserChunks;
  const top = [...scores.keys()].sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b).slice(0, configured.candidates);
  const pool = new Set(top);
  for (const i of top) if (i + 1 < scores.length && sessions[i + 1] === sessions[i]) pool.add(i + 1);
  const rows: ContextRow<string>[] = [];
  for (const i of pool) {
    const before = previous[i] as number;
    if (before < 0 || !conversation[i]) continue;
    rows.push({ key: chunkIds[i] as string, own: scores[i] as number, previous: scores[before] as number, pair: pair[i] as number });
  }
  return contextList(rows, configured.candidates).map((row) => row.key);
}

/**
 * The contextual list read forwards: each row with the row after it (a statement with the reply that
 * confirms or extends it), pool the best rows and the row before each. `combine` 'max' returns one
 * list of the better of the two readings per row (backwards as `contextIds`, forwards), instead.
 */
function nextIds(user: string, scores: Float64Array, combine: 'forwards' | 'max'): string[] {
  const { previous, pair, conversation } = contextShapeOf(user);
  const { chunkIds, sessions } = chunksOf.get(user) as UserChunks;
  const top = [...scores.keys()].sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b).slice(0, configured.candidates);
  const pool = new Set(top);
  for (const i of top) {
    if (i > 0 && sessions[i - 1] === sessions[i]) pool.add(i - 1);
    if (combine === 'max' && i + 1 < scores.length && sessions[i + 1] === sessions[i]) pool.add(i + 1);
  }
  const scored: { key: string; score: number; i: number }[] = [];
  for (const i of pool) {
    if (!conversation[i]) continue;
    const next = i + 1 < scores.length && previous[i + 1] === i ? i + 1 : -1;
    const forwards = next < 0 ? -Infinity : contextCosine({ own: scores[i] as number, previous: scores[next] as number, pair: pair[next] as number });
    const before = previous[i] as number;
    const backwards = combine === 'max' && before >= 0 ? contextCosine({ own: scores[i] as number, previous: scores[before] as number, pair: pair[i] as number }) : -Infinity;
    const score = Math.max(forwards, backwards);
    if (score > -Infinity) scored.push({ key: chunkIds[i] as string, score, i });
  }
  return scored.sort((a, b) => b.score - a.score || a.i - b.i).slice(0, configured.candidates).map((row) => row.key);
}

/** Cosine of `vector` (unit length) to each row. */
function cosines(vector: Float32Array, rows: readonly Float32Array[]): Float64Array {
  const out = new Float64Array(rows.length);
  rows.forEach((row, r) => {
    let sum = 0;
    for (let i = 0; i < row.length; i++) sum += (row[i] as number) * (vector[i] as number);
    out[r] = sum;
  });
  return out;
}

/** A user's chunk ids ranked by `scores` (one per chunk, label order), best first, ties by label. */
function rankBy(user: string, scores: Float64Array, depth = configured.candidates): string[] {
  const ids = (chunksOf.get(user) as UserChunks).chunkIds;
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  return order.slice(0, depth).map((i) => ids[i] as string);
}

const elementMax = (a: Float64Array, b: Float64Array): Float64Array => a.map((x, i) => Math.max(x, b[i] as number));

/** Unit-length mean of rows. */
function meanOf(rows: readonly Float32Array[]): Float32Array {
  const mean = new Float32Array(embedder.dimension);
  for (const row of rows) for (let i = 0; i < mean.length; i++) mean[i] = (mean[i] as number) + (row[i] as number);
  const norm = Math.sqrt(mean.reduce((s, x) => s + x * x, 0)) || 1;
  return mean.map((x) => x / norm);
}

/** Embeds distinct texts in batches; the map answers each text. */
async function embedTexts(texts: Iterable<string>, batch = 32): Promise<Map<string, Float32Array>> {
  const distinct = [...new Set(texts)];
  const out = new Map<string, Float32Array>();
  for (let i = 0; i < distinct.length; i += batch) {
    const slice = distinct.slice(i, i + batch);
    const rows = await embedder.embed(slice);
    slice.forEach((text, j) => out.set(text, rows[j] as Float32Array));
  }
  return out;
}

interface VectorPoint {
  name: string;
  quality: Quality;
  categories: Categories;
}

function pointOf(name: string, rank: (query: Query) => string[]): VectorPoint {
  const per = new Map<Query, Metrics>();
  for (const set of DATASETS) for (const query of queries[set]) per.set(query, metricsOf(query, refsOf(rank(query))));
  const quality = Object.fromEntries(DATASETS.map((set) => [set, mean(queries[set].map((q) => per.get(q) as Metrics))])) as Quality;
  const categories: Categories = new Map();
  for (const category of [1, 2, 3, 4]) {
    const all = queries.locomo.filter((q) => q.category === category).map((q) => per.get(q) as Metrics);
    categories.set(category, { ...mean(all), questions: all.length });
  }
  return { name, quality, categories };
}

interface VectorReplays {
  /** Top-10 refs of the baseline replay equal to memex.search's (defaults with `questionWords: 'keep'`, asked a day after), share of queries. */
  agreement: number;
  question: { points: VectorPoint[]; changed: Record<DatasetName, number>; examples: { asked: string; core: string }[] } | null;
  next: VectorPoint[] | null;
}

/** The question's content words: its tokens less the lexical side's stopwords, as written (a wider strip than `questionCore`). */
const contentWords = (text: string): string => {
  const kept = tokenize(text).filter((token) => processTerm(token, { stopwords: true, stemming: false }) !== null);
  return kept.length > 0 ? kept.join(' ') : text;
};

async function vectorReplays(): Promise<VectorReplays> {
  progress('vector replays: lexical lists and query vectors ...');
  const lexicalOf = new Map<Query, string[]>();
  const sets = replays(configuredBm25, new Map());
  for (const set of DATASETS) for (const r of sets[set]) lexicalOf.set(r.query, r.lexical);
  const all = DATASETS.flatMap((set) => queries[set]);
  const asked = await embedTexts(all.map((q) => q.text));
  const turnCos = new Map<Query, Float64Array>();
  for (const query of all) turnCos.set(query, cosines(asked.get(query.text) as Float32Array, (chunksOf.get(query.user) as UserChunks).vectors));
  const lexical = (query: Query): RankedList => ({ ids: lexicalOf.get(query) ?? [], weight: configured.lexicalWeight });
  const byScores = (query: Query, scores: Float64Array, weight = configured.vectorWeight): RankedList => ({ ids: rankBy(query.user, scores), weight });
  const context = (query: Query, scores: Float64Array): RankedList => ({ ids: contextIds(query.user, scores), weight: search.contextWeight });
  const baseline = (query: Query): string[] => replayDefaults(query, [byScores(query, turnCos.get(query) as Float64Array), context(query, turnCos.get(query) as Float64Array), lexical(query)]);

  // The replay against memex.search itself (its defaults but the question embedded as asked, which
  // every ranking here compares with; asked when the replay asks).
  let same = 0;
  for (const query of all) {
    const { hits } = await memex.search(query.user, query.text, { k: 20, ...understandingFor(query, { questionWords: 'keep' }) });
    const real = refsOf(hits.map((hit) => hit.chunkId)).slice(0, 10);
    const replayed = refsOf(baseline(query)).slice(0, 10);
    if (real.length === replayed.length && real.every((ref, i) => ref === replayed[i])) same++;
  }
  const agreement = same / all.length;
  const base = pointOf(`turn vectors ${configured.vectorWeight} + BM25 ${configured.lexicalWeight} (the hybrid search replayed, question as asked)`, baseline);

  let question: VectorReplays['question'] = null;
  if (runQuestionGrid) {
    progress('vector replays: question words ...');
    const cores = await embedTexts(all.flatMap((q) => [questionCore(q.text), contentWords(q.text)]));
    const turn = (q: Query): Float64Array => turnCos.get(q) as Float64Array;
    const rows = (q: Query): Float32Array[] => (chunksOf.get(q.user) as UserChunks).vectors;
    const coreVector = (q: Query): Float32Array => cores.get(questionCore(q.text)) as Float32Array;
    const contentVector = (q: Query): Float32Array => cores.get(contentWords(q.text)) as Float32Array;
    const askedVector = (q: Query): Float32Array => asked.get(q.text) as Float32Array;
    const memo = <T>(f: (q: Query) => T): ((q: Query) => T) => {
      const known = new Map<Query, T>();
      return (q) => {
        if (!known.has(q)) known.set(q, f(q));
        return known.get(q) as T;
      };
    };
    const stripped = memo((q) => cosines(coreVector(q), rows(q)));
    const both = memo((q) => cosines(meanOf([askedVector(q), coreVector(q)]), rows(q)));
    const content = memo((q) => cosines(contentVector(q), rows(q)));
    const contentMean = memo((q) => cosines(meanOf([askedVector(q), contentVector(q)]), rows(q)));
    const fused = (scores: (q: Query) => Float64Array, weight = configured.vectorWeight) => (q: Query) => replayDefaults(q, [byScores(q, scores(q), weight), context(q, scores(q)), lexical(q)]);
    const points = [
      base,
      pointOf('stripped question (questionWords strip)', fused(stripped)),
      pointOf('stripped question, vector weight 0.15', fused(stripped, 0.15)),
      pointOf('stripped question, vector weight 0.5', fused(stripped, 0.5)),
      pointOf('mean of asked and stripped vectors (questionWords both)', fused(both)),
      pointOf('better cosine of asked and stripped (max)', fused((q) => elementMax(turn(q), stripped(q)))),
      pointOf('content words only (stopwords out)', fused(content)),
      pointOf('mean of asked and content-words vectors', fused(contentMean)),
      pointOf('vector alone: asked (no fusion, no boosts)', (q) => rankBy(q.user, turn(q), 20)),
      pointOf('vector alone: stripped', (q) => rankBy(q.user, stripped(q), 20)),
      pointOf('vector alone: mean of both', (q) => rankBy(q.user, both(q), 20)),
      pointOf('vector alone: content words', (q) => rankBy(q.user, content(q), 20)),
    ];
    const changed = Object.fromEntries(DATASETS.map((set) => [set, queries[set].filter((q) => questionCore(q.text) !== q.text).length])) as Record<DatasetName, number>;
    const examples = [...queries.locomo.slice(0, 3), ...queries.msmarco.slice(0, 2), ...queries.msc.slice(0, 1)].map((q) => ({ asked: q.text, core: questionCore(q.text) }));
    question = { points, changed, examples };
  }
  let next: VectorPoint[] | null = null;
  if (runNextGrid) {
    progress('vector replays: the contextual list read forwards ...');
    const turn = (q: Query): Float64Array => turnCos.get(q) as Float64Array;
    const forwards = (q: Query, weight: number): RankedList => ({ ids: nextIds(q.user, turn(q), 'forwards'), weight });
    const either = (q: Query, weight: number): RankedList => ({ ids: nextIds(q.user, turn(q), 'max'), weight });
    next = [
      base,
      ...[0.1, 0.25, 0.5].map((w) => pointOf(`+ forwards list, weight ${w}`, (q) => replayDefaults(q, [byScores(q, turn(q)), context(q, turn(q)), forwards(q, w), lexical(q)]))),
      ...[0.5, 0.75].map((w) => pointOf(`one list, the better of backwards and forwards, weight ${w}`, (q) => replayDefaults(q, [byScores(q, turn(q)), either(q, w), lexical(q)]))),
      pointOf('forwards list in place of backwards, weight 0.5', (q) => replayDefaults(q, [byScores(q, turn(q)), forwards(q, 0.5), lexical(q)])),
    ];
  }
  return { agreement, question, next };
}

const vectorResult = wantVectors ? await vectorReplays() : null;
const vectorJson = (): unknown => {
  if (!vectorResult) return null;
  const plain = (points: VectorPoint[]): unknown => points.map((p) => ({ ...p, categories: Object.fromEntries(p.categories) }));
  const { question, next } = vectorResult;
  return { ...vectorResult, question: question && { ...question, points: plain(question.points) }, next: next && plain(next) };
};

await memex.close();
if (ownDir) await rm(dataDir, { recursive: true, force: true });

// ---------------------------------------------------------------- report

const cpu = `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'}`;
const counts = {
  locomoQuestions: queries.locomo.length,
  locomoTurns: locomo.collections.reduce((n, c) => n + c.docs.length, 0),
  msmarcoQueries: queries.msmarco.length,
  msmarcoPassages: msmarco.collections.reduce((n, c) => n + c.docs.length, 0),
  msmarcoChunks: msmarcoChunks.chunks,
  msmarcoPassagesSplit: msmarcoChunks.split,
  locomoAdversarial: locomo.adversarial,
  mscEpisodes,
  mscPerUser,
  mscQuestions: queries.msc.length,
  mscTurns: msc.collections.reduce((n, c) => n + c.docs.length, 0),
};
const categories = Object.fromEntries(Object.entries(measured).map(([mode, m]) => [mode, Object.fromEntries(m.categories)]));

if (asJson) {
  console.log(JSON.stringify({ machine: machine(), cpu, model, counts, search, bm25: { ...DEFAULT_BM25, k: search.bm25K, b: search.bm25B, stopwords: search.stopwords }, ingestMs, modes, categories, evidenceDepth: Object.fromEntries(depth), baseline, latency, grid: gridResult, understand: understandFlag, understandGrid: understandResult?.map((p) => ({ ...p, categories: Object.fromEntries(p.categories) })) ?? null, contextGrid: contextResult?.map((p) => ({ ...p, categories: Object.fromEntries(p.categories) })) ?? null, vectorReplays: vectorJson() }, null, 2));
} else {
  const f3 = (n: number): string => n.toFixed(3);
  const ms = (n: number): string => (n < 10 ? n.toFixed(2) : n.toFixed(1));
  const row = (cells: readonly (string | number)[]): string => `| ${cells.join(' | ')} |`;
  const qualityHeader = [row(['', ...HEADLINE.map(([, , label]) => label)]), row(['---', ...HEADLINE.map(() => '---:')])];

  console.log(`## Retrieval quality (${model})`);
  console.log();
  console.log(`machine: ${machine()}, ${cpu}`);
  console.log(
    `LoCoMo: ${counts.locomoQuestions} questions with evidence (category 5 excluded) over ${counts.locomoTurns} turns, one user per conversation; ` +
      `MS MARCO subset: ${counts.msmarcoQueries} judged queries over ${counts.msmarcoPassages} passages (${counts.msmarcoChunks} chunks; ${counts.msmarcoPassagesSplit} passages split); ` +
      `MSC: ${counts.mscQuestions} persona facts with evidence over ${counts.mscTurns} turns of ${mscEpisodes} episodes, ${mscPerUser} episodes a user.`,
  );
  console.log(
    `search: vectorWeight ${search.vectorWeight}, lexicalWeight ${search.lexicalWeight}, rrfK ${search.rrfK}, candidates ${search.candidates}; ` +
      `BM25 k1 ${search.bm25K}, b ${search.bm25B}, stopwords ${search.stopwords ? 'on' : 'off'}, stemming ${DEFAULT_BM25.stemming ? 'on' : 'off'}` +
      (ingestMs === null ? '' : `; ingest ${(ingestMs / 1000).toFixed(0)} s`),
  );
  console.log();
  for (const line of qualityHeader) console.log(line);
  for (const [mode, quality] of Object.entries(modes)) console.log(row([mode, ...headline(quality).map(f3)]));
  console.log();
  console.log('MS MARCO against a plain BM25 over whole passages (bench-local, own tokenisation):');
  console.log();
  console.log(row(['', 'nDCG@10', 'R@10']));
  console.log(row(['---', '---:', '---:']));
  console.log(row(['BM25 whole passages, Lucene k1 0.9 b 0.4', f3(baseline.lucene.ndcg10), f3(baseline.lucene.recall10)]));
  console.log(row(['BM25 whole passages, Robertson k1 1.2 b 0.75', f3(baseline.robertson.ndcg10), f3(baseline.robertson.recall10)]));
  console.log(row(['Memex BM25+ over whole passages (its tokenisation, no chunking)', f3(baseline.memexWhole.ndcg10), f3(baseline.memexWhole.recall10)]));
  for (const mode of ['lexical', 'hybrid'] as const) console.log(row([`memex ${mode}`, f3(modes[mode].msmarco.ndcg10), f3(modes[mode].msmarco.recall10)]));
  console.log();
  console.log(`LoCoMo evidence recall by category (category 5, adversarial: ${counts.locomoAdversarial} questions, no evidence, not scored):`);
  console.log();
  const categoryNames: Record<number, string> = { 1: 'multi-hop', 2: 'temporal', 3: 'open-domain', 4: 'single-hop' };
  const modeNames = Object.keys(measured) as (keyof typeof measured)[];
  console.log(row(['category', 'questions', ...modeNames.flatMap((mode) => [`${mode} R@5`, `${mode} R@10`])]));
  console.log(row(['---', '---:', ...modeNames.flatMap(() => ['---:', '---:'])]));
  for (const [category, m] of measured.hybrid.categories) {
    const cells = modeNames.flatMap((mode) => {
      const c = measured[mode].categories.get(category);
      return c ? [f3(c.recall5), f3(c.recall10)] : ['', ''];
    });
    console.log(row([`${category} ${categoryNames[category] ?? ''}`.trim(), m.questions, ...cells]));
  }
  console.log();
  console.log('Where the evidence ranks (default hybrid search, 100 deep; evidence turns, each once per question):');
  console.log();
  console.log(row(['category', 'evidence turns', ...DEPTH_BUCKETS.map(([, , name]) => name), 'not in the top 100']));
  console.log(row(['---', ...Array.from({ length: DEPTH_BUCKETS.length + 2 }, () => '---:')]));
  for (const [category, entry] of [...depth].sort((a, b) => a[0] - b[0])) {
    console.log(row([`${category} ${categoryNames[category] ?? ''}`.trim(), entry.turns, ...entry.buckets, entry.missing]));
  }
  console.log();
  console.log('Query latency, ms per call after warm-up (k = 10; hybrid and vector include embedding the query):');
  console.log();
  console.log(row(['', 'LoCoMo p50', 'LoCoMo p99', 'MS MARCO p50', 'MS MARCO p99']));
  console.log(row(['---', '---:', '---:', '---:', '---:']));
  for (const [name, label] of [
    ['hybrid', 'memex.search, hybrid'],
    ['lexical', 'memex.search, lexical (no embedding)'],
    ['embed', 'embedding the query alone'],
  ] as const) {
    const l = latency.locomo[name];
    const m = latency.msmarco[name];
    console.log(row([label, ms(l.p50), ms(l.p99), ms(m.p50), ms(m.p99)]));
  }
  console.log(`(${latency.locomo.hybrid.calls} LoCoMo calls over ~${Math.round(counts.locomoTurns / 10)} chunks a user; ${latency.msmarco.hybrid.calls} MS MARCO calls over ${chunksOf.get(MSMARCO_USER)?.chunkIds.length ?? 0} chunks)`);

  if (understandResult) {
    const catNames = [1, 2, 3, 4];
    console.log();
    console.log('### Query understanding (hybrid; src/index/query.ts; LoCoMo and MSC questions asked a day after their conversation ends)');
    console.log();
    console.log(row(['understand', ...HEADLINE.map(([, , label]) => label), ...catNames.map((c) => `LoCoMo cat ${c} R@10`), `dated Qs R@10 (${understandResult[0]?.dated.questions ?? 0})`, 'LoCoMo p50 ms', 'p99 ms', 'all off p50 ms (in turn)']));
    console.log(row(['---', ...HEADLINE.map(() => '---:'), ...catNames.map(() => '---:'), '---:', '---:', '---:', '---:']));
    for (const p of understandResult) {
      console.log(row([p.name, ...headline(p.quality).map(f3), ...catNames.map((c) => f3(p.categories.get(c)?.recall10 ?? NaN)), f3(p.dated.recall10), ms(p.p50), ms(p.p99), ms(p.offP50)]));
    }
  }
  if (understandFlag) console.log(`\n(every search above with understand ${JSON.stringify(understandFlag)})`);

  if (contextResult) {
    console.log();
    console.log('### Context from the turn before (hybrid through memex.search; src/index/turn-context.ts)');
    console.log();
    console.log(row(['contextual list', ...HEADLINE.map(([, , label]) => label), ...[1, 2, 3, 4].map((c) => `LoCoMo cat ${c} R@10`), 'LoCoMo p50 ms', 'weight 0 p50 ms (in turn)']));
    console.log(row(['---', ...HEADLINE.map(() => '---:'), ...[1, 2, 3, 4].map(() => '---:'), '---:', '---:']));
    for (const p of contextResult) console.log(row([p.name, ...headline(p.quality).map(f3), ...[1, 2, 3, 4].map((c) => f3(p.categories.get(c)?.recall10 ?? NaN)), ms(p.p50), ms(p.offP50)]));
  }

  if (vectorResult) {
    const pct = (n: number): string => `${(n * 100).toFixed(1)}%`;
    const cells = (p: VectorPoint): string[] => [
      f3(p.quality.locomo.recall5),
      f3(p.quality.locomo.recall10),
      ...[1, 2, 3, 4].map((c) => `${f3(p.categories.get(c)?.recall5 ?? NaN)} / ${f3(p.categories.get(c)?.recall10 ?? NaN)}`),
      f3(p.quality.msc.recall5),
      f3(p.quality.msc.recall10),
      f3(p.quality.msmarco.ndcg10),
      f3(p.quality.msmarco.recall10),
    ];
    const header = (first: string): void => {
      console.log(row([first, 'LoCoMo R@5', 'LoCoMo R@10', 'multi-hop R@5 / R@10', 'temporal', 'open-domain', 'single-hop', 'MSC R@5', 'MSC R@10', 'MS MARCO nDCG@10', 'MS MARCO R@10']));
      console.log(row(['---', ...Array.from({ length: 10 }, () => '---:')]));
    };
    console.log();
    console.log(`### Vector-side replays (default hybrid and boosts replayed over an exact scan of the stored vectors, the question embedded as asked; top 10 = memex.search with questionWords keep on ${pct(vectorResult.agreement)} of queries)`);
    const { question } = vectorResult;
    if (question) {
      console.log();
      console.log(`Question words on the vector side: questionCore changes ${question.changed.locomo} LoCoMo, ${question.changed.msc} MSC and ${question.changed.msmarco} MS MARCO queries, e.g.:`);
      for (const e of question.examples) console.log(`  ${JSON.stringify(e.asked)} -> ${JSON.stringify(e.core)}`);
      console.log();
      header('vector side');
      for (const p of question.points) console.log(row([p.name, ...cells(p)]));
    }
    if (vectorResult.next) {
      console.log();
      header('contextual list');
      for (const p of vectorResult.next) console.log(row([p.name, ...cells(p)]));
    }
  }

  if (gridResult) {
    const fusionName = (p: Fusion): string => `${p.vectorWeight}:${p.lexicalWeight}, rrfK ${p.rrfK}, candidates ${p.candidates}`;
    console.log();
    console.log(`### Lexical settings (fusion replayed; replay = memex.search on ${(gridResult.replayAgreement * 100).toFixed(1)}% of queries)`);
    console.log();
    console.log(row(['', ...HEADLINE.map(([, , label]) => label)]));
    console.log(row(['---', ...HEADLINE.map(() => '---:')]));
    console.log(row(['vector', ...headline(gridResult.vector).map(f3)]));
    for (const v of gridResult.variants) {
      console.log(row([`lexical, ${variantName(v.variant)}`, ...headline(v.lexical).map(f3)]));
      console.log(row([`hybrid (${fusionName(configured)}), ${variantName(v.variant)}`, ...headline(v.hybrid).map(f3)]));
      console.log(row([`hybrid, best grid point (${fusionName(v.best.fusion)})`, ...headline(v.best.quality).map(f3)]));
    }
    console.log();
    console.log('### BM25 k1, b and d (lexical alone)');
    console.log();
    console.log(row(['k1', 'b', 'd', ...HEADLINE.map(([, , label]) => label)]));
    console.log(row(['---:', '---:', '---:', ...HEADLINE.map(() => '---:')]));
    for (const p of gridResult.bm25) console.log(row([p.k, p.b, p.d, ...headline(p.lexical).map(f3)]));
    const depths = [...new Set(gridResult.points.map((p) => p.fusion.candidates))];
    const rrfKs = [...new Set(gridResult.points.map((p) => p.fusion.rrfK))];
    const ratios = [...new Set(gridResult.points.map((p) => p.fusion.vectorWeight))];
    console.log();
    console.log('### Fusion grid (default lexical settings): worst margin of hybrid over the better single mode, across the six metrics');
    console.log('(positive = hybrid at least as good as both on all four; rows rrfK, columns vectorWeight with lexicalWeight 1)');
    for (const candidates of depths) {
      console.log();
      console.log(`candidates ${candidates}:`);
      console.log();
      console.log(row(['rrfK', ...ratios.map(String)]));
      console.log(row(['---:', ...ratios.map(() => '---:')]));
      for (const rrfK of rrfKs) {
        const cells = ratios.map((ratio) => {
          const point = gridResult.points.find((p) => p.fusion.candidates === candidates && p.fusion.rrfK === rrfK && p.fusion.vectorWeight === ratio);
          return point ? (point.margin >= 0 ? '+' : '') + point.margin.toFixed(3) : '';
        });
        console.log(row([rrfK, ...cells]));
      }
    }
    console.log();
    console.log('### Score-aware fusions (replayed; configured lexical settings and depth)');
    console.log('');
    console.log(row(['fusion', ...HEADLINE.map(([, , label]) => label)]));
    console.log(row(['---', ...HEADLINE.map(() => '---:')]));
    for (const f of gridResult.scoreFusions) console.log(row([f.name, ...headline(f.quality).map(f3)]));
    console.log('');
    console.log('Best ten grid points by worst margin:');
    console.log();
    console.log(row(['fusion', ...HEADLINE.map(([, , label]) => label), 'margin']));
    console.log(row(['---', ...HEADLINE.map(() => '---:'), '---:']));
    for (const p of [...gridResult.points].sort((a, b) => b.margin - a.margin).slice(0, 10)) {
      console.log(row([fusionName(p.fusion), ...headline(p.quality).map(f3), p.margin.toFixed(3)]));
    }
  }
}
