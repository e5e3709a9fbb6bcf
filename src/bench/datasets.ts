/**
 * What `memex bench` runs on. A dataset has two halves:
 *
 *  - vectors for the ANN part (rows and held-out queries), given as numbers (a synthetic mixture, a
 *    user's stored rows) or as texts the harness embeds with the configured model;
 *  - chat sessions and questions for the end-to-end part (ingest, search, context), which the
 *    harness writes into a fresh, temporary data dir: a benchmark never writes to a user's data.
 *
 * The eval sets (LoCoMo, MS MARCO) are read in place from MEMEX_EVAL_DIR, else `../shared/eval`
 * beside the Memex folder; they are never copied.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MemexError } from '../core/index.js';
import type { Message, SessionListOptions } from '../core/index.js';
import type { SessionPage, SessionVectorData } from '../store/index.js';
import { ClusteredSource, Random } from './random.js';

export interface BenchMessage {
  role: 'user' | 'assistant';
  content: string;
}

export interface BenchSession {
  title: string;
  messages: BenchMessage[];
}

/** Row-major float32 rows and queries of one dimension. */
export interface BenchVectors {
  dimension: number;
  rows: Float32Array;
  count: number;
  queries: Float32Array;
  queryCount: number;
}

export interface BenchDataset {
  name: string;
  description: string;
  /** Where the ANN part's vectors come from, in words. */
  vectorSource: string;
  vectors?: BenchVectors;
  /** Texts the harness embeds into the ANN part's vectors when `vectors` is absent. */
  texts?: { rows: string[]; queries: string[] };
  sessions: BenchSession[];
  questions: string[];
}

export interface DatasetOptions {
  /** ANN queries wanted (held out from the rows where they come from the rows). */
  queries: number;
  /** The most messages the end-to-end part ingests. */
  maxMessages: number;
  /** Dimension of synthetic vectors. */
  dimension?: number;
  seed?: number;
  /** Where LoCoMo and MS MARCO live (default MEMEX_EVAL_DIR, else ../shared/eval beside the install). */
  evalDir?: string;
}

export const DATASET_KINDS = ['locomo', 'msmarco', 'synthetic:N'] as const;

const SEED = 100;
const SESSION_TURNS = 20;

export function defaultEvalDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.MEMEX_EVAL_DIR || fileURLToPath(new URL('../../../shared/eval', import.meta.url));
}

/** `synthetic:2000`, `synthetic:100k`, `synthetic:1m` → a row count. */
export function parseCount(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(text.trim());
  if (!match) return null;
  const scale = match[2]?.toLowerCase() === 'k' ? 1e3 : match[2]?.toLowerCase() === 'm' ? 1e6 : 1;
  const count = Math.round(Number(match[1]) * scale);
  return count >= 1 && count <= 50_000_000 ? count : null;
}

/** A named dataset: `locomo`, `msmarco` or `synthetic:N`. */
export function loadDataset(name: string, options: DatasetOptions): BenchDataset {
  const [kind, arg] = splitName(name);
  if (kind === 'synthetic') {
    const count = arg === undefined ? null : parseCount(arg);
    if (count === null) throw new MemexError('MEMEX_INVALID_INPUT', `--dataset synthetic takes a row count, like synthetic:10000, synthetic:100k or synthetic:1m, not ${name}`);
    if (count <= options.queries) throw new MemexError('MEMEX_INVALID_INPUT', `--dataset ${name} needs more rows than its ${options.queries} queries`);
    return syntheticDataset(count, options);
  }
  const evalDir = options.evalDir ?? defaultEvalDir();
  if (kind === 'locomo') return locomoDataset(arg ?? join(evalDir, 'locomo', 'locomo10.json'), options);
  if (kind === 'msmarco') return msmarcoDataset(arg ?? join(evalDir, 'retrieval', 'msmarco-subset-agentset'), options);
  throw new MemexError('MEMEX_INVALID_INPUT', `unknown dataset ${name}: use ${DATASET_KINDS.join(', ')} (or leave --dataset out to bench the data dir's own vectors)`);
}

function splitName(name: string): [string, string | undefined] {
  const at = name.indexOf(':');
  return at < 0 ? [name.toLowerCase(), undefined] : [name.slice(0, at).toLowerCase(), name.slice(at + 1)];
}

function missing(what: string, path: string): MemexError {
  return new MemexError('MEMEX_DATASET_NOT_FOUND', `${what} is not at ${path}`, { details: { path } });
}

// ---------------------------------------------------------------- synthetic

