import { MemexError, SearchOptionsSchema, importedSessionParts, parseInput, type Config, type EmbeddingModel, type ParsedSearchOptions, type SearchOptions } from '../core/index.js';
import { normalizeInPlace, type Embedder } from '../embedding/index.js';
import type { Store } from '../store/index.js';
import type { IndexProgress, IndexStatus, SearchBackend, SearchHit, SearchReport } from './backend.js';
import { FlatSearch, type IndexWarning } from './flat/flat-search.js';
import { DEFAULT_UNDERSTANDING, boostSpeakers, feedbackQuery, namesIn, understand, vectorTexts, type Understanding } from './query.js';
import { rerank, type Reranker, type RerankOptions } from './rerank.js';

export interface RecallOptions {
  store: Store;
  /** The embedder, loaded on first use; its model is the one the data dir records. */
  embedder: () => Promise<Embedder>;
  config: Pick<Config, 'index' | 'search' | 'fsync'>;
  onWarning: (warning: IndexWarning) => void;
  /** Where the search runs; by default the flat files' in-memory index (`FlatSearch`) over `store`. */
  backend?: SearchBackend;
  /** Reorders every search's best candidates unless a search says otherwise (see rerank.ts); none by default. */
  reranker?: Reranker;
}

/** A search's options: the validated ones, and the reranker (a function: library callers only). */
export type RecallSearchOptions = SearchOptions & RerankOptions;

/**
 * Cross-session recall: validates the query and its options, embeds the query (remembering recent
 * ones), and hands the search to the backend, one piece of work per user at a time (a flat index is
 * synced and searched by one task; users are independent).
 */
export class Recall {
  private readonly turns = new Map<string, Promise<unknown>>();
  private readonly queryVectors = new Map<string, Float32Array>();
  private readonly embedding = new Map<string, Promise<Float32Array | null>>();
  private readonly backend: SearchBackend;

  constructor(private readonly options: RecallOptions) {
    this.backend = options.backend ?? new FlatSearch({ store: options.store, config: options.config, onWarning: options.onWarning });
  }

  async search(userId: string, query: string, input: RecallSearchOptions = {}): Promise<SearchReport> {
    const { reranker: asked, rerankCandidates, ...rest } = input;
    const options = parseInput(SearchOptionsSchema, rest, 'search options');
    const reranker = asked === undefined ? this.options.reranker : asked;
    if (reranker !== undefined && reranker !== null && typeof reranker !== 'function') throw new MemexError('MEMEX_INVALID_INPUT', 'invalid search options: reranker must be a function or null');
    if (rerankCandidates !== undefined && !(Number.isInteger(rerankCandidates) && rerankCandidates >= 1 && rerankCandidates <= 1000)) {
      throw new MemexError('MEMEX_INVALID_INPUT', 'invalid search options: rerankCandidates must be an integer from 1 to 1000', { details: { issues: [{ path: 'rerankCandidates', message: 'an integer from 1 to 1000' }] } });
    }
    if (typeof query !== 'string' || query.trim().length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'the query is empty');
    if (query.length > 10_000) throw new MemexError('MEMEX_INVALID_INPUT', `the query has ${query.length} characters; the limit is 10000`);
    const embedder = await this.options.embedder();
    const understood = understand(query, options);
    const vector = options.mode === 'lexical' ? null : await this.queryVector(embedder, understood.vectorTexts);
    const model = { model: embedder.modelId, dimension: embedder.dimension };
    // With a reranker the backend ranks a larger pool; the reranker runs outside the user's turn, so
    // a slow one does not hold up indexing or other searches of the user.
    const pool = reranker ? Math.max(options.k, rerankCandidates ?? this.options.config.search.rerankCandidates) : options.k;
    const report = await this.turn(userId, async () => {
      let text = understood.lexical;
      const { feedback, feedbackDocs } = understood.settings;
      // The second hop: the first lexical pass's top chunks name what the question did not.
      if (feedback === true && understood.options.mode !== 'vector') text = await this.feedbackText(userId, text, model, understood.options, understood.settings);
      // Speakers re-rank the hits after the backend: a deeper list gives them something to lift.
      const names = understood.settings.speakers === 'boost' && !options.mmr ? namesIn(query) : new Set<string>();
      const k = names.size > 0 ? Math.min(1000, Math.ceil(pool * understood.settings.speakerDepth)) : pool;
      let found = await this.backend.search(userId, { text, vector, model, boost: understood.boost }, { ...understood.options, k });
      if (feedback === 'documents' && understood.options.mode !== 'vector') {
        const coherence = options.contextCoherence ?? this.options.config.search.contextCoherence;
        const expanded = (await this.mostlyDocuments(userId, found.hits.slice(0, feedbackDocs), model, coherence)) ? await this.feedbackText(userId, text, model, understood.options, understood.settings) : text;
        if (expanded !== text) found = await this.backend.search(userId, { text: expanded, vector, model, boost: understood.boost }, { ...understood.options, k });
      }
      if (names.size === 0) return found;
      return { ...found, hits: boostSpeakers(found.hits, names, 1 + understood.settings.speakerWeight).slice(0, pool) };
    });
    const hits = await this.withImports(userId, report.hits);
    return { ...report, hits: reranker ? await rerank(reranker, query, hits, options.k) : hits };
  }

