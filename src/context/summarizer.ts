import type { Message, Summary, SummaryItem } from '../core/index.js';
import { dot } from '../index/vector-index.js';
import { splitSentences, wordCount } from './sentences.js';
import type { Tokenizer } from './tokenizer.js';

/** The stored vectors of the messages being summarized: per message, its chunks' spans and rows. */
export interface SummaryVectors {
  model: string;
  dimension: number;
  chunks: ReadonlyMap<string, readonly { start: number; end: number; vector: Float32Array }[]>;
}

export interface SummarizeInput {
  /** The summary so far; null for the first. `messages` continue right after what it covers. */
  previous: Summary | null;
  /** The next messages to fold in, oldest first. */
  messages: readonly Message[];
  /** The summary's size cap, in `tokenizer` tokens. */
  maxTokens: number;
  tokenizer: Tokenizer;
  /** The embeddings of `messages`' chunks (read from the session's vector rows on first call). */
  vectors: () => Promise<SummaryVectors>;
  signal?: AbortSignal;
}

/** What a summarizer returns; the context manager adds coverage, counts and time and saves it. */
export interface SummaryDraft {
  text: string;
  model?: string;
  items?: SummaryItem[];
  centroid?: { sum: string; count: number };
}

/**
 * Folds older turns into a session's rolling summary. Called only with turns the summary does not
 * cover yet, so a summary grows by extension and is never recomputed from scratch. The offline
 * default is extractive; `modelSummarizer` wraps a caller's LLM.
 */
export interface Summarizer {
  readonly method: 'extractive' | 'model';
  extend(input: SummarizeInput): Promise<SummaryDraft>;
}

/** What a caller's LLM summarizer gets: the summary so far and the turns to fold into it. */
export interface ModelSummaryRequest {
  previous: string | null;
  messages: readonly { role: Message['role']; content: string; createdAt: string }[];
  maxTokens: number;
  signal?: AbortSignal;
}

/**
 * A summarizer backed by a caller's model: `summarize` gets the summary so far and the turns that
 * just left the window, and returns the new summary (clipped to the cap if longer).
 *
 * ```ts
 * const summarizer = modelSummarizer('gpt-4o-mini', async ({ previous, messages, maxTokens }) =>
 *   callMyLlm(`Update this summary (${maxTokens} tokens at most):\n${previous ?? ''}`, messages));
 * const memex = await Memex.open({ dataDir, summarizer });
 * ```
 */
export function modelSummarizer(model: string, summarize: (request: ModelSummaryRequest) => Promise<string>): Summarizer {
  return {
    method: 'model',
    async extend({ previous, messages, maxTokens, tokenizer, signal }) {
      const text = await summarize({
        previous: previous?.text ?? null,
        messages: messages.map((m) => ({ role: m.role, content: m.content, createdAt: m.createdAt })),
        maxTokens,
        ...(signal ? { signal } : {}),
      });
      if (typeof text !== 'string') throw new TypeError('the summarizer returned no text');
      return { text: tokenizer.truncate(text.trim(), maxTokens), model };
    },
  };
}

/**
 * A model summarizer that survives its model: when `primary` fails (the model is down, slow or
 * answers garbage), that one extension is made by `fallback` (the extractive summarizer) instead
 * of failing the context window, and `onFallback` is told why. The previous model summary is kept
 * verbatim and the new turns' key sentences are added after it, half the cap each at most, so
 * nothing the model wrote is lost; the next extension hands the model both to rewrite. A caller's
 * cancel is not a failure of the model and is passed on.
 */