const NAMES = ['Ada', 'Bruno', 'Chen', 'Dana', 'Emeka', 'Farah', 'Goran', 'Hana', 'Ines', 'Jonas', 'Kemal', 'Lena', 'Mateo', 'Noor', 'Oskar', 'Priya'];
const THINGS = ['invoice', 'roof repair', 'garden', 'train ticket', 'piano lesson', 'passport', 'birthday party', 'database migration', 'bicycle', 'recipe', 'tax return', 'camping trip', 'job interview', 'dentist appointment', 'book club', 'server outage'];
const PLACES = ['Lisbon', 'the office', 'the market', 'Kyoto', 'the library', 'the lake', 'Berlin', 'the clinic', 'the station', 'the park'];
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday', 'next week', 'last month', 'tomorrow'];
const FEELINGS = ['worried about', 'happy with', 'surprised by', 'done with', 'unsure about', 'excited about'];
type Turn = (name: string, thing: string, place: string, day: string, feeling: string) => string;

const USER_TURNS: Turn[] = [
  (n: string, t: string, p: string, d: string, f: string) => `${n} told me the ${t} is due ${d}, and I am ${f} it.`,
  (n: string, t: string, p: string, d: string) => `Can you remind me what ${n} said about the ${t} in ${p} on ${d}?`,
  (n: string, t: string, p: string, d: string, f: string) => `I went to ${p} with ${n} ${d} to sort out the ${t}; I am ${f} how it went.`,
  (n: string, t: string, p: string) => `The ${t} costs more than we planned, so ${n} wants to move it to ${p}.`,
];
const ASSISTANT_TURNS: Turn[] = [
  (n: string, t: string, p: string, d: string) => `Noted: the ${t} with ${n}, ${d}, in ${p}. I will keep it in mind.`,
  (n: string, t: string, p: string) => `Earlier you said ${n} handles the ${t}; ${p} might be the easier place for it.`,
  (n: string, t: string, _p: string, d: string, f: string) => `It sounds like you are ${f} the ${t}. Should I ask ${n} before ${d}?`,
];
const QUESTIONS: Turn[] = [
  (n: string, t: string) => `What did ${n} say about the ${t}?`,
  (_n: string, t: string, p: string) => `When was the ${t} in ${p}?`,
  (n: string, t: string) => `How do I feel about the ${t} with ${n}?`,
];

function pick<T>(random: Random, list: readonly T[]): T {
  return list[Math.floor(random.next() * list.length)] as T;
}

/** Chat-like turns from a small grammar: names, things, places and days that recur across sessions. */
function syntheticSessions(messages: number, questions: number, seed: number): { sessions: BenchSession[]; questions: string[] } {
  const random = new Random(seed);
  const slots = (): [string, string, string, string, string] => [pick(random, NAMES), pick(random, THINGS), pick(random, PLACES), pick(random, DAYS), pick(random, FEELINGS)];
  const sessions: BenchSession[] = [];
  for (let made = 0; made < messages; ) {
    const turns = Math.min(SESSION_TURNS, messages - made);
    const session: BenchSession = { title: `Synthetic chat ${sessions.length + 1}`, messages: [] };
    for (let i = 0; i < turns; i++) {
      const user = i % 2 === 0;
      session.messages.push({ role: user ? 'user' : 'assistant', content: pick(random, user ? USER_TURNS : ASSISTANT_TURNS)(...slots()) });
    }
    sessions.push(session);
    made += turns;
  }
  return { sessions, questions: Array.from({ length: questions }, () => pick(random, QUESTIONS)(...slots())) };
}

function syntheticDataset(count: number, options: DatasetOptions): BenchDataset {
  const dimension = options.dimension ?? 384;
  const seed = options.seed ?? SEED;
  const source = new ClusteredSource(dimension, seed);
  const rows = new Float32Array(count * dimension);
  source.fill(rows, new Random(seed + 1));
  const queries = new Float32Array(options.queries * dimension);
  source.fill(queries, new Random(seed + 2));
  const messages = Math.min(count, options.maxMessages);
  const chat = syntheticSessions(messages, Math.min(options.queries, 1000), seed + 3);
  return {
    name: `synthetic:${count}`,
    description: `synthetic: ${count.toLocaleString('en-US')} clustered ${dimension}-d unit vectors, and ${messages.toLocaleString('en-US')} generated chat turns`,
    vectorSource: `${count.toLocaleString('en-US')} seeded draws from a mixture shaped like sentence embeddings (${ClusteredSource.TOPICS} topics, ${ClusteredSource.CLUSTERS.toLocaleString('en-US')} clusters of Zipf-like size, isotropic noise); queries are fresh draws`,
    vectors: { dimension, rows, count, queries, queryCount: options.queries },
    ...chat,
  };
}

