import type { PoolClient } from 'pg';

/**
 * The user's lexical index (schema-v2.ts): the postings (memex.chunk_terms) and BM25's statistics
 * (memex.chunk_stats, memex.term_stats), kept in the transaction that writes or deletes chunks.
 * Every writer locks the user's chunk_stats row before any term row: two transactions writing one
 * user's chunks queue on that row and never hold term rows crosswise (no deadlock).
 */

/** What one written chunk adds: its terms with their counts, and its BM25 length. */
export interface CountedChunk {
  readonly session_id: string;
  readonly id: string;
  readonly term_counts: Readonly<Record<string, number>>;
  readonly term_length: number;
}

/** Adds chunks just inserted for `userId` to the postings and the statistics. */
export async function countChunks(client: PoolClient, userId: string, chunks: readonly CountedChunk[]): Promise<void> {
  if (chunks.length === 0) return;
  const df = new Map<string, number>();
  let length = 0;
  for (const chunk of chunks) {
    length += chunk.term_length;
    for (const term of Object.keys(chunk.term_counts)) df.set(term, (df.get(term) ?? 0) + 1);
  }
  await client.query(
    `INSERT INTO memex.chunk_stats (user_id, chunks, term_length) VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET chunks = memex.chunk_stats.chunks + excluded.chunks, term_length = memex.chunk_stats.term_length + excluded.term_length`,
    [userId, chunks.length, length],
  );
  if (df.size === 0) return;
  await client.query(
    `INSERT INTO memex.chunk_terms (user_id, term, session_id, chunk_id, tf, term_length)
     SELECT $1, e.key, r.session_id, r.id, e.value::int, r.term_length
       FROM jsonb_to_recordset($2::jsonb) AS r(session_id text, id text, term_counts jsonb, term_length integer) CROSS JOIN LATERAL jsonb_each_text(r.term_counts) AS e`,
    [userId, JSON.stringify(chunks.map(({ session_id, id, term_counts, term_length }) => ({ session_id, id, term_counts, term_length })))],
  );
  await client.query(
    `INSERT INTO memex.term_stats (user_id, term, chunks)
     SELECT $1, t.term, t.chunks FROM unnest($2::text[], $3::bigint[]) AS t(term, chunks)
     ON CONFLICT (user_id, term) DO UPDATE SET chunks = memex.term_stats.chunks + excluded.chunks`,
    [userId, [...df.keys()], [...df.values()]],
  );
}

/**
 * Deletes the user's chunks that `where` (a condition over `c`, with `$2`… for `params`) selects and
 * takes them out of the statistics, in one statement; returns how many went. Chunks of a trashed
 * session are already out of the statistics (`hideChunks`).
 */
export async function deleteChunks(client: PoolClient, userId: string, where: string, params: readonly unknown[]): Promise<number> {
  return uncount(client, userId, `DELETE FROM memex.chunks c WHERE c.user_id = $1 AND ${where} RETURNING c.session_id, c.id, c.lexemes, c.term_length, c.trashed`, params);
}

/**
 * Marks the chunks `where` selects as trashed and takes them out of the postings and statistics,
 * keeping the rows (a trashed session's, restored by `unhideChunks`); returns how many.
 */
export async function hideChunks(client: PoolClient, userId: string, where: string, params: readonly unknown[]): Promise<number> {
  return uncount(
    client,
    userId,
    `UPDATE memex.chunks c SET trashed = true WHERE c.user_id = $1 AND NOT c.trashed AND ${where} RETURNING c.session_id, c.id, c.lexemes, c.term_length, false AS trashed`,
    params,
  );
}

/** Puts trashed chunks back: searchable again, counted again, exactly the rows they were. */
export async function unhideChunks(client: PoolClient, userId: string, where: string, params: readonly unknown[]): Promise<number> {
  await client.query('SELECT 1 FROM memex.chunk_stats WHERE user_id = $1 FOR UPDATE', [userId]);
  const { rows } = await client.query<CountedChunk>(
    `UPDATE memex.chunks c SET trashed = false WHERE c.user_id = $1 AND c.trashed AND ${where} RETURNING c.session_id, c.id, c.term_counts, c.term_length`,
    [userId, ...params],
  );
  await countChunks(client, userId, rows);
  return rows.length;
}

/** Runs `statement` (which returns the rows it took away) and takes those not already trashed out of the postings and statistics. */
async function uncount(client: PoolClient, userId: string, statement: string, params: readonly unknown[]): Promise<number> {
  await client.query('SELECT 1 FROM memex.chunk_stats WHERE user_id = $1 FOR UPDATE', [userId]);
  const { rows } = await client.query<{ gone: number; emptied: string[] | null }>(
    `WITH taken AS (
       ${statement}
     ), gone AS (
       SELECT * FROM taken WHERE NOT taken.trashed
     ), postings AS (
       DELETE FROM memex.chunk_terms t
        USING (SELECT gone.session_id, gone.id, term FROM gone CROSS JOIN LATERAL unnest(tsvector_to_array(gone.lexemes)) AS term) g
        WHERE t.user_id = $1 AND t.term = g.term AND t.session_id = g.session_id AND t.chunk_id = g.id
     ), totals AS (
       UPDATE memex.chunk_stats s SET chunks = s.chunks - g.n, term_length = s.term_length - g.length
         FROM (SELECT count(*) AS n, coalesce(sum(term_length), 0) AS length FROM gone) g
        WHERE s.user_id = $1 AND g.n > 0
     ), terms AS (
       UPDATE memex.term_stats s SET chunks = s.chunks - t.n
         FROM (SELECT term, count(*) AS n FROM gone CROSS JOIN LATERAL unnest(tsvector_to_array(gone.lexemes)) AS term GROUP BY term) t
        WHERE s.user_id = $1 AND s.term = t.term
        RETURNING s.term, s.chunks
     )
     SELECT (SELECT count(*)::int FROM taken) AS gone, (SELECT array_agg(term) FROM terms WHERE chunks = 0) AS emptied`,
    [userId, ...params],
  );
  const { gone, emptied } = rows[0] ?? { gone: 0, emptied: null };
  if (emptied && emptied.length > 0) await client.query('DELETE FROM memex.term_stats WHERE user_id = $1 AND term = ANY($2::text[]) AND chunks = 0', [userId, emptied]);
  return gone;
}

/** BM25's statistics for a search: the user's chunk count, their average length, and each term's document frequency. */
export interface LexicalStats {
  chunks: number;
  averageLength: number;
  df: Map<string, number>;
}

export async function readLexicalStats(client: PoolClient, userId: string, terms: readonly string[]): Promise<LexicalStats> {
  const { rows } = await client.query<{ chunks: string; term_length: string; df: Record<string, string> | null }>(
    `SELECT s.chunks, s.term_length,
            (SELECT jsonb_object_agg(t.term, t.chunks) FROM memex.term_stats t WHERE t.user_id = $1 AND t.term = ANY($2::text[])) AS df
       FROM memex.chunk_stats s WHERE s.user_id = $1`,
    [userId, terms],
  );
  const row = rows[0];
  if (!row) return { chunks: 0, averageLength: 0, df: new Map() };
  const chunks = Number(row.chunks);
  return { chunks, averageLength: chunks === 0 ? 0 : Number(row.term_length) / chunks, df: new Map(Object.entries(row.df ?? {}).map(([term, n]) => [term, Number(n)])) };
}