export function withFallback(primary: Summarizer, fallback: Summarizer, onFallback: (error: unknown, sessionId: string | null) => void): Summarizer {
  return {
    method: primary.method,
    async extend(input) {
      try {
        return await primary.extend(input);
      } catch (error) {
        if (input.signal?.aborted) throw error;
        onFallback(error, input.messages[0]?.sessionId ?? null);
        const kept = input.previous?.text.trim() ?? '';
        const room = kept === '' ? input.maxTokens : Math.floor(input.maxTokens / 2);
        const draft = await fallback.extend({ ...input, previous: null, maxTokens: room });
        const before = kept === '' ? '' : input.tokenizer.truncate(kept, Math.max(0, input.maxTokens - input.tokenizer.count(draft.text) - 2));
        const text = [before, draft.text].filter((part) => part !== '').join('\n\n');
        return { text: input.tokenizer.truncate(text, input.maxTokens), ...(draft.model !== undefined ? { model: draft.model } : {}) };
      }
    },
  };
}

export interface ExtractiveOptions {
  /**
   * Maximal marginal relevance trade-off between centrality and diversity: 1 keeps the most central
   * sentences even when they repeat each other, 0 only avoids repeats. 0.7 keeps the thread while
   * covering different topics of a long session.
   */
  lambda?: number;
  /** Sentences with fewer words say too little to keep ("Thanks!", "Hey Mel!"). */
  minWords?: number;
  /** A kept sentence is clipped to this many tokens, so one run-on sentence cannot fill the summary. */
  sentenceTokens?: number;
}

interface Candidate {
  item: SummaryItem;
  vector: Float32Array;
  /** Order in the conversation: previous items first, then the new sentences in order. */
  order: number;
  weight: number;
  tokens: number;
}

/**
 * The offline default: keeps the covered turns' most central sentences, diversified, under the cap.
 * A sentence's vector is the stored embedding of the chunk it sits in; centrality is its cosine to
 * the running centroid of every chunk covered so far (kept in the summary as a sum and a count),
 * weighted down for sentences under eight words. Each extension re-ranks the sentences kept so far
 * together with the new turns' sentences (maximal marginal relevance), so its cost follows the new
 * turns and the cap, not the length of the session.
 */
export class ExtractiveSummarizer implements Summarizer {
  readonly method = 'extractive' as const;
  private readonly lambda: number;
  private readonly minWords: number;
  private readonly sentenceTokens: number;

  constructor(options: ExtractiveOptions = {}) {
    this.lambda = options.lambda ?? 0.7;
    this.minWords = options.minWords ?? 4;
    this.sentenceTokens = options.sentenceTokens ?? 80;
  }

  async extend({ previous, messages, maxTokens, tokenizer, vectors }: SummarizeInput): Promise<SummaryDraft> {
    const { model, dimension, chunks } = await vectors();
    const sum = previous?.centroid ? decodeVector(previous.centroid.sum, dimension) : new Float32Array(dimension);
    let count = previous?.centroid?.count ?? 0;
    const pool: Candidate[] = [];
    for (const item of previous?.items ?? []) {
      const vector = decodeVector(item.vector, dimension);
      pool.push({ item, vector, order: pool.length, weight: lengthWeight(item.text), tokens: tokenizer.count(lineOf(item)) });
    }
    for (const message of messages) {
      const parts = chunks.get(message.id) ?? [];
      for (const part of parts) {
        addInto(sum, part.vector);
        count++;
      }
      if (message.role !== 'user' && message.role !== 'assistant') continue;
      for (const sentence of splitSentences(message.content)) {
        if (wordCount(sentence.text) < this.minWords) continue;
        const part = parts.find((p) => sentence.start >= p.start && sentence.start < p.end) ?? parts[0];
        if (!part) continue;
        const clipped = tokenizer.truncate(sentence.text, this.sentenceTokens);
        const text = clipped.length < sentence.text.length ? `${clipped.trimEnd()}…` : clipped;
        const item: SummaryItem = { messageId: message.id, role: message.role, createdAt: message.createdAt, text, score: 0, vector: encodeVector(part.vector) };
        pool.push({ item, vector: part.vector, order: pool.length, weight: lengthWeight(text), tokens: tokenizer.count(lineOf(item)) });
      }
    }
    const centroid = normalized(sum);
    const kept = selectMmr(pool, centroid, maxTokens - tokenizer.count(SUMMARY_HEADER), this.lambda).sort((a, b) => a.order - b.order);
    // Day headings and line joins add a little: drop the least central sentences until the whole fits.
    let text = renderSummary(kept.map((c) => c.item));
    while (kept.length > 0 && tokenizer.count(text) > maxTokens) {
      const weakest = kept.reduce((low, c) => (c.item.score < low.item.score ? c : low));
      kept.splice(kept.indexOf(weakest), 1);
      text = renderSummary(kept.map((c) => c.item));
    }
    return { text, model, items: kept.map((c) => c.item), centroid: { sum: encodeVector(sum), count } };
  }
}