// ---------------------------------------------------------------- LoCoMo and MS MARCO

function spread<T>(items: readonly T[], count: number): T[] {
  if (count >= items.length) return [...items];
  return Array.from({ length: count }, (_, i) => items[Math.floor((i * items.length) / count)] as T);
}

function capSessions(sessions: BenchSession[], maxMessages: number): BenchSession[] {
  const kept: BenchSession[] = [];
  let left = maxMessages;
  for (const session of sessions) {
    if (left <= 0) break;
    const messages = session.messages.slice(0, left);
    kept.push({ ...session, messages });
    left -= messages.length;
  }
  return kept;
}

function locomoDataset(path: string, options: DatasetOptions): BenchDataset {
  if (!existsSync(path)) throw missing('LoCoMo (locomo10.json)', path);
  let samples: { sample_id: string; conversation: Record<string, unknown>; qa?: { question?: unknown }[] }[];
  try {
    samples = JSON.parse(readFileSync(path, 'utf8')) as typeof samples;
    if (!Array.isArray(samples)) throw new Error('not a list of conversations');
  } catch (cause) {
    throw new MemexError('MEMEX_INVALID_INPUT', `${path} is not LoCoMo's JSON: ${(cause as Error).message}`, { cause });
  }
  const sessions: BenchSession[] = [];
  for (const sample of samples) {
    const c = sample.conversation ?? {};
    for (let n = 1; Array.isArray(c[`session_${n}`]); n++) {
      const turns = c[`session_${n}`] as { speaker?: unknown; text?: unknown }[];
      const messages = turns
        .filter((t) => typeof t.text === 'string' && t.text.trim() !== '')
        .map((t) => ({ role: t.speaker === c.speaker_a ? ('user' as const) : ('assistant' as const), content: `${String(t.speaker)}: ${String(t.text)}` }));
      if (messages.length > 0) sessions.push({ title: `${sample.sample_id} session ${n}`, messages });
    }
  }
  const questions = samples.flatMap((s) => (s.qa ?? []).map((q) => q.question)).filter((q): q is string => typeof q === 'string' && q.trim() !== '');
  const rows = sessions.flatMap((s) => s.messages.map((m) => m.content));
  const queries = spread(questions, options.queries);
  return {
    name: 'locomo',
    description: `LoCoMo: ${sessions.length} sessions of 10 long conversations, ${rows.length.toLocaleString('en-US')} turns, ${questions.length.toLocaleString('en-US')} questions`,
    vectorSource: `the ${rows.length.toLocaleString('en-US')} turns and ${queries.length.toLocaleString('en-US')} of the questions, embedded with the configured model`,
    texts: { rows, queries },
    sessions: capSessions(sessions, options.maxMessages),
    questions: spread(questions, Math.min(options.queries, 1000)),
  };
}

function jsonLines(path: string): { text?: unknown; title?: unknown }[] {
  if (!existsSync(path)) throw missing('MS MARCO', path);
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as { text?: unknown; title?: unknown };
      } catch (cause) {
        throw new MemexError('MEMEX_INVALID_INPUT', `${path} line ${i + 1} is not JSON`, { cause });
      }
    });
}

function msmarcoDataset(dir: string, options: DatasetOptions): BenchDataset {
  const passages = jsonLines(join(dir, 'corpus.jsonl'))
    .map((p) => (typeof p.text !== 'string' ? '' : typeof p.title === 'string' && p.title ? `${p.title}\n${p.text}` : p.text))
    .filter((t) => t.trim() !== '');
  const questions = jsonLines(join(dir, 'queries.jsonl'))
    .map((q) => (typeof q.text === 'string' ? q.text : ''))
    .filter((q) => q.trim() !== '');
  // Passages are documents, not chat: they go in as a user's messages, 50 to a session.
  const sessions: BenchSession[] = [];
  for (let i = 0; i < passages.length; i += 50) sessions.push({ title: `MS MARCO passages ${i + 1}-${Math.min(passages.length, i + 50)}`, messages: passages.slice(i, i + 50).map((content) => ({ role: 'user', content })) });
  const queries = spread(questions, options.queries);
  return {
    name: 'msmarco',
    description: `MS MARCO subset: ${passages.length.toLocaleString('en-US')} passages, ${questions.length.toLocaleString('en-US')} queries`,
    vectorSource: `the ${passages.length.toLocaleString('en-US')} passages and ${queries.length.toLocaleString('en-US')} queries, embedded with the configured model`,
    texts: { rows: passages, queries },
    sessions: capSessions(sessions, options.maxMessages),
    questions: spread(questions, Math.min(options.queries, 1000)),
  };
}