  /**
   * Which of the user's sessions are conversations (turn-context.ts): those that get the contextual
   * list and no document feedback. `coherence` defaults to `search.contextCoherence`.
   */
  async conversations(userId: string, sessionIds: readonly string[], coherence = this.options.config.search.contextCoherence): Promise<Set<string>> {
    const embedder = await this.options.embedder();
    const model = { model: embedder.modelId, dimension: embedder.dimension };
    return this.turn(userId, () => this.backend.conversations(userId, sessionIds, { model, coherence }));
  }

  /**
   * Whether most of these hits are documents: file chunks, or in sessions that are not
   * conversations (`understand.feedback: 'documents'`). Measured (README "Query understanding"):
   * feedback raises MS MARCO's nDCG@10 and costs LoCoMo and MSC, whose sessions are conversations,
   * so it runs where the hits are documents, and costs a conversation's search one lookup.
   */
  private async mostlyDocuments(userId: string, top: readonly SearchHit[], model: EmbeddingModel, coherence: number): Promise<boolean> {
    if (top.length === 0) return false;
    // A hit in the contextual list is in a conversation: when those are half, there is nothing to look up.
    const unknown = top.filter((hit) => hit.scores.context === null);
    if ((top.length - unknown.length) * 2 >= top.length) return false;
    const conversations = await this.backend.conversations(
      userId,
      unknown.map((hit) => hit.sessionId),
      { model, coherence },
    );
    return unknown.filter((hit) => hit.source.kind === 'file' || !conversations.has(hit.sessionId)).length * 2 > top.length;
  }

  /** The lexical query with pseudo-relevance feedback: the terms a lexical pass's top `feedbackDocs` chunks share (query.ts `feedbackQuery`). */
  private async feedbackText(
    userId: string,
    text: string,
    model: EmbeddingModel,
    options: ParsedSearchOptions,
    { feedbackDocs, feedbackTerms }: Pick<Understanding, 'feedbackDocs' | 'feedbackTerms'>,
  ): Promise<string> {
    const { mmr: _mmr, ...plain } = options;
    const first = await this.backend.search(userId, { text, vector: null, model }, { ...plain, mode: 'lexical', k: feedbackDocs });
    return feedbackQuery(text, first.hits.map((hit) => hit.text), this.options.config.search, feedbackTerms);
  }

  /**
   * Hits from imported conversations say where they came from: the service, the conversation's id
   * and title (the original time is the chunk's `source.createdAt`). Native hits cost nothing: an
   * imported session's id names it (core/ids.ts).
   */
  private async withImports(userId: string, hits: SearchHit[]): Promise<SearchHit[]> {
    const imported = new Map<string, SearchHit['imported'] | null>();
    for (const hit of hits) if (importedSessionParts(hit.sessionId) && !imported.has(hit.sessionId)) imported.set(hit.sessionId, null);
    if (imported.size === 0) return hits;
    for (const sessionId of imported.keys()) {
      const session = await this.options.store.getSession(userId, sessionId).catch(() => null);
      if (session?.origin.kind === 'imported') imported.set(sessionId, { source: session.origin.source, conversationId: session.origin.conversationId, title: session.title });
    }
    return hits.map((hit) => {
      const origin = imported.get(hit.sessionId);
      return origin ? { ...hit, imported: origin } : hit;
    });
  }

