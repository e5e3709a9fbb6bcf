import type { Pool, PoolClient } from 'pg';
import { MemexError, analyze, type ChunkSource, type Config, type EmbeddingModel, type ParsedSearchOptions, type TermAnalysis } from '../../core/index.js';
import { MAX_LEXEME_BYTES, readAnalysis, readLexicalStats, withUser, type LexicalStats } from '../../store/postgres/index.js';
import { searchSettings, type BackendOptions, type IndexStatus, type SearchBackend, type SearchHit, type SearchQuery, type SearchReport, type SearchSettings } from '../backend.js';
import { CandidateSet, candidateDepth, pick, rank, type Candidate } from '../fuse.js';
import { DEFAULT_BM25, idealScore } from '../lexical.js';
import { boostInRange } from '../query.js';
import { COHERENCE_ROWS, contextList, type ContextRow } from '../turn-context.js';
import { SqlParams, chunksFrom, filterSql, unfiltered } from './filters.js';

/**
 * pgvector's iterative index scans (0.8+): when filters reject what the HNSW walk finds, the walk
 * goes on instead of returning short. `relaxed_order` may hand rows back slightly out of distance
 * order, which costs nothing here (the candidates are re-sorted by their exact distance) and finds
 * more than `strict_order` at the same cost; `off` is pgvector before 0.8 (the exact fallback then
 * does all the work for filtered queries). See bench/pg-search.ts.
 */
export type IterativeScan = 'relaxed_order' | 'strict_order' | 'off';

export interface PostgresSearchOptions {
  /** A pool on a database migrated by openDatabase (store/postgres). The caller owns and ends it. */
  pool: Pool;
  config: Pick<Config, 'index' | 'search'>;
  /** Default `relaxed_order`. */
  iterativeScan?: IterativeScan;
  /**
   * How many index tuples one iterative scan may visit before it gives up (pgvector's default,
   * 20,000). A scan that gives up returns short, and the search falls back to the exact scan, so
   * this bounds the index walk's time, never the results.
   */
  maxScanTuples?: number;
}

/** pgvector refuses an `hnsw.ef_search` above this. */
const MAX_EF_SEARCH = 1000;

interface ChunkRow {
  session_id: string;
  id: string;
  source: ChunkSource;
  text: string;
  span_start: number;
  span_end: number;
  part_index: number;
  part_count: number;
  score: number;
  embedding?: string;
}

/**
 * Search in PostgreSQL: pgvector HNSW for the vector side, full-text search (the chunks' `lexemes`
 * tsvector and its GIN index) for the lexical side, every filter in SQL, and the fusion of fuse.ts
 * in the application, so results rank as on flat files. Everything runs as the user inside
 * `withUser`, so row-level security, not the WHERE clauses, keeps users apart. Nothing is held in
 * memory between queries: any number of service instances can search the same database.
 *
 * The vector candidates come from the HNSW index (`embedding::vector(dim)`, made by recordModel),
 * with an iterative scan when filters (or row-level security: the graph holds every user's rows) reject
 * rows; from an exact scan of the matching rows when they are at most `index.exactBelow`, or when the
 * index scan came back short. So a vector or hybrid search returns `k` hits whenever `k` chunks match.
 */
export class PostgresSearch implements SearchBackend {
  private readonly settings: SearchSettings;
  private readonly iterativeScan: IterativeScan;
  private readonly maxScanTuples: number;
  /** The database's model as last read (it changes only when a reindex replaces it). */
  private recorded: EmbeddingModel | null = null;
  /** The database's lexical analysis once read: it never changes after it is recorded. */
  private recordedAnalysis: TermAnalysis | null = null;

  constructor(private readonly options: PostgresSearchOptions) {
    this.settings = searchSettings(options.config);
    this.iterativeScan = options.iterativeScan ?? 'relaxed_order';
    this.maxScanTuples = options.maxScanTuples ?? 20_000;
  }

