import type { Config, ParsedSearchOptions } from '../../core/index.js';
import type { Store } from '../../store/index.js';
import { searchSettings, type BackendOptions, type IndexProgress, type IndexStatus, type SearchBackend, type SearchQuery, type SearchReport } from '../backend.js';
import { DEFAULT_BM25 } from '../lexical.js';
import { searchIndex } from './search.js';
import { UserIndex, type RebuildReason, type UserIndexOptions } from './user-index.js';

/** The index was built from the session files instead of loaded; nothing was lost, it took time. */
export interface IndexWarning {
  kind: 'index-rebuilt';
  userId: string;
  reason: RebuildReason;
  problem: string | null;
  rows: number;
}

export interface FlatSearchOptions {
  store: Store;
  config: Pick<Config, 'index' | 'search' | 'fsync'>;
  onWarning: (warning: IndexWarning) => void;
}

/** Saved after this many rows changed, so a crash costs at most this much re-reading; always on close. */
const SAVE_EVERY = 2000;

/**
 * Search over the flat files: one `UserIndex` per user (HNSW + BM25 + label columns), opened on
 * first use and kept in memory, each synced with the store before it answers, so a search always
 * sees every message embedded before it. The caller (`Recall`) serialises work per user.
 */
export class FlatSearch implements SearchBackend {
  private readonly users = new Map<string, Promise<UserIndex>>();

  constructor(private readonly options: FlatSearchOptions) {}

  async search(userId: string, query: SearchQuery, options: ParsedSearchOptions): Promise<SearchReport> {
    const index = await this.synced(userId, { model: query.model });
    return searchIndex(index, this.options.store, userId, query, options, searchSettings(this.options.config));
  }

  async conversations(userId: string, sessionIds: readonly string[], options: BackendOptions & { coherence: number }): Promise<Set<string>> {
    const index = await this.synced(userId, options);
    return new Set(sessionIds.filter((id) => index.sessionIsConversation(id, options.coherence)));
  }

  async prepare(userId: string, options: BackendOptions): Promise<IndexStatus> {
    return this.status(userId, await this.synced(userId, options));
  }

  /** Throws the saved index away and builds it again from the session files. */
  async rebuild(userId: string, options: BackendOptions): Promise<IndexStatus> {
    const rebuilt = UserIndex.rebuild(await this.indexOptions(userId, options));
    this.users.set(userId, rebuilt);
    // A failed build is not kept: the next use opens (or builds) the index again.
    rebuilt.catch(() => {
      if (this.users.get(userId) === rebuilt) this.users.delete(userId);
    });
    return this.status(userId, await rebuilt);
  }

  /** An index already in memory takes the session's new rows in now; one not loaded reads them when opened. */
  async noteIndexed(userId: string, sessionId: string): Promise<void> {
    const loaded = this.users.get(userId);
    if (!loaded) return;
    await (await loaded).sync({ sessionIds: [sessionId] });
  }

  /** Drops a user's index from memory (their folder, index included, is gone). */
  forget(userId: string): void {
    this.users.delete(userId);
  }

  /** Saves every index with unsaved changes. */
  async close(): Promise<void> {
    for (const loaded of this.users.values()) {
      const index = await loaded.catch(() => null);
      if (index && index.dirty > 0) await index.save();
    }
    this.users.clear();
  }

  private async synced(userId: string, options: BackendOptions): Promise<UserIndex> {
    let loaded = this.users.get(userId);
    if (!loaded) {
      const indexOptions = await this.indexOptions(userId, options);
      loaded = UserIndex.open(indexOptions).then(({ index, rebuilt, problem }) => {
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
      index = await UserIndex.rebuild(await this.indexOptions(userId, options));
      this.users.set(userId, Promise.resolve(index));
    } else if (index.dirty >= SAVE_EVERY) {
      await index.save();
    }
    return index;
  }

  private async indexOptions(userId: string, options: BackendOptions): Promise<UserIndexOptions> {
    const { store, config } = this.options;
    const dir = await store.indexDir(userId);
    const onProgress: ((progress: IndexProgress) => void) | undefined = options.onProgress;
    return {
      store,
      userId,
      dir,
      model: options.model,
      hnsw: { m: config.index.m, efConstruction: config.index.efConstruction, efSearch: config.index.efSearch },
      bm25: { ...DEFAULT_BM25, k: config.search.bm25K, b: config.search.bm25B, stopwords: config.search.stopwords, stemming: config.search.stemming },
      compactAt: config.index.compactAt,
      ...(config.index.buildThreads !== null ? { buildThreads: config.index.buildThreads } : {}),
      sync: config.fsync !== 'none',
      ...(onProgress ? { onProgress } : {}),
    };
  }

  private status(userId: string, index: UserIndex): IndexStatus {
    return { userId, dir: index.dir, model: index.model.model, rows: index.size, removed: index.removed, sessions: index.sessionCount };
  }
}