  /**
   * The query's embedding, remembered for the last few hundred queries: a chat app searches and
   * then builds a context window for the same text, and embedding it is most of a search's time.
   * Several texts (`understand.questionWords: 'both'`) go to the model in one call and give the
   * unit-length mean of their rows.
   */
  private async queryVector(embedder: Embedder, texts: readonly string[]): Promise<Float32Array | null> {
    const key = `${embedder.modelId}\u0000${texts.join('\u0000')}`;
    const known = this.queryVectors.get(key);
    if (known) return known;
    // A query being embedded (by `warm`) is waited for, not embedded twice.
    let pending = this.embedding.get(key);
    if (!pending) {
      pending = embedder.embed(texts, { urgent: true }).then((rows) => (rows.length > 1 ? meanOf(rows, embedder.dimension) : (rows[0] ?? null)));
      this.embedding.set(key, pending);
      void pending.catch(() => undefined).finally(() => this.embedding.delete(key));
    }
    const vector = await pending;
    if (vector) {
      if (this.queryVectors.size >= 256) this.queryVectors.delete(this.queryVectors.keys().next().value as string);
      this.queryVectors.set(key, vector);
    }
    return vector;
  }

  /**
   * Embeds a query that a search will soon run (a chat turn's text, while the turn is being
   * stored), so the search finds its vector ready. Failures are left for the search to report.
   */
  warm(query: string): void {
    if (query.trim().length === 0 || query.length > 10_000) return;
    void this.options
      .embedder()
      .then((embedder) => this.queryVector(embedder, vectorTexts(query, DEFAULT_UNDERSTANDING)))
      .catch(() => undefined);
  }

  /** Brings the user's index up to date now (say, before timing searches), with progress. */
  async prepare(userId: string, options: { onProgress?: (progress: IndexProgress) => void } = {}): Promise<IndexStatus> {
    const model = await this.model();
    return this.turn(userId, () => this.backend.prepare(userId, { model, ...options }));
  }

  /** Throws the saved index away and builds it again from the stored rows. */
  async rebuild(userId: string, options: { onProgress?: (progress: IndexProgress) => void } = {}): Promise<IndexStatus> {
    const model = await this.model();
    return this.turn(userId, () => this.backend.rebuild(userId, { model, ...options }));
  }

  /** After rows were added to a session: an index already in memory takes them in now. */
  async noteIndexed(userId: string, sessionId: string): Promise<void> {
    const model = await this.model();
    await this.turn(userId, () => this.backend.noteIndexed(userId, sessionId, { model }));
  }

  /** Drops a user's index from memory (their folder, index included, is gone). */
  forget(userId: string): void {
    this.backend.forget(userId);
  }

  /** Waits for the work under way, then saves every index with unsaved changes. */
  async close(): Promise<void> {
    await Promise.all(this.turns.values());
    await this.backend.close();
  }

  private async model(): Promise<{ model: string; dimension: number }> {
    const embedder = await this.options.embedder();
    return { model: embedder.modelId, dimension: embedder.dimension };
  }

  /** Runs `work` after every earlier piece of work on this user's index. */
  private turn<T>(userId: string, work: () => Promise<T>): Promise<T> {
    const before = this.turns.get(userId) ?? Promise.resolve();
    const result = before.then(work, work);
    const settled = result.catch(() => undefined);
    this.turns.set(userId, settled);
    void settled.then(() => {
      if (this.turns.get(userId) === settled) this.turns.delete(userId);
    });
    return result;
  }
}

/** The unit-length mean of unit rows. */
function meanOf(rows: readonly Float32Array[], dimension: number): Float32Array {
  const mean = new Float32Array(dimension);
  for (const row of rows) for (let i = 0; i < dimension; i++) mean[i] = (mean[i] as number) + (row[i] as number);
  return normalizeInPlace(mean);
}
