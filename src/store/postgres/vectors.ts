import type { PoolClient } from 'pg';
import { EmbeddingModelSchema, FORMAT_VERSION, MemexError, parseInput, type Chunk, type EmbeddingModel, type Message, type SessionId, type TermAnalysis, type UserId, type VectorLine } from '../../core/index.js';
import type { SessionVectorData, VectorBatch, VectorStatus } from '../store.js';
import { type PgContext } from './context.js';
import { MESSAGE_COLUMNS, messageOf } from './messages.js';
import { countChunks, deleteChunks, hideChunks } from './chunk-stats.js';
import { chunkTerms, recordAnalysis } from './lexical.js';
import { readModel, recordModel, releaseDimension } from './model.js';
import { requireSession } from './sessions.js';
import { checkVectorBatch } from '../vector-batch.js';

export interface ChunkRow {
  id: string;
  row: string;
  source: Chunk['source'];
  part_index: number;
  part_count: number;
  span_start: number;
  span_end: number;
  text: string;
  tokens: number;
  model: string;
  embedding?: string;
}

/** A session's chunks in row order, numbered from 0 like the rows of `embeddings.npy`. */
const NUMBERED = `SELECT id, seq, source_kind, message_id, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding,
                         row_number() OVER (ORDER BY seq) - 1 AS row
                    FROM memex.chunks WHERE user_id = $1 AND session_id = $2`;
const LINE_COLUMNS = 'id, row, source, part_index, part_count, span_start, span_end, text, tokens, model';

export function getEmbeddingModel(ctx: PgContext): Promise<EmbeddingModel | null> {
  ctx.assertOpen();
  return readModel(ctx.pool);
}

export async function setEmbeddingModel(ctx: PgContext, model: EmbeddingModel, options: { replace?: boolean } = {}): Promise<void> {
  ctx.assertOpen();
  await recordModel(ctx.pool, parseInput(EmbeddingModelSchema, model, 'embedding model'), ctx.hnsw, options);
}

export async function vectorStatus(ctx: PgContext, userId: string, sessionId: string): Promise<VectorStatus> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    return statusOf(client, uid, sid);
  });
}

async function statusOf(client: PoolClient, userId: UserId, sessionId: SessionId): Promise<VectorStatus> {
  const { rows } = await client.query<{ rows: string; model: string | null; dimension: number | null; tail: string | null }>(
    `SELECT (SELECT count(*) FROM memex.chunks WHERE user_id = $1 AND session_id = $2) AS rows, last.model, vector_dims(last.embedding) AS dimension, last.id AS tail
       FROM (SELECT NULL) AS pad
       LEFT JOIN LATERAL (SELECT model, embedding, id FROM memex.chunks WHERE user_id = $1 AND session_id = $2 ORDER BY seq DESC LIMIT 1) AS last ON true`,
    [userId, sessionId],
  );
  const row = rows[0];
  return { rows: Number(row?.rows ?? 0), model: row?.model ?? null, dimension: row?.dimension ?? null, tail: row?.tail ?? null };
}

/** The sequence number of the last message that has rows; -1 when none has. */
async function embeddedThrough(client: PoolClient, userId: UserId, sessionId: SessionId): Promise<bigint> {
  // Rows follow the messages' order (appends take only later messages, a replace sorts them), so
  // the last message row names the last embedded message: one step back along chunks_in_order,
  // whatever the session's size or the table's statistics.
  const { rows } = await client.query<{ seq: string | null }>(
    `SELECT m.seq FROM (SELECT message_id FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND source_kind = 'message' ORDER BY seq DESC LIMIT 1) AS c
       JOIN memex.messages m ON m.user_id = $1 AND m.session_id = $2 AND m.id = c.message_id`,
    [userId, sessionId],
  );
  return BigInt(rows[0]?.seq ?? -1);
}

export async function unembeddedMessages(ctx: PgContext, userId: string, sessionId: string, options: { limit?: number; after?: string } = {}): Promise<Message[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    let from = await embeddedThrough(client, uid, sid);
    if (options.after !== undefined) {
      const after = (await client.query<{ seq: string }>('SELECT seq FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3', [uid, sid, options.after])).rows[0];
      if (after && BigInt(after.seq) > from) from = BigInt(after.seq);
    }
    const { rows } = await client.query(`SELECT ${MESSAGE_COLUMNS} FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`, [
      uid,
      sid,
      from.toString(),
      options.limit ?? null,
    ]);
    return rows.map(messageOf);
  });
}