  async search(userId: string, query: SearchQuery, options: ParsedSearchOptions): Promise<SearchReport> {
    return withUser(this.options.pool, userId, async (client) => {
      const recorded = await this.model(client, query.model);
      const { mode } = options;
      const terms = mode === 'vector' ? new Map<string, number>() : queryTerms(query.text, await this.analysis(client));
      const stats = await readLexicalStats(client, userId, [...terms.keys()]);
      const matching = unfiltered(options) ? stats.chunks : await countMatching(client, userId, options);
      if (matching === 0) return { hits: [], mode, vectorPath: 'none', matching };
      const depth = candidateDepth(options, this.settings);
      const rows = new Map<string, ChunkRow>();
      let vectorList: { key: string; score: number }[] = [];
      let lexicalList: { key: string; score: number }[] = [];
      let contextHits: { key: string; score: number }[] = [];
      let vectorPath: SearchReport['vectorPath'] = 'none';
      // The lexical side first: the vector side's planner settings then hold to the end of the transaction.
      if (mode !== 'vector' && terms.size > 0) {
        // The candidates are the chunks holding the looked-up terms, which lexicalCandidates keeps
        // few: read by key from the postings. The planner would rather read every row of the user's
        // once a few thousand match (it prices a page read by key at four read in order, a disk's
        // cost, where the pages sit in memory), and that grows with the user, not the query.
        await client.query("SELECT set_config('enable_seqscan', 'off', true)");
      }
      if (mode !== 'vector') lexicalList = (await this.lexicalCandidates(client, userId, terms, stats, depth, options)).map((row) => ({ key: keep(rows, row), score: row.score }));
      if (mode !== 'lexical' && query.vector && recorded) {
        const found = await this.vectorCandidates(client, userId, query.vector, recorded.dimension, Math.min(depth, matching), matching, options);
        vectorPath = found.path;
        vectorList = found.rows.map((row) => ({ key: keep(rows, row), score: row.score }));
        if (mode === 'hybrid' && (options.contextWeight ?? this.settings.contextWeight) > 0 && found.rows.length > 0) {
          const context = await this.contextCandidates(client, userId, query.vector, found.rows, options);
          contextHits = contextList(
            context.map((row) => ({ ...row, key: keep(rows, row.key) })),
            depth,
          );
        }
      }

      // Ties break by chunk key (session, then chunk id), whatever order the plan returned rows in.
      const order = new Map([...rows.keys()].sort().map((key, i) => [key, i]));
      const candidates = new CandidateSet<string, ChunkRow>((key) => {
        const row = rows.get(key) as ChunkRow;
        return { ref: row, order: order.get(key) as number, createdAt: row.source.kind === 'message' ? Date.parse(row.source.createdAt) : Number.NaN };
      });
      candidates.addVector(vectorList);
      candidates.addContext(contextHits);
      const ideal = idealScore(
        [...terms].flatMap(([term, weight]) => Array.from({ length: weight }, () => ({ term, df: stats.df.get(term) ?? 0 }))),
        stats.chunks,
        DEFAULT_BM25,
      );
      candidates.addLexical(lexicalList, ideal);
      const picked = pick(boostInRange(rank(candidates.values(), options, this.settings), query.boost ?? null), options, (candidate) => vectorOf(candidate.ref));
      return { hits: picked.map(hit), mode, vectorPath, matching };
    });
  }

  /** Counts the user's rows and sessions; nothing is kept outside the tables, so there is nothing to bring up to date. */
  async conversations(userId: string, sessionIds: readonly string[], options: { coherence: number }): Promise<Set<string>> {
    if (sessionIds.length === 0) return new Set();
    return withUser(this.options.pool, userId, async (client) => {
      const { rows } = await client.query<{ session_id: string }>(`WITH ${conversationsSql('unnest($2::text[]) AS s(session_id)', '$1', '$3', '$4')} SELECT session_id FROM conversations`, [
        userId,
        [...new Set(sessionIds)],
        options.coherence,
        COHERENCE_ROWS + 1,
      ]);
      return new Set(rows.map((row) => row.session_id));
    });
  }

  async prepare(userId: string, options: BackendOptions): Promise<IndexStatus> {
    return withUser(this.options.pool, userId, async (client) => {
      await this.model(client, options.model);
      const result = await client.query<{ rows: number; sessions: number }>('SELECT count(*)::int AS rows, count(DISTINCT session_id)::int AS sessions FROM memex.chunks WHERE user_id = $1 AND NOT trashed', [userId]);
      const { rows, sessions } = result.rows[0] ?? { rows: 0, sessions: 0 };
      options.onProgress?.({ phase: 'index', done: rows, total: rows });
      return { userId, dir: null, model: options.model.model, rows, removed: 0, sessions };
    });
  }