/**
 * Greedy maximal marginal relevance under a token cap: each step takes the candidate with the best
 * `lambda * relevance - (1 - lambda) * (its highest similarity to one already taken)` that still
 * fits. Similarities to the taken set are updated incrementally: O(candidates x taken x dimension).
 */
function selectMmr(pool: Candidate[], centroid: Float32Array, cap: number, lambda: number): Candidate[] {
  const relevance = pool.map((c) => dot(c.vector, centroid) * c.weight);
  pool.forEach((c, i) => (c.item = { ...c.item, score: round(relevance[i] as number) }));
  const closest = new Float64Array(pool.length).fill(-1);
  const kept: Candidate[] = [];
  let used = 0;
  // The candidates still open. One that no longer fits never will (`used` only grows): it leaves at
  // once, before any similarity is computed for it. Picking from the rest is unchanged by that.
  let open = pool.map((_, i) => i).filter((i) => (pool[i] as Candidate).tokens <= cap);
  while (open.length > 0) {
    let best = -1;
    let bestValue = -Infinity;
    for (const i of open) {
      const value = lambda * (relevance[i] as number) - (1 - lambda) * Math.max(0, closest[i] as number);
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    }
    const chosen = pool[best] as Candidate;
    used += chosen.tokens;
    kept.push(chosen);
    open = open.filter((i) => i !== best && (pool[i] as Candidate).tokens <= cap - used);
    for (const i of open) closest[i] = Math.max(closest[i] as number, dot((pool[i] as Candidate).vector, chosen.vector));
  }
  return kept;
}

export const SUMMARY_HEADER = 'Summary of the earlier conversation (key sentences from its older turns, oldest first):';

/** One kept sentence as a summary line. */
export function lineOf(item: Pick<SummaryItem, 'role' | 'text'>): string {
  return `- ${item.role}: ${item.text}`;
}

/** The summary as a window shows it: a header, then the sentences under the day they were said. */
export function renderSummary(items: readonly SummaryItem[]): string {
  if (items.length === 0) return '';
  const lines = [SUMMARY_HEADER];
  let day = '';
  for (const item of items) {
    const itemDay = item.createdAt.slice(0, 10);
    if (itemDay !== day) {
      lines.push(`${itemDay}:`);
      day = itemDay;
    }
    lines.push(lineOf(item));
  }
  return lines.join('\n');
}

function lengthWeight(text: string): number {
  return Math.min(1, wordCount(text) / 8);
}

function addInto(sum: Float32Array, vector: Float32Array): void {
  for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (vector[i] as number);
}

function normalized(vector: Float32Array): Float32Array {
  const norm = Math.sqrt(dot(vector, vector));
  return norm === 0 ? vector.slice() : vector.map((x) => x / norm);
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}

/** base64 of little-endian float32s: compact and exact in JSON. */
export function encodeVector(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

export function decodeVector(text: string, dimension: number): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== dimension * 4) throw new RangeError(`a summary vector has ${bytes.length / 4} dimensions, expected ${dimension}`);
  const vector = new Float32Array(dimension);
  new Uint8Array(vector.buffer).set(bytes);
  return vector;
}