export async function appendVectors(ctx: PgContext, userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const dimension = checkVectorBatch(batch);
  await recordFirstModel(ctx, batch, dimension);
  const analysis = await lexicalAnalysis(ctx);
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid, { lock: true });
    if (dimension !== null) await checkSessionModel(client, uid, sid, batch.model, dimension);
    const through = await embeddedThrough(client, uid, sid);
    const kept = await inSession(client, uid, sid, batch, (seq) => seq > through, true);
    await insertRows(client, uid, sid, batch.model, kept, analysis);
    // Rows of a session in the trash (embedded after it was trashed) stay out of search with the rest.
    if (session.trashed_at !== null) await hideChunks(client, uid, 'c.session_id = $2', [sid]);
    return statusOf(client, uid, sid);
  });
}

export async function replaceVectors(ctx: PgContext, userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const dimension = checkVectorBatch(batch);
  const recorded = await readModel(ctx.pool);
  if (!recorded) await recordFirstModel(ctx, batch, dimension);
  // A reindex to a model of another dimension writes rows the recorded dimension's check and index
  // cannot take; they are rebuilt for the new dimension when the reindex records its model.
  else if (dimension !== null && dimension !== recorded.dimension) await releaseDimension(ctx.pool);
  const analysis = await lexicalAnalysis(ctx);
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid, { lock: true });
    const kept = await inSession(client, uid, sid, batch, () => true, false);
    await deleteChunks(client, uid, 'c.session_id = $2', [sid]);
    await insertRows(client, uid, sid, batch.model, kept, analysis);
    if (session.trashed_at !== null) await hideChunks(client, uid, 'c.session_id = $2', [sid]);
    return statusOf(client, uid, sid);
  });
}

export async function readVectors(ctx: PgContext, userId: string, sessionId: string, options: { from?: number; limit?: number } = {}): Promise<SessionVectorData> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const from = options.from ?? 0;
  if (!Number.isInteger(from) || from < 0) throw new MemexError('MEMEX_INVALID_INPUT', `from must be a row number, not ${from}`);
  const limit = options.limit ?? null;
  if (limit !== null && (!Number.isInteger(limit) || limit < 0)) throw new MemexError('MEMEX_INVALID_INPUT', `limit must be a whole number, not ${limit}`);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    const status = await statusOf(client, uid, sid);
    const { rows } = await client.query<ChunkRow>(
      `SELECT ${LINE_COLUMNS}, embedding::text AS embedding FROM (${NUMBERED}) AS t WHERE row >= $3 AND ($4::bigint IS NULL OR row < $3 + $4) ORDER BY row`,
      [uid, sid, from, limit],
    );
    return { ...status, from, ...linesAndVectors(rows, status.dimension) };
  });
}

export async function readMessageVectors(ctx: PgContext, userId: string, sessionId: string, messageIds: readonly string[]): Promise<Omit<SessionVectorData, 'from'>> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    const status = await statusOf(client, uid, sid);
    const { rows } = await client.query<ChunkRow>(
      `SELECT ${LINE_COLUMNS}, embedding::text AS embedding FROM (${NUMBERED}) AS t WHERE source_kind = 'message' AND message_id = ANY($3) ORDER BY row`,
      [uid, sid, [...messageIds]],
    );
    return { ...status, ...linesAndVectors(rows, status.dimension) };
  });
}

export async function readVectorLines(ctx: PgContext, userId: string, sessionId: string, rowNumbers: readonly number[]): Promise<VectorLine[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    const { rows } = await client.query<ChunkRow>(`SELECT ${LINE_COLUMNS} FROM (${NUMBERED}) AS t WHERE row = ANY($3)`, [uid, sid, [...rowNumbers]]);
    const byRow = new Map(rows.map((row) => [Number(row.row), lineOf(row)]));
    return rowNumbers.map((row) => {
      const line = byRow.get(row);
      if (!line) throw new MemexError('MEMEX_INVALID_INPUT', `no row ${row} in session ${sid}`);
      return line;
    });
  });
}