  /**
   * The same as `prepare`: the HNSW and GIN indexes are the database's, kept current by every write
   * and shared by all users, so one user's rebuild has nothing of its own to rebuild (an operator
   * rebuilds the whole index with `REINDEX INDEX CONCURRENTLY memex.chunks_embedding_hnsw`).
   */
  async rebuild(userId: string, options: BackendOptions): Promise<IndexStatus> {
    return this.prepare(userId, options);
  }

  /** Rows are searchable once their transaction commits: nothing to take in. */
  async noteIndexed(): Promise<void> {}

  forget(): void {}

  /** The pool is the caller's to end. */
  async close(): Promise<void> {}

  /** The database's recorded model, checked against the query's; null before the first vectors. */
  private async model(client: PoolClient, wanted: EmbeddingModel): Promise<EmbeddingModel | null> {
    const differs = (model: EmbeddingModel): boolean => model.model !== wanted.model || model.dimension !== wanted.dimension;
    // Read again when the remembered model differs: a reindex may have replaced it since.
    if (!this.recorded || differs(this.recorded)) {
      const result = await client.query<{ model: string; dimension: number }>('SELECT model, dimension FROM memex.model');
      const row = result.rows[0];
      this.recorded = row ? { model: row.model, dimension: row.dimension } : null;
      if (!this.recorded) return null;
    }
    if (differs(this.recorded)) {
      throw new MemexError('MEMEX_MODEL_MISMATCH', `the database's vectors are from ${this.recorded.model} (${this.recorded.dimension}-d), the query was embedded with ${wanted.model} (${wanted.dimension}-d); run \`memex reindex\``, {
        details: { recorded: this.recorded, configured: wanted },
      });
    }
    return this.recorded;
  }

  private async vectorCandidates(
    client: PoolClient,
    userId: string,
    vector: Float32Array,
    dimension: number,
    want: number,
    matching: number,
    options: ParsedSearchOptions,
  ): Promise<{ path: 'hnsw' | 'exact'; rows: ChunkRow[] }> {
    if (vector.length !== dimension) throw new MemexError('MEMEX_MODEL_MISMATCH', `the query has ${vector.length} dimensions, the database's vectors ${dimension}`);
    // The graph holds every user's rows: even an unfiltered search is filtered by row-level security,
    // so few matching rows are read directly rather than found by walking everyone's graph.
    if (matching > this.settings.exactBelow) {
      const efSearch = Math.min(MAX_EF_SEARCH, Math.max(options.efSearch ?? this.settings.efSearch, want));
      // The planner prices a walk of the graph above reading and sorting a few thousand rows, and
      // would quietly sort them all instead; the choice was made above (exactBelow), so it is held
      // to the index for this one statement.
      await client.query(
        "SELECT set_config('hnsw.ef_search', $1, true), set_config('hnsw.iterative_scan', $2, true), set_config('hnsw.max_scan_tuples', $3, true), " +
          "set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true)",
        [String(efSearch), this.iterativeScan, String(this.maxScanTuples)],
      );
      // The typed expression is what the HNSW index is built on; the dimension is a checked integer.
      const rows = await nearest(client, userId, vector, `c.embedding::vector(${dimension})`, `::vector(${dimension})`, want, options);
      if (rows.length >= want) return { path: 'hnsw', rows };
      await client.query("SELECT set_config('enable_seqscan', 'on', true), set_config('enable_sort', 'on', true)");
    }
    // The untyped column matches no index: a scan of the user's matching rows, exact by construction.
    return { path: 'exact', rows: await nearest(client, userId, vector, 'c.embedding', '::vector', want, options) };
  }

