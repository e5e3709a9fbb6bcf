import type { TimeBoost } from './query.js';
import type { Chunk, ChunkSource, Config, EmbeddingModel, ImportSource, ParsedSearchOptions, SearchMode, Span } from '../core/index.js';

/**
 * The search seam. `Recall` (recall.ts) validates a query, embeds it, serialises work per user and
 * hands the rest to a backend:
 *
 * - `FlatSearch` (flat/): a per-user HNSW graph (hnswlib) + BM25 index in memory, synced from the
 *   flat-file store and saved under the user's folder as a cache;
 * - `PostgresSearch` (postgres/): pgvector HNSW and full-text search in the database, filters in SQL,
 *   row-level security for isolation; nothing kept in memory.
 *
 * Both collect vector and lexical candidates their own way and rank them with the one fusion of
 * fuse.ts, so RRF, weights, the minScore floor, recency, MMR and the tie-break are the same code.
 * test/index/search-conformance.ts is the suite both pass.
 */
export interface SearchBackend {
  /** One user's best chunks for a query; the options are already validated (SearchOptionsSchema). */
  search(userId: string, query: SearchQuery, options: ParsedSearchOptions): Promise<SearchReport>;
  /**
   * Which of the user's sessions are conversations, whose consecutive messages follow on from each
   * other at `coherence` (turn-context.ts `isConversation`); a session not found is none.
   */
  conversations(userId: string, sessionIds: readonly string[], options: BackendOptions & { coherence: number }): Promise<Set<string>>;
  /** Brings what the backend keeps for the user up to date now, and says what it holds. */
  prepare(userId: string, options: BackendOptions): Promise<IndexStatus>;
  /** Builds what the backend keeps for the user again from the stored rows. */
  rebuild(userId: string, options: BackendOptions): Promise<IndexStatus>;
  /** Rows were added to a session: a backend with state in memory takes them in. */
  noteIndexed(userId: string, sessionId: string, options: BackendOptions): Promise<void>;
  /** The user is gone: drop anything held for them. */
  forget(userId: string): void;
  /** Saves what needs saving and lets go of resources the backend owns. */
  close(): Promise<void>;
}

export interface SearchQuery {
  text: string;
  /** The query's embedding (unit length); null in lexical mode. */
  vector: Float32Array | null;
  /** The model the query was embedded with: the rows searched must be of it. */
  model: EmbeddingModel;
  /** Time ranges the query names (query.ts): chunks written in them rank higher (`boostInRange`). */
  boost?: TimeBoost | null;
}

export interface BackendOptions {
  model: EmbeddingModel;
  onProgress?: (progress: IndexProgress) => void;
}

export interface IndexProgress {
  phase: 'index';
  done: number;
  total: number;
}

/** What a backend holds for one user. */
export interface IndexStatus {
  userId: string;
  /** The folder of a saved index; null when nothing is saved outside the store (Postgres). */
  dir: string | null;
  model: string;
  rows: number;
  /** Rows removed but still in a graph (flat files, until compaction); 0 on Postgres. */
  removed: number;
  sessions: number;
}

/** One recalled chunk with where it came from and how each ranking saw it. */
export interface SearchHit {
  sessionId: string;
  chunkId: string;
  text: string;
  source: ChunkSource;
  span: Span;
  part: Chunk['part'];
  /** The score results are ordered by (fused, recency-weighted; before MMR re-ordering). */
  score: number;
  /**
   * How well the chunk matches the query, in [0, 1] and comparable across queries (unlike `score`,
   * which in hybrid mode comes from ranks): the larger of the lexical match's share of the query's
   * ideal BM25 score and the cosine's place above what unrelated text scores (the better of the
   * chunk's own cosine and its contextual one; fuse.ts `relevance`).
   * What `minRelevance` floors.
   */
  relevance: number;
  scores: {
    /** Cosine similarity to the query; null when the vector search did not return this chunk. */
    vector: number | null;
    vectorRank: number | null;
    /**
     * Cosine to the query of the chunk read with the turn before it (its unit-length sum with that
     * turn's vector), and its rank in that list; null when not in it, or when the chunk's session is
     * not a conversation whose turns follow on from each other (turn-context.ts).
     */
    context: number | null;
    contextRank: number | null;
    /**
     * The lexical score (BM25+, the same on both backends); null when the chunk shares no word with
     * the query (or was ranked too deep).
     */
    lexical: number | null;
    lexicalRank: number | null;
    /** The recency factor the score was multiplied by (1 without recency weighting). */
    recency: number;
  };
  /** For a chunk of an imported conversation: the service, its conversation id and title. */
  imported?: { source: ImportSource; conversationId: string; title: string | null };
}

export interface SearchReport {
  hits: SearchHit[];
  mode: SearchMode;
  /** How the vector candidates were found: graph walk, exact scan of the filtered rows, or none. */
  vectorPath: 'hnsw' | 'exact' | 'none';
  /** Rows the filters let through (all live rows without filters). */
  matching: number;
}

/** The config knobs every backend ranks with (index.* and search.* of the config). */
export interface SearchSettings {
  efSearch: number;
  exactBelow: number;
  rrfK: number;
  vectorWeight: number;
  lexicalWeight: number;
  contextWeight: number;
  contextCoherence: number;
  candidates: number;
  unrelatedCosine: number;
}

/** The ranking knobs of the config, as both backends read them. */
export function searchSettings(config: Pick<Config, 'index' | 'search'>): SearchSettings {
  const { index, search } = config;
  return {
    efSearch: index.efSearch,
    exactBelow: index.exactBelow,
    rrfK: search.rrfK,
    vectorWeight: search.vectorWeight,
    lexicalWeight: search.lexicalWeight,
    contextWeight: search.contextWeight,
    contextCoherence: search.contextCoherence,
    candidates: search.candidates,
    unrelatedCosine: search.unrelatedCosine,
  };
}
