import { MemexError, type Message, type Summary } from '../core/index.js';
import type { Embedder } from '../embedding/index.js';
import type { Store } from '../store/index.js';
import type { Summarizer, SummaryVectors } from './summarizer.js';
import type { Tokenizer } from './tokenizer.js';

export interface SummaryDeps {
  store: Store;
  summarizer: Summarizer;
  embedder: () => Promise<Embedder>;
  /** The cap a stored summary is kept under, in the tokenizer's tokens. */
  maxTokens: number;
}

export interface SummaryState {
  summary: Summary | null;
  /** Saves `summary` as the session's summary.json (when this call extended it). */
  commit(): Promise<void>;
  /** Messages this call folded in (0 when the stored summary already covered enough). */
  extended: number;
  /** Why the stored summary was set aside and begun again, when it was. */
  restarted: string | null;
}

/** Messages folded into the summary per summarizer call, so a long session's first summary is made in bounded pieces. */
const BATCH = 500;

/**
 * Makes the session's summary cover at least its first `through` messages, extending the stored
 * one by exactly the messages it does not cover yet; `commit` saves the result (a window that then
 * finds room for more turns shows them and hides their sentences from the summary). A summary that no
 * longer fits the session (its last covered message is gone, another summarizer or embedding
 * model made it) is begun again.
 */
export async function extendSummary(deps: SummaryDeps, userId: string, sessionId: string, through: number, tokenizer: Tokenizer, signal?: AbortSignal): Promise<SummaryState> {
  const { store, summarizer } = deps;
  let summary = await store.getSummary(userId, sessionId);
  let restarted: string | null = null;
  const embedder = summarizer.method === 'extractive' ? await deps.embedder() : null;
  if (summary) {
    restarted = await staleness(store, userId, sessionId, summary, summarizer, embedder);
    if (restarted) summary = null;
  }
  let covered = summary?.coveredMessages ?? 0;
  const start = covered;
  while (covered < through) {
    if (signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'building the context window was cancelled', { cause: signal.reason });
    const { messages } = await store.listMessages(userId, sessionId, { offset: covered, limit: Math.min(BATCH, through - covered) });
    const last = messages.at(-1);
    if (!last) break;
    const draft = await summarizer.extend({
      previous: summary,
      messages,
      maxTokens: deps.maxTokens,
      tokenizer,
      // A model summarizer may fall back to the extractive one, which needs them: load the embedder then.
      vectors: async () => vectorsOf(store, embedder ?? (await deps.embedder()), userId, sessionId, messages),
      ...(signal ? { signal } : {}),
    });
    covered += messages.length;
    summary = {
      v: 1,
      sessionId: last.sessionId,
      text: draft.text,
      coversThroughMessageId: last.id,
      coveredMessages: covered,
      method: summarizer.method,
      ...(draft.model !== undefined ? { model: draft.model } : {}),
      tokens: tokenizer.count(draft.text),
      encoding: tokenizer.encoding,
      updatedAt: new Date().toISOString(),
      ...(draft.items ? { items: draft.items } : {}),
      ...(draft.centroid ? { centroid: draft.centroid } : {}),
    };
  }
  const result = summary;
  const changed = covered > start || restarted !== null;
  return {
    summary,
    extended: covered - start,
    restarted,
    commit: async () => {
      if (changed) await store.setSummary(userId, sessionId, result);
    },
  };
}

async function staleness(store: Store, userId: string, sessionId: string, summary: Summary, summarizer: Summarizer, embedder: Embedder | null): Promise<string | null> {
  if (summary.method !== summarizer.method) return `it was made by the ${summary.method} summarizer`;
  if (embedder && summary.model !== embedder.modelId) return `it was ranked with ${summary.model ?? 'another model'}`;
  if (summary.coveredMessages === 0) return null;
  const { messages } = await store.listMessages(userId, sessionId, { offset: summary.coveredMessages - 1, limit: 1 });
  if (messages[0]?.id !== summary.coversThroughMessageId) return 'the messages it covers changed';
  return null;
}

/** The stored chunk vectors of `messages`; a message without rows yet is embedded whole, now. */
async function vectorsOf(store: Store, embedder: Embedder | null, userId: string, sessionId: string, messages: readonly Message[]): Promise<SummaryVectors> {
  if (!embedder) throw new MemexError('MEMEX_INTERNAL', 'a model summarizer asked for vectors');
  const stored = await store.readMessageVectors(userId, sessionId, messages.map((m) => m.id));
  const dimension = stored.dimension ?? embedder.dimension;
  const chunks = new Map<string, { start: number; end: number; vector: Float32Array }[]>();
  stored.lines.forEach((line, i) => {
    if (line.source.kind !== 'message') return;
    const list = chunks.get(line.source.messageId) ?? [];
    list.push({ start: line.span.start, end: line.span.end, vector: stored.vectors.subarray(i * dimension, (i + 1) * dimension) });
    chunks.set(line.source.messageId, list);
  });
  const missing = messages.filter((m) => !chunks.has(m.id) && m.content.trim().length > 0 && (m.role === 'user' || m.role === 'assistant'));
  if (missing.length > 0) {
    const rows = await embedder.embed(missing.map((m) => m.content));
    missing.forEach((m, i) => {
      const vector = rows[i];
      if (vector) chunks.set(m.id, [{ start: 0, end: m.content.length, vector }]);
    });
  }
  return { model: embedder.modelId, dimension, chunks };
}