  /**
   * The contextual list's rows (turn-context.ts), as on flat files: the vector list's chunks and the
   * row after each in its session (when the filters let it through), those of them in a conversation
   * with a message row before them, with the cosines the list is ranked by. Two statements: the rows
   * after, then every pool row's previous row and its session's recent pairs of consecutive messages.
   */
  private async contextCandidates(client: PoolClient, userId: string, vector: Float32Array, hits: readonly ChunkRow[], options: ParsedSearchOptions): Promise<ContextRow<ChunkRow>[]> {
    const q = vectorText(vector);
    const sessionIds = hits.map((row) => row.session_id);
    const ids = hits.map((row) => row.id);
    const params = new SqlParams();
    const [user, query, sids, cids] = [params.add(userId), params.add(q), params.add(sessionIds), params.add(ids)];
    // The row right after each hit (live), then the filters on it, as flat/search.ts does.
    const after = await client.query<ChunkRow>(
      `WITH hit AS (SELECT h.session_id, c.seq FROM unnest(${sids}::text[], ${cids}::text[]) AS h(session_id, id)
                      JOIN memex.chunks c ON c.user_id = ${user} AND c.session_id = h.session_id AND c.id = h.id),
            after AS (SELECT h.session_id, n.id FROM hit h
                        CROSS JOIN LATERAL (SELECT n.id FROM memex.chunks n WHERE n.user_id = ${user} AND n.session_id = h.session_id AND n.seq > h.seq AND NOT n.trashed ORDER BY n.seq LIMIT 1) n)
       SELECT ${COLUMNS}${options.mmr ? ', c.embedding::text AS embedding' : ''}, 1 - (c.embedding <=> ${query}::vector) AS score
         FROM ${chunksFrom(options)}
        WHERE (c.session_id, c.id) IN (SELECT session_id, id FROM after)
          AND ${filterSql(userId, options, params)}`,
      params.values,
    );
    const pool = new Map<string, ChunkRow>();
    for (const row of [...hits, ...after.rows]) if (!pool.has(rowKey(row))) pool.set(rowKey(row), row);
    const rows = [...pool.values()];
    const found = await client.query<{ session_id: string; id: string; previous: number; pair: number }>(
      `WITH pool AS (SELECT p.session_id, c.seq, c.id, c.embedding FROM unnest($2::text[], $3::text[]) AS p(session_id, id)
                       JOIN memex.chunks c ON c.user_id = $1 AND c.session_id = p.session_id AND c.id = p.id
                      WHERE c.source_kind = 'message'),
            paired AS (SELECT pool.session_id, pool.id, 1 - (prev.embedding <=> $4::vector) AS previous, 1 - (pool.embedding <=> prev.embedding) AS pair
                         FROM pool CROSS JOIN LATERAL (SELECT v.embedding, v.source_kind FROM memex.chunks v
                                                        WHERE v.user_id = $1 AND v.session_id = pool.session_id AND v.seq < pool.seq AND NOT v.trashed
                                                        ORDER BY v.seq DESC LIMIT 1) prev
                        WHERE prev.source_kind = 'message'),
            ${conversationsSql('(SELECT DISTINCT session_id FROM paired) s', '$1', '$5', '$6')}
       SELECT paired.* FROM paired JOIN conversations USING (session_id)`,
      [userId, rows.map((row) => row.session_id), rows.map((row) => row.id), q, options.contextCoherence ?? this.settings.contextCoherence, COHERENCE_ROWS + 1],
    );
    const context = new Map(found.rows.map((row) => [rowKey(row), row]));
    return rows.flatMap((row) => {
      const known = context.get(rowKey(row));
      return known ? [{ key: row, own: row.score, previous: Number(known.previous), pair: Number(known.pair) }] : [];
    });
  }