// ---------------------------------------------------------------- a user's own data

/**
 * A user's stored vector rows (read, never changed), with `queries` of them held out as queries
 * (spread evenly, so no session dominates), and up to `maxMessages` of the user's messages (their
 * text) for the end-to-end part, with the held-out rows' messages' first sentences as questions.
 */
/** What reading a user's data takes: the library's `sessions.list`, `vectors.read` and `messages.stream`. */
export interface UserDataSource {
  listSessions(userId: string, options: SessionListOptions): Promise<SessionPage>;
  readVectors(userId: string, sessionId: string): Promise<SessionVectorData>;
  streamMessages(userId: string, sessionId: string): AsyncIterable<Message>;
}

export async function userDataset(store: UserDataSource, userId: string, options: DatasetOptions, onProgress?: (done: number, total: number) => void): Promise<BenchDataset> {
  const sessionIds: string[] = [];
  for (let offset = 0; ; ) {
    const page = await store.listSessions(userId, { limit: 200, offset, archived: 'exclude', origin: 'all' });
    sessionIds.push(...page.sessions.map((s) => s.id));
    offset += page.sessions.length;
    if (page.sessions.length === 0 || offset >= page.total) break;
  }
  const parts: Float32Array[] = [];
  let dimension = 0;
  let count = 0;
  const sessions: BenchSession[] = [];
  let messages = 0;
  for (const [i, sessionId] of sessionIds.entries()) {
    const data = await store.readVectors(userId, sessionId);
    if (data.vectors.length > 0 && data.dimension) {
      if (dimension === 0) dimension = data.dimension;
      if (data.dimension === dimension) {
        parts.push(data.vectors);
        count += data.vectors.length / dimension;
      }
    }
    if (messages < options.maxMessages) {
      const session: BenchSession = { title: sessionId, messages: [] };
      for await (const message of store.streamMessages(userId, sessionId)) {
        if (messages >= options.maxMessages) break;
        if ((message.role !== 'user' && message.role !== 'assistant') || message.content.trim() === '') continue;
        session.messages.push({ role: message.role, content: message.content });
        messages++;
      }
      if (session.messages.length > 0) sessions.push(session);
    }
    onProgress?.(i + 1, sessionIds.length);
  }
  const queryCount = Math.min(options.queries, Math.floor(count / 10));
  if (count < 20 || queryCount < 1) {
    throw new MemexError('MEMEX_INVALID_INPUT', `user ${userId} has ${count} vector rows: too few to benchmark (at least 20); add messages, or bench a dataset (--dataset synthetic:10000, locomo, msmarco)`);
  }
  const all = new Float32Array(count * dimension);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  const held = new Set(spread(Array.from({ length: count }, (_, i) => i), queryCount));
  const rows = new Float32Array((count - held.size) * dimension);
  const queries = new Float32Array(held.size * dimension);
  let r = 0;
  let q = 0;
  for (let i = 0; i < count; i++) {
    const row = all.subarray(i * dimension, (i + 1) * dimension);
    if (held.has(i)) queries.set(row, q++ * dimension);
    else rows.set(row, r++ * dimension);
  }
  const texts = sessions.flatMap((s) => s.messages.map((m) => m.content));
  const questions = spread(texts, Math.min(options.queries, 1000)).map((t) => firstSentence(t));
  return {
    name: `user:${userId}`,
    description: `user ${userId}'s data: ${sessionIds.length.toLocaleString('en-US')} sessions, ${count.toLocaleString('en-US')} vector rows (${dimension}-d)`,
    vectorSource: `the user's ${count.toLocaleString('en-US')} stored rows, ${held.size.toLocaleString('en-US')} of them held out as queries (spread evenly); end to end: ${messages.toLocaleString('en-US')} of the user's messages in a temporary data dir`,
    vectors: { dimension, rows, count: count - held.size, queries, queryCount: held.size },
    sessions,
    questions,
  };
}

function firstSentence(text: string): string {
  const sentence = /^[\s\S]{8,200}?[.!?](\s|$)/.exec(text)?.[0] ?? text.slice(0, 200);
  return sentence.trim() || text.slice(0, 200);
}