function lineOf(row: ChunkRow): VectorLine {
  return {
    v: FORMAT_VERSION,
    row: Number(row.row),
    model: row.model,
    chunkId: row.id,
    source: row.source,
    part: { index: row.part_index, count: row.part_count },
    span: { start: row.span_start, end: row.span_end },
    text: row.text,
    tokens: row.tokens,
  };
}

export function linesAndVectors(rows: readonly ChunkRow[], dimension: number | null): { lines: VectorLine[]; vectors: Float32Array } {
  const vectors = new Float32Array(rows.length * (dimension ?? 0));
  rows.forEach((row, i) => vectors.set(parseVector(row.embedding ?? '[]'), i * (dimension ?? 0)));
  return { lines: rows.map(lineOf), vectors };
}

/** pgvector's text form, `[0.1,0.2,...]`; float4 printed shortest, so the values come back exactly. */
export function parseVector(text: string): Float32Array {
  const body = text.slice(1, -1);
  return body === '' ? new Float32Array(0) : Float32Array.from(body.split(','), Number);
}

export function vectorText(vector: Float32Array): string {
  return `[${Array.prototype.join.call(vector, ',')}]`;
}


/**
 * The database's model is recorded with its first vectors (as a data dir's is). Later rows must be
 * of that model: the database's dimension check and HNSW index are made for it.
 */
async function recordFirstModel(ctx: PgContext, batch: VectorBatch, dimension: number | null): Promise<void> {
  if (dimension === null) return;
  const recorded = await readModel(ctx.pool);
  if (!recorded) {
    await recordModel(ctx.pool, { model: batch.model, dimension }, ctx.hnsw);
    return;
  }
  if (recorded.model !== batch.model || recorded.dimension !== dimension) {
    throw new MemexError('MEMEX_MODEL_MISMATCH', `the database's vectors are from ${recorded.model} (${recorded.dimension}-d), not ${batch.model} (${dimension}-d); run \`memex reindex\``, {
      details: { recorded, configured: { model: batch.model, dimension } },
    });
  }
}

async function checkSessionModel(client: PoolClient, userId: UserId, sessionId: SessionId, model: string, dimension: number): Promise<void> {
  const { rows } = await client.query<{ model: string; dimension: number }>(
    'SELECT model, vector_dims(embedding) AS dimension FROM memex.chunks WHERE user_id = $1 AND session_id = $2 LIMIT 1',
    [userId, sessionId],
  );
  const held = rows[0];
  if (held && (held.model !== model || held.dimension !== dimension)) {
    throw new MemexError('MEMEX_MODEL_MISMATCH', `session ${sessionId} holds ${held.dimension}-d rows of ${held.model}; cannot add ${dimension}-d rows of ${model}`, {
      details: { recorded: held, configured: { model, dimension } },
    });
  }
}

export interface KeptRow {
  chunk: Chunk;
  vector: Float32Array;
}

/**
 * The batch's chunks whose message is in the session at a sequence `accept` takes, in message order,
 * then those of files the session holds, in batch order. With `skipPresent`, file chunks that
 * already have rows are left out, so a retried or raced batch never duplicates.
 */