  /**
   * BM25+ over the chunks' stored terms, the function MiniSearch computes for the flat files (the
   * same terms, lengths, k, b and d, and N, average length and document frequencies over all of the
   * user's chunks, whatever the filters: the statistics the store keeps, chunk-stats.ts), so both
   * backends rank alike. As in MiniSearch, a term repeated in the query counts once per occurrence,
   * and the sum is multiplied by the number of distinct query terms the chunk holds (its "quality",
   * which favours chunks that match more of the question).
   *
   * Scoring every chunk that holds any query term costs a row read each, and a common word (a name
   * in every tenth turn) makes that most of a large user's chunks. So the `depth` best are found as
   * search engines do (MaxScore): the chunks holding the rarest terms are scored first, and the
   * `depth`-th best of them is a score the answer must reach; a chunk holding only terms whose
   * largest possible contribution, summed and multiplied by their count, stays below it cannot, and
   * those terms are not looked up. The result is the same as scoring everything.
   */
  private async lexicalCandidates(client: PoolClient, userId: string, terms: Map<string, number>, stats: LexicalStats, depth: number, options: ParsedSearchOptions): Promise<ChunkRow[]> {
    if (terms.size === 0 || stats.chunks === 0) return [];
    const { search } = this.options.config;
    const n = stats.chunks;
    const scored = [...terms].map(([term, weight]) => {
      const df = stats.df.get(term) ?? 0;
      // MiniSearch's inverse document frequency, computed in JavaScript as it computes it.
      const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
      // A term's contribution grows with its count towards weight * idf * (d + k + 1), never reaching it.
      return { term, weight, df, idf, bound: weight * idf * (DEFAULT_BM25.d + search.bm25K + 1) };
    });
    const query = (lookup: readonly string[], prune?: Prune): Promise<ChunkRow[]> => this.scoreChunks(client, userId, scored, lookup, stats.averageLength, depth, options, prune);
    const held = scored.filter((t) => t.df > 0);
    if (held.length === 0) return [];
    if (held.reduce((sum, t) => sum + t.df, 0) <= SCORE_ALL_BELOW * depth) return query(held.map((t) => t.term));

    // The rarest terms, until they are held by at least `depth` chunks: a first answer, cheap to get.
    const rarest: string[] = [];
    let reach = 0;
    for (const t of [...held].sort((a, b) => a.df - b.df)) {
      if (reach >= depth) break;
      rarest.push(t.term);
      reach += t.df;
    }
    const first = await query(rarest);
    if (first.length < depth) return query(held.map((t) => t.term));
    const threshold = (first[first.length - 1] as ChunkRow).score;
    // The weakest terms that, even all together, cannot lift a chunk to the threshold.
    const weakest = [...held].sort((a, b) => a.bound - b.bound);
    let skipped = 0;
    let sum = 0;
    for (const t of weakest) {
      const next = sum + t.bound;
      if (next * (skipped + 1) * (1 + 1e-9) >= threshold) break;
      sum = next;
      skipped++;
    }
    const essential = weakest.slice(skipped).map((t) => t.term);
    if (essential.every((term) => rarest.includes(term))) return first;
    // And a chunk holding essential terms is read only when its score from them, with everything
    // the skipped terms could add, still reaches the threshold.
    const rest = await query(essential, { bound: sum, count: skipped, threshold });
    const merged = new Map<string, ChunkRow>();
    for (const row of [...first, ...rest]) merged.set(rowKey(row), row);
    return [...merged.values()].sort((a, b) => b.score - a.score || compareKeys(a, b)).slice(0, depth);
  }

  /**
   * The `depth` best by BM25+ (every query term scored) of the filtered chunks holding any of
   * `lookup`, found through the postings. With `prune`, a candidate's score from its `lookup`
   * terms is first computed from the postings alone, and the chunk is read only when that score
   * plus `prune.bound` (the most the other terms could add), times its terms found plus
   * `prune.count`, reaches `prune.threshold`.
   */
  private async scoreChunks(
    client: PoolClient,
    userId: string,
    terms: readonly { term: string; weight: number; idf: number }[],
    lookup: readonly string[],
    averageLength: number,
    depth: number,
    options: ParsedSearchOptions,
    prune?: Prune,
  ): Promise<ChunkRow[]> {
    const { search } = this.options.config;
    const params = new SqlParams();
    const [k, b, d, dl] = [params.add(search.bm25K), params.add(search.bm25B), params.add(DEFAULT_BM25.d), params.add(averageLength)];
    const norm = `(${k}::float8 * (1 - ${b}::float8 + ${b}::float8 * c.term_length / ${dl}::float8))`;
    // One expression per term, written out: a subquery per candidate row cost twice as much.
    const scores: string[] = [];
    const found: string[] = [];
    for (const { term, weight, idf } of terms) {
      const tf = `(c.term_counts ->> ${params.add(term)}::text)::float8`;
      scores.push(`coalesce(${params.add(weight)}::float8 * ${params.add(idf)}::float8 * (${d}::float8 + ${tf} * (${k}::float8 + 1) / (${tf} + ${norm})), 0)`);
      found.push(`(${tf} IS NOT NULL)::int`);
    }
    const user = params.add(userId);
    let postings: string;
    if (!prune) {
      postings = `SELECT t.session_id, t.chunk_id FROM memex.chunk_terms t WHERE t.user_id = ${user} AND t.term = ANY(${params.add(lookup)}::text[])`;
    } else {
      const { from, partial } = this.partialScores(params, user, terms.filter((t) => lookup.includes(t.term)), { k, b, d, dl });
      // Float sums in another order than the full score's: a hair of slack keeps every chunk that may reach it.
      postings = `SELECT t.session_id, t.chunk_id ${from}
                  HAVING (${partial} + ${params.add(prune.bound)}::float8) * (count(*) + ${params.add(prune.count)}::int) >= ${params.add(prune.threshold * (1 - 1e-9))}::float8`;
    }
    const filters = filterSql(userId, options, params);
    const result = await client.query<ChunkRow>(
      `SELECT ${COLUMNS}${options.mmr ? ', c.embedding::text AS embedding' : ''},
              (${scores.join(' + ')}) * (${found.join(' + ')}) AS score
         FROM ${chunksFrom(options)}
        WHERE (c.session_id, c.id) IN (${postings})
          AND ${filters}
        ORDER BY score DESC, c.session_id, c.id
        LIMIT ${params.add(depth)}`,
      params.values,
    );
    return result.rows;
  }

