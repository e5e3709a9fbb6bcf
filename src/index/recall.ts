import { MemexError, SearchOptionsSchema, parseInput, type Config, type SearchOptions } from '../core/index.js';
import type { Embedder } from '../embedding/index.js';
import type { Store } from '../store/index.js';
import { DEFAULT_BM25 } from './lexical.js';
import { searchIndex, type SearchReport } from './search.js';
import { UserIndex, type IndexProgress, type RebuildReason, type UserIndexOptions } from './user-index.js';

/** The index was built from the session files instead of loaded; nothing was lost, it took time. */
export interface IndexWarning {
  kind: 'index-rebuilt';
  userId: string;
  reason: RebuildReason;
  problem: string | null;
  rows: number;
}

export interface RecallOptions {
  store: Store;
  /** The embedder, loaded on first use; its model is the one the data dir records. */
  embedder: () => Promise<Embedder>;
  config: Pick<Config, 'index' | 'search' | 'fsync'>;
  onWarning: (warning: IndexWarning) => void;
}

export interface IndexStatus {
  userId: string;
  dir: string | null;
  model: string;
  rows: number;
  removed: number;
  sessions: number;
}

/** Saved after this many rows changed, so a crash costs at most this much re-reading; always on close. */
const SAVE_EVERY = 2000;

/**
 * Cross-session recall for a data dir: one `UserIndex` per user, opened on first use and kept in
 * memory, each synced with the store before it answers, so a search always sees every message
 * embedded before it. Work on one user's index is serialised; users are independent.
 */
export class Recall {
  private readonly users = new Map<string, Promise<UserIndex>>();
  private readonly turns = new Map<string, Promise<unknown>>();
  private readonly queryVectors = new Map<string, Float32Array>();

  constructor(private readonly options: RecallOptions) {}

  async search(userId: string, query: string, input: SearchOptions = {}): Promise<SearchReport> {
    const options = parseInput(SearchOptionsSchema, input, 'search options');
    if (typeof query !== 'string' || query.trim().length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'the query is empty');
    if (query.length > 10_000) throw new MemexError('MEMEX_INVALID_INPUT', `the query has ${query.length} characters; the limit is 10000`);
    const embedder = await this.options.embedder();
    const vector = options.mode === 'lexical' ? null : await this.queryVector(embedder, query);
    return this.turn(userId, async () => {
      const index = await this.synced(userId, embedder);
      const { index: settings, search } = this.options.config;
      return searchIndex(index, this.options.store, userId, { text: query, vector }, options, {
        efSearch: settings.efSearch,
        exactBelow: settings.exactBelow,
        rrfK: search.rrfK,
        vectorWeight: search.vectorWeight,
        lexicalWeight: search.lexicalWeight,
        candidates: search.candidates,
      });
    });
  }

  /**
   * The query's embedding, remembered for the last few hundred queries: a chat app searches and
   * then builds a context window for the same text, and embedding it is most of a search's time.
   */
  private async queryVector(embedder: Embedder, query: string): Promise<Float32Array | null> {
    const key = `${embedder.modelId}\u0000${query}`;
    const known = this.queryVectors.get(key);
    if (known) return known;
    const vector = (await embedder.embed([query]))[0] ?? null;
    if (vector) {
      if (this.queryVectors.size >= 256) this.queryVectors.delete(this.queryVectors.keys().next().value as string);
      this.queryVectors.set(key, vector);
    }
    return vector;
  }

  /** Brings the user's index up to date now (say, before timing searches), with progress. */
  async prepare(userId: string, options: { onProgress?: (progress: IndexProgress) => void } = {}): Promise<IndexStatus> {
    const embedder = await this.options.embedder();
    return this.turn(userId, async () => this.status(userId, await this.synced(userId, embedder, options.onProgress)));
  }

  /** Throws the saved index away and builds it again from the session files. */
  async rebuild(userId: string, options: { onProgress?: (progress: IndexProgress) => void } = {}): Promise<IndexStatus> {
    const embedder = await this.options.embedder();
    return this.turn(userId, async () => {
      const rebuilt = UserIndex.rebuild(await this.indexOptions(userId, embedder, options.onProgress));
      this.users.set(userId, rebuilt);
      // A failed build is not kept: the next use opens (or builds) the index again.
      rebuilt.catch(() => {
        if (this.users.get(userId) === rebuilt) this.users.delete(userId);
      });
      return this.status(userId, await rebuilt);
    });
  }

  /** After rows were added to a session: an index already in memory takes them in now. */
  async noteIndexed(userId: string, sessionId: string): Promise<void> {
    const loaded = this.users.get(userId);
    if (!loaded) return;
    await this.turn(userId, async () => (await loaded).sync({ sessionIds: [sessionId] }));
  }

  /** Drops a user's index from memory (their folder, index included, is gone). */
  forget(userId: string): void {
    this.users.delete(userId);
  }

  /** Saves every index with unsaved changes. */
  async close(): Promise<void> {
    for (const [userId, loaded] of this.users) {
      await this.turn(userId, async () => {
        const index = await loaded.catch(() => null);
        if (index && index.dirty > 0) await index.save();
      });
    }
    this.users.clear();
  }

  private async synced(userId: string, embedder: Embedder, onProgress?: (progress: IndexProgress) => void): Promise<UserIndex> {
    let loaded = this.users.get(userId);
    if (!loaded) {
      const options = await this.indexOptions(userId, embedder, onProgress);
      loaded = UserIndex.open(options).then(({ index, rebuilt, problem }) => {
        // A missing index is just not built yet (a new user, or a deleted cache): no news.
        if (rebuilt && rebuilt !== 'missing') this.options.onWarning({ kind: 'index-rebuilt', userId, reason: rebuilt, problem, rows: index.size });
        return index;
      });
      this.users.set(userId, loaded);
      loaded.catch(() => {
        if (this.users.get(userId) === loaded) this.users.delete(userId);
      });
      return loaded;
    }
    let index = await loaded;
    await index.sync();
    if (index.needsCompaction) {
      index = await UserIndex.rebuild(await this.indexOptions(userId, embedder, onProgress));
      this.users.set(userId, Promise.resolve(index));
    } else if (index.dirty >= SAVE_EVERY) {
      await index.save();
    }
    return index;
  }

  private async indexOptions(userId: string, embedder: Embedder, onProgress?: (progress: IndexProgress) => void): Promise<UserIndexOptions> {
    const { store, config } = this.options;
    const dir = await store.indexDir(userId);
    return {
      store,
      userId,
      dir,
      model: { model: embedder.modelId, dimension: embedder.dimension },
      hnsw: { m: config.index.m, efConstruction: config.index.efConstruction, efSearch: config.index.efSearch },
      bm25: { ...DEFAULT_BM25, k: config.search.bm25K, b: config.search.bm25B, stopwords: config.search.stopwords, stemming: config.search.stemming },
      compactAt: config.index.compactAt,
      sync: config.fsync !== 'none',
      ...(onProgress ? { onProgress } : {}),
    };
  }

  private status(userId: string, index: UserIndex): IndexStatus {
    return { userId, dir: index.dir, model: index.model.model, rows: index.size, removed: index.removed, sessions: index.sessionCount };
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