async function inSession(client: PoolClient, userId: UserId, sessionId: SessionId, batch: VectorBatch, accept: (seq: bigint) => boolean, skipPresent: boolean): Promise<KeptRow[]> {
  const messageIds = [...new Set(batch.chunks.flatMap((chunk) => (chunk.source.kind === 'message' ? [chunk.source.messageId] : [])))];
  const fileIds = [...new Set(batch.chunks.flatMap((chunk) => (chunk.source.kind === 'file' ? [chunk.source.fileId] : [])))];
  const seqs = new Map(
    messageIds.length === 0
      ? []
      : (await client.query<{ id: string; seq: string }>('SELECT id, seq FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, messageIds])).rows.map(
          (row) => [row.id, BigInt(row.seq)] as const,
        ),
  );
  const files = new Set(
    fileIds.length === 0 ? [] : (await client.query<{ id: string }>('SELECT id FROM memex.files WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, fileIds])).rows.map((row) => row.id),
  );
  const fileChunkIds = batch.chunks.flatMap((chunk) => (chunk.source.kind === 'file' ? [chunk.chunkId] : []));
  const present = new Set(
    !skipPresent || fileChunkIds.length === 0
      ? []
      : (await client.query<{ id: string }>('SELECT id FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, fileChunkIds])).rows.map((row) => row.id),
  );
  const keep: { index: number; seq: bigint }[] = [];
  const last = BigInt(Number.MAX_SAFE_INTEGER);
  batch.chunks.forEach((chunk, index) => {
    if (chunk.source.kind === 'file') {
      if (files.has(chunk.source.fileId) && !present.has(chunk.chunkId)) keep.push({ index, seq: last });
      return;
    }
    const seq = seqs.get(chunk.source.messageId);
    if (seq !== undefined && accept(seq)) keep.push({ index, seq });
  });
  keep.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : a.index - b.index));
  return keep.map(({ index }) => ({ chunk: batch.chunks[index] as Chunk, vector: batch.vectors[index] as Float32Array }));
}

/** The analysis chunk terms are written with: the recorded one, or the configured one, recorded now. */
export async function lexicalAnalysis(ctx: PgContext): Promise<TermAnalysis> {
  ctx.recordedAnalysis ??= await recordAnalysis(ctx.pool, ctx.analysis);
  return ctx.recordedAnalysis;
}

async function insertRows(client: PoolClient, userId: UserId, sessionId: SessionId, model: string, kept: readonly KeptRow[], analysis: TermAnalysis): Promise<void> {
  await insertChunkRows(client, userId, sessionId, model, kept, analysis, { count: true });
}

/**
 * Inserts chunk rows with their embedding and lexical terms, in order. With `count`, they join the
 * user's lexical statistics (a live row); without, they stay out of them (a row on its way to the trash).
 */
export async function insertChunkRows(
  client: PoolClient,
  userId: UserId,
  sessionId: SessionId,
  model: string,
  kept: readonly KeptRow[],
  analysis: TermAnalysis,
  options: { count: boolean },
): Promise<void> {
  // Inserted in slices so one statement's parameter stays a few megabytes.
  for (let start = 0; start < kept.length; start += 500) {
    const slice = kept.slice(start, start + 500).map(({ chunk, vector }) => ({
      id: chunk.chunkId,
      source_kind: chunk.source.kind,
      message_id: chunk.source.kind === 'message' ? chunk.source.messageId : null,
      file_id: chunk.source.kind === 'file' ? chunk.source.fileId : null,
      page: chunk.source.kind === 'file' ? (chunk.source.page ?? null) : null,
      source: chunk.source,
      part_index: chunk.part.index,
      part_count: chunk.part.count,
      span_start: chunk.span.start,
      span_end: chunk.span.end,
      text: chunk.text,
      tokens: chunk.tokens,
      embedding: vectorText(vector),
      ...chunkTerms(chunk.text, analysis),
    }));
    await client.query(
      `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, file_id, page, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding,
                                 lexemes, term_counts, term_length)
       SELECT $1, $2, r.id, r.source_kind, r.message_id, r.file_id, r.page, r.source, r.part_index, r.part_count, r.span_start, r.span_end, r.text, r.tokens, $4, r.embedding::vector,
              array_to_tsvector(r.lexemes), r.term_counts, r.term_length
         FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (id text, source_kind text, message_id text, file_id text, page integer, source jsonb, part_index integer,
              part_count integer, span_start integer, span_end integer, text text, tokens integer, embedding text,
              lexemes text[], term_counts jsonb, term_length integer)) WITH ORDINALITY
              AS r(id, source_kind, message_id, file_id, page, source, part_index, part_count, span_start, span_end, text, tokens, embedding, lexemes, term_counts, term_length, ord)
        ORDER BY r.ord`,
      [userId, sessionId, JSON.stringify(slice), model],
    );
    if (options.count) await countChunks(client, userId, slice.map(({ id, term_counts, term_length }) => ({ session_id: sessionId, id, term_counts, term_length })));
  }
}