  /**
   * A FROM … GROUP BY over the postings of `terms` (one group per chunk, `t` the postings) and the
   * sum of those terms' BM25+ contributions in it, read from the postings' index alone.
   */
  private partialScores(params: SqlParams, user: string, terms: readonly { term: string; weight: number; idf: number }[], bm25: { k: string; b: string; d: string; dl: string }): { from: string; partial: string } {
    const { k, b, d, dl } = bm25;
    const list = params.add(terms.map((t) => t.term));
    const q = `unnest(${list}::text[], ${params.add(terms.map((t) => t.weight * t.idf))}::float8[]) AS q(term, weight)`;
    return {
      from: `FROM memex.chunk_terms t JOIN ${q} ON q.term = t.term WHERE t.user_id = ${user} AND t.term = ANY(${list}::text[]) GROUP BY t.session_id, t.chunk_id`,
      partial: `sum(q.weight * (${d}::float8 + t.tf * (${k}::float8 + 1) / (t.tf + ${k}::float8 * (1 - ${b}::float8 + ${b}::float8 * t.term_length / ${dl}::float8))))`,
    };
  }

  /**
   * The analysis the chunks' terms were written with (recorded by the store with the first chunks),
   * so a query's terms are made the same way; the config's before any chunk was written.
   */
  private async analysis(client: PoolClient): Promise<TermAnalysis> {
    if (this.recordedAnalysis) return this.recordedAnalysis;
    const recorded = await readAnalysis(client);
    if (recorded) this.recordedAnalysis = recorded;
    return recorded ?? { stopwords: this.options.config.search.stopwords, stemming: this.options.config.search.stemming };
  }
}

/** What a pruned lookup may skip: see scoreChunks. */
interface Prune {
  bound: number;
  count: number;
  threshold: number;
}

/** Below this many term postings per wanted candidate, every chunk holding a query term is scored at once. */
const SCORE_ALL_BELOW = 8;

/** The distinct query terms one lexical search looks up (each is a GIN lookup); the rest are ignored. */
const MAX_QUERY_TERMS = 256;

/** The query's terms, analysed as the chunks' were, each with how often the query holds it. */
function queryTerms(text: string, analysis: TermAnalysis): Map<string, number> {
  const weights = new Map<string, number>();
  for (const term of analyze(text, analysis)) {
    if (Buffer.byteLength(term) > MAX_LEXEME_BYTES || (!weights.has(term) && weights.size >= MAX_QUERY_TERMS)) continue;
    weights.set(term, (weights.get(term) ?? 0) + 1);
  }
  return weights;
}

const COLUMNS = 'c.session_id, c.id, c.source, c.text, c.span_start, c.span_end, c.part_index, c.part_count';

/**
 * Two CTEs, `recent` and `conversations`: of the sessions `sessions` names (a FROM item with a
 * `session_id` column), those that are conversations (turn-context.ts `isConversation`), judged on
 * their last `rows` (COHERENCE_ROWS + 1) rows as the flat files judge them. The other arguments are
 * the statement's parameters: the user and the coherence threshold. `conversations` is
 * materialised: inlined, the planner judged every session again for each row joined with it (300 ms
 * a search at LoCoMo's size on PGlite, against a few).
 */
function conversationsSql(sessions: string, user: string, coherence: string, rows: string): string {
  return `recent AS (SELECT s.session_id, r.source_kind, r.message_id, r.embedding,
                            lag(r.source_kind) OVER (PARTITION BY s.session_id ORDER BY r.seq) AS before_kind,
                            lag(r.message_id) OVER (PARTITION BY s.session_id ORDER BY r.seq) AS before_message,
                            lag(r.embedding) OVER (PARTITION BY s.session_id ORDER BY r.seq) AS before_embedding
                       FROM ${sessions}
                       CROSS JOIN LATERAL (SELECT v.source_kind, v.message_id, v.embedding, v.seq FROM memex.chunks v
                                            WHERE v.user_id = ${user} AND v.session_id = s.session_id AND NOT v.trashed
                                            ORDER BY v.seq DESC LIMIT ${rows}) r),
          conversations AS MATERIALIZED (SELECT session_id FROM recent
                             WHERE source_kind = 'message' AND before_kind = 'message' AND message_id <> before_message
                             GROUP BY session_id
                            HAVING 2 * count(*) FILTER (WHERE 1 - (embedding <=> before_embedding) >= ${coherence}::float8) >= count(*))`;
}

async function countMatching(client: PoolClient, userId: string, options: ParsedSearchOptions): Promise<number> {
  const params = new SqlParams();
  const result = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${chunksFrom(options)} WHERE ${filterSql(userId, options, params)}`, params.values);
  return result.rows[0]?.n ?? 0;
}

/** The `want` matching rows nearest the query by cosine, nearest first, ordered by `column`. */
async function nearest(client: PoolClient, userId: string, vector: Float32Array, column: string, cast: string, want: number, options: ParsedSearchOptions): Promise<ChunkRow[]> {
  const params = new SqlParams();
  const q = `${params.add(vectorText(vector))}${cast}`;
  const filters = filterSql(userId, options, params);
  const result = await client.query<ChunkRow & { distance: number }>(
    `SELECT ${COLUMNS}${options.mmr ? ', c.embedding::text AS embedding' : ''}, (${column} <=> ${q}) AS distance
       FROM ${chunksFrom(options)}
      WHERE ${filters}
      ORDER BY ${column} <=> ${q}
      LIMIT ${params.add(want)}`,
    params.values,
  );
  // A relaxed iterative scan may return rows slightly out of order: sort by the exact distance.
  return result.rows
    .map((row) => ({ ...row, score: 1 - row.distance }))
    .sort((a, b) => b.score - a.score || compareKeys(a, b));
}

function compareKeys(a: ChunkRow, b: ChunkRow): number {
  return a.session_id < b.session_id ? -1 : a.session_id > b.session_id ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** pgvector's text form; a float32 prints exactly enough digits to come back the same. */
function vectorText(vector: Float32Array): string {
  return `[${Array.prototype.join.call(vector, ',')}]`;
}

function vectorOf(row: ChunkRow): Float32Array | null {
  return row.embedding ? Float32Array.from(JSON.parse(row.embedding) as number[]) : null;
}

/** A chunk's key in the maps of one search: its session and id. */
function rowKey(row: Pick<ChunkRow, 'session_id' | 'id'>): string {
  return `${row.session_id}\u0000${row.id}`;
}

function keep(rows: Map<string, ChunkRow>, row: ChunkRow): string {
  const key = rowKey(row);
  if (!rows.has(key)) rows.set(key, row);
  return key;
}

function hit(candidate: Candidate<ChunkRow>): SearchHit {
  const row = candidate.ref;
  return {
    sessionId: row.session_id,
    chunkId: row.id,
    text: row.text,
    source: row.source,
    span: { start: row.span_start, end: row.span_end },
    part: { index: row.part_index, count: row.part_count },
    score: candidate.score,
    relevance: candidate.relevance,
    scores: { vector: candidate.vector, vectorRank: candidate.vectorRank, context: candidate.context, contextRank: candidate.contextRank, lexical: candidate.lexical, lexicalRank: candidate.lexicalRank, recency: candidate.recency },
  };
}
