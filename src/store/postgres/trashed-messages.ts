import type { PoolClient } from 'pg';
import { z } from 'zod';
import {
  MemexError,
  MessageSchema,
  parseId,
  parseInput,
  SummarySchema,
  TimestampInputSchema,
  VectorLineSchema,
  type Message,
  type SessionId,
  type Summary,
  type UserId,
} from '../../core/index.js';
import type { TrashedMessage, TrashedMessageCopy } from '../store.js';
import { messageNotInTrash, sessionTrashed } from '../trash.js';
import { countChunks, type CountedChunk } from './chunk-stats.js';
import { iso, type PgContext } from './context.js';
import { MESSAGE_COLUMNS, messageOf, type MessageRow, removeMessage, rowOf } from './messages.js';
import { summaryOfRow, type SummaryRow } from './notes.js';
import { type ChunkRow, insertChunkRows, lexicalAnalysis, linesAndVectors, parseVector } from './vectors.js';
import { requireSession } from './sessions.js';
import { requireUser } from './users.js';

/**
 * The trash of messages (schema-v4.ts `trashed_messages`): the message's row, its chunks' rows and
 * the dropped summary kept as JSON, the message deleted; restoring inserts the same rows again.
 */
export async function trashMessage(ctx: PgContext, userId: string, sessionId: string, messageId: string, options: { at?: string } = {}): Promise<TrashedMessage> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  const trashedAt = options.at === undefined ? new Date().toISOString() : parseInput(TimestampInputSchema, options.at, 'trash time');
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid, { lock: true });
    if (session.trashed_at !== null) throw sessionTrashed(sid);
    const message = await copyToTrash(client, uid, sid, mid, trashedAt);
    if (!message) throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
    await removeMessage(client, uid, sid, mid);
    return { sessionId: sid, message, trashedAt: new Date(trashedAt).toISOString() };
  });
}

/** Copies the message, its chunk rows and the session's summary into the trash (replacing a copy there); undefined when the session does not hold it. */
async function copyToTrash(client: PoolClient, uid: UserId, sid: SessionId, mid: string, trashedAt: string): Promise<Message | undefined> {
    const { rows } = await client.query<MessageRow>(
      `INSERT INTO memex.trashed_messages (user_id, session_id, message_id, trashed_at, message, chunks, summary)
       SELECT m.user_id, m.session_id, m.id, $4, to_jsonb(m),
              coalesce((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.seq) FROM memex.chunks c
                         WHERE c.user_id = $1 AND c.session_id = $2 AND c.source_kind = 'message' AND c.message_id = $3), '[]'::jsonb),
              (SELECT to_jsonb(s) FROM memex.summaries s WHERE s.user_id = $1 AND s.session_id = $2)
         FROM memex.messages m WHERE m.user_id = $1 AND m.session_id = $2 AND m.id = $3
       ON CONFLICT (user_id, session_id, message_id) DO UPDATE SET trashed_at = EXCLUDED.trashed_at, message = EXCLUDED.message, chunks = EXCLUDED.chunks, summary = EXCLUDED.summary
       RETURNING (jsonb_populate_record(NULL::memex.messages, message)).*`,
      [uid, sid, mid, trashedAt],
    );
    return rows[0] ? messageOf(rows[0]) : undefined;
}

export async function untrashMessage(ctx: PgContext, userId: string, sessionId: string, messageId: string): Promise<Message> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid, { lock: true });
    if (session.trashed_at !== null) throw sessionTrashed(sid);
    const { rows } = await client.query<MessageRow>(
      `INSERT INTO memex.messages OVERRIDING SYSTEM VALUE
       SELECT (jsonb_populate_record(NULL::memex.messages, t.message)).* FROM memex.trashed_messages t
        WHERE t.user_id = $1 AND t.session_id = $2 AND t.message_id = $3
       RETURNING ${MESSAGE_COLUMNS}`,
      [uid, sid, mid],
    );
    if (!rows[0]) throw messageNotInTrash(sid, mid);
    // The insert trigger takes the newest inserted message for the session's last one; this one
    // went back to its place, which may be anywhere.
    await client.query('SELECT memex.session_tail_refresh($1, $2)', [uid, sid]);
    // Rows of another model (a reindex since) would not fit: the message is then embedded again by the indexer's catch-up.
    const { rows: chunks } = await client.query<CountedChunk>(
      `INSERT INTO memex.chunks OVERRIDING SYSTEM VALUE
       SELECT (jsonb_populate_record(NULL::memex.chunks, e.value)).* FROM memex.trashed_messages t CROSS JOIN LATERAL jsonb_array_elements(t.chunks) AS e
        WHERE t.user_id = $1 AND t.session_id = $2 AND t.message_id = $3
          AND NOT EXISTS (SELECT 1 FROM memex.chunks c WHERE c.user_id = $1 AND c.session_id = $2 AND c.model <> e.value ->> 'model')
       RETURNING session_id, id, term_counts, term_length`,
      [uid, sid, mid],
    );
    await client.query('SELECT 1 FROM memex.chunk_stats WHERE user_id = $1 FOR UPDATE', [uid]);
    await countChunks(client, uid, chunks);
    await client.query(
      `INSERT INTO memex.summaries SELECT (jsonb_populate_record(NULL::memex.summaries, t.summary)).* FROM memex.trashed_messages t
        WHERE t.user_id = $1 AND t.session_id = $2 AND t.message_id = $3 AND t.summary IS NOT NULL
       ON CONFLICT (user_id, session_id) DO NOTHING`,
      [uid, sid, mid],
    );
    await client.query('DELETE FROM memex.trashed_messages WHERE user_id = $1 AND session_id = $2 AND message_id = $3', [uid, sid, mid]);
    return messageOf(rows[0]);
  });
}

export async function listTrashedMessages(ctx: PgContext, userId: string): Promise<TrashedMessage[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<MessageRow & { trashed_at: Date }>(
      `SELECT (jsonb_populate_record(NULL::memex.messages, t.message)).*, t.trashed_at AS trashed_at FROM memex.trashed_messages t
        WHERE t.user_id = $1 ORDER BY t.trashed_at, t.session_id, t.message_id`,
      [uid],
    );
    return rows.map((row) => ({ sessionId: row.session_id, message: messageOf(row), trashedAt: iso(row.trashed_at) }));
  });
}

export async function purgeTrashedMessage(ctx: PgContext, userId: string, sessionId: string, messageId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  await ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    const { rowCount } = await client.query('DELETE FROM memex.trashed_messages WHERE user_id = $1 AND session_id = $2 AND message_id = $3', [uid, sid, mid]);
    if (!rowCount) throw messageNotInTrash(sid, mid);
  });
}

type TrashedRow = { message_id: string; trashed_at: Date; message: { seq: number | string } & Record<string, unknown>; chunks: ({ id: string; seq: number | string } & Record<string, unknown>)[] };

export async function readTrashedMessages(ctx: PgContext, userId: string, sessionId: string): Promise<TrashedMessageCopy[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    const { rows: live } = await client.query<{ id: string; seq: string }>('SELECT id, seq FROM memex.messages WHERE user_id = $1 AND session_id = $2', [uid, sid]);
    return trashedCopies(client, uid, sid, live);
  });
}

/** The session's trash with each message's place among `live` (the session's messages: its rows, or an archive's). */
export async function trashedCopies(client: PoolClient, uid: UserId, sid: SessionId, live: readonly { id: string; seq: string }[]): Promise<TrashedMessageCopy[]> {
  const { rows } = await client.query<MessageRow & { trashed_at: Date }>(
    `SELECT (jsonb_populate_record(NULL::memex.messages, t.message)).*, t.trashed_at AS trashed_at FROM memex.trashed_messages t
      WHERE t.user_id = $1 AND t.session_id = $2 ORDER BY t.trashed_at, t.message_id`,
    [uid, sid],
  );
  const { rows: chunkRows } = await client.query<ChunkRow & { message: string }>(
    `SELECT t.message_id AS message, c.id, (e.ord - 1)::text AS row, c.source, c.part_index, c.part_count, c.span_start, c.span_end, c.text, c.tokens, c.model, c.embedding::text AS embedding
       FROM memex.trashed_messages t CROSS JOIN LATERAL jsonb_array_elements(t.chunks) WITH ORDINALITY AS e(value, ord)
       CROSS JOIN LATERAL jsonb_populate_record(NULL::memex.chunks, e.value) AS c
      WHERE t.user_id = $1 AND t.session_id = $2 ORDER BY t.message_id, e.ord`,
    [uid, sid],
  );
  const { rows: summaries } = await client.query<SummaryRow & { message: string }>(
    `SELECT t.message_id AS message, s.* FROM memex.trashed_messages t CROSS JOIN LATERAL jsonb_populate_record(NULL::memex.summaries, t.summary) AS s
      WHERE t.user_id = $1 AND t.session_id = $2 AND t.summary IS NOT NULL`,
    [uid, sid],
  );
  return rows.map((row) => {
    // Where it stood when trashed: among the messages then in the session (those still in it and
    // those trashed after it); a copy puts those back first, newest trashed first.
    const then = [
      ...live.map((m) => ({ id: m.id, seq: BigInt(m.seq) })),
      ...rows.filter((other) => other.trashed_at > row.trashed_at || (other.trashed_at.getTime() === row.trashed_at.getTime() && other.id > row.id)).map((other) => ({ id: other.id, seq: BigInt(other.seq) })),
    ].filter((m) => m.seq < BigInt(row.seq));
    then.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
    const mine = chunkRows.filter((chunk) => chunk.message === row.id);
    const dimension = mine[0] ? parseVector(mine[0].embedding ?? '[]').length : 0;
    const { lines, vectors } = linesAndVectors(mine, dimension);
    const summary = summaries.find((s) => s.message === row.id);
    return {
      sessionId: sid,
      message: messageOf(row),
      trashedAt: iso(row.trashed_at),
      after: then.at(-1)?.id ?? null,
      index: then.length,
      summary: summary ? summaryOfRow(summary) : null,
      model: mine[0]?.model ?? null,
      lines,
      vectors,
    };
  });
}

const MESSAGE_INSERT_COLUMNS = 'user_id, session_id, id, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at, persona_id';
const CHUNK_INSERT_COLUMNS =
  'user_id, session_id, id, source_kind, message_id, file_id, page, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding, lexemes, term_counts, term_length, created_at, trashed';

/**
 * Writes a copy's trashed message into the session's trash as `trashMessage` would have: the
 * message and its chunk rows are put live in their place for a moment (the messages and rows after
 * that place, live and trashed, are written again after it, keeping their order: `seq` is an
 * identity, so room is made by taking new ones), copied to the trash with the same statement, then
 * taken out again. Raw deletes and inserts of the same rows leave the lexical statistics as they were.
 */
export async function restoreTrashedMessage(ctx: PgContext, userId: string, sessionId: string, copy: TrashedMessageCopy): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const message = parseInput(MessageSchema, { ...copy.message, sessionId: sid }, 'trashed message');
  const mid = message.id;
  const trashedAt = parseInput(TimestampInputSchema, copy.trashedAt, 'trash time');
  const lines = parseInput(z.array(VectorLineSchema), copy.lines, 'trashed message rows');
  const summary = copy.summary === null ? null : parseInput(SummarySchema, { ...copy.summary, sessionId: sid }, 'trashed message summary');
  const dimension = lines.length > 0 ? copy.vectors.length / lines.length : 0;
  if (!Number.isInteger(dimension) || (lines.length === 0 && copy.vectors.length > 0)) {
    throw new MemexError('MEMEX_INVALID_INPUT', `trashed message ${mid}: ${copy.vectors.length} floats do not make ${lines.length} rows`);
  }
  const analysis = lines.length > 0 ? await lexicalAnalysis(ctx) : null;
  await ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid, { lock: true });
    await client.query('DELETE FROM memex.trashed_messages WHERE user_id = $1 AND session_id = $2 AND message_id = $3', [uid, sid, mid]);
    const place = await messagePlace(client, uid, sid, copy);
    const trashed = (await client.query<TrashedRow>('SELECT message_id, trashed_at, message, chunks FROM memex.trashed_messages WHERE user_id = $1 AND session_id = $2', [uid, sid])).rows;
    const after = (seq: number | string): boolean => place === null || BigInt(seq) > place;

    // Chunk rows: those of messages up to the place stay.
    const { rows: kept } = await client.query<{ seq: string | null }>(
      `SELECT max(c.seq)::text AS seq FROM memex.chunks c JOIN memex.messages m ON m.user_id = c.user_id AND m.session_id = c.session_id AND m.id = c.message_id
        WHERE c.user_id = $1 AND c.session_id = $2 AND c.source_kind = 'message' AND m.seq <= $3`,
      [uid, sid, place === null ? null : place.toString()],
    );
    let chunkPlace = place === null || kept[0]?.seq == null ? null : BigInt(kept[0].seq);
    for (const row of trashed) {
      if (place === null || BigInt(row.message.seq) > place) continue;
      for (const chunk of row.chunks) if (chunkPlace === null || BigInt(chunk.seq) > chunkPlace) chunkPlace = BigInt(chunk.seq);
    }
    const chunkAfter = (seq: number | string): boolean => chunkPlace === null || BigInt(seq) > chunkPlace;

    // Messages after the place (live, and trashed ones put live for the moment), then the message, then them again.
    const { rows: movedLive } = await client.query<{ row: Record<string, unknown> }>(
      `DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND ($3::bigint IS NULL OR seq > $3) RETURNING to_jsonb(memex.messages.*) AS row`,
      [uid, sid, place === null ? null : place.toString()],
    );
    const movedTrashed = trashed.filter((row) => after(row.message.seq));
    const moved = [...movedLive.map(({ row }) => row as { seq: string }), ...movedTrashed.map((row) => row.message)].sort((a, b) =>
      BigInt(a.seq) < BigInt(b.seq) ? -1 : BigInt(a.seq) > BigInt(b.seq) ? 1 : 0,
    );
    await insertMessageRows(client, uid, sid, [rowOf(message)]);
    const newSeqs = await insertMessageRows(client, uid, sid, moved);
    for (const row of movedTrashed) {
      await client.query(`UPDATE memex.trashed_messages SET message = jsonb_set(message, '{seq}', to_jsonb($4::bigint)) WHERE user_id = $1 AND session_id = $2 AND message_id = $3`, [
        uid,
        sid,
        row.message_id,
        newSeqs.get(row.message_id),
      ]);
    }
    await client.query('DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [uid, sid, movedTrashed.map((row) => row.message_id)]);

    // The same for chunk rows.
    const { rows: movedLiveChunks } = await client.query<{ row: { id: string; seq: string } }>(
      `DELETE FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND ($3::bigint IS NULL OR seq > $3) RETURNING to_jsonb(memex.chunks.*) AS row`,
      [uid, sid, chunkPlace === null ? null : chunkPlace.toString()],
    );
    const movedTrashedChunks = trashed.flatMap((row) => row.chunks.filter((chunk) => chunkAfter(chunk.seq)));
    const movedChunks = [...movedLiveChunks.map(({ row }) => row), ...movedTrashedChunks].sort((a, b) => (BigInt(a.seq) < BigInt(b.seq) ? -1 : BigInt(a.seq) > BigInt(b.seq) ? 1 : 0));
    if (analysis && copy.model !== null) {
      const kept = lines.map((line, i) => ({ chunk: line, vector: copy.vectors.subarray(i * dimension, (i + 1) * dimension) }));
      // Out of the lexical statistics: the rows go on to the trash.
      await insertChunkRows(client, uid, sid, copy.model, kept, analysis, { count: false });
    }
    const chunkSeqs = new Map<string, string>();
    for (let start = 0; start < movedChunks.length; start += 500) {
      const { rows } = await client.query<{ id: string; seq: string }>(
        `INSERT INTO memex.chunks (${CHUNK_INSERT_COLUMNS})
         SELECT $1, $2, ${CHUNK_INSERT_COLUMNS.split(', ').slice(2).map((c) => `r.${c}`).join(', ')}
           FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS e(value, ord) CROSS JOIN LATERAL jsonb_populate_record(NULL::memex.chunks, e.value) AS r
          ORDER BY e.ord
         RETURNING id, seq::text AS seq`,
        [uid, sid, JSON.stringify(movedChunks.slice(start, start + 500))],
      );
      for (const row of rows) chunkSeqs.set(row.id, row.seq);
    }
    for (const row of trashed) {
      if (!row.chunks.some((chunk) => chunkAfter(chunk.seq))) continue;
      const chunks = row.chunks.map((chunk) => (chunkAfter(chunk.seq) ? { ...chunk, seq: Number(chunkSeqs.get(chunk.id)) } : chunk));
      await client.query('UPDATE memex.trashed_messages SET chunks = $4::jsonb WHERE user_id = $1 AND session_id = $2 AND message_id = $3', [uid, sid, row.message_id, JSON.stringify(chunks)]);
    }
    await client.query('DELETE FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [uid, sid, movedTrashedChunks.map((chunk) => chunk.id)]);

    // Into the trash as trashMessage copies it, with the copy's time and summary; then out of the session.
    await copyToTrash(client, uid, sid, mid, trashedAt);
    await client.query(
      `UPDATE memex.trashed_messages SET summary = CASE WHEN $4::jsonb IS NULL THEN NULL ELSE to_jsonb(jsonb_populate_record(NULL::memex.summaries, $4::jsonb)) END
        WHERE user_id = $1 AND session_id = $2 AND message_id = $3`,
      [uid, sid, mid, summary === null ? null : JSON.stringify(summaryRowOf(uid, summary))],
    );
    await client.query("DELETE FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND source_kind = 'message' AND message_id = $3", [uid, sid, mid]);
    await client.query('DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3', [uid, sid, mid]);
  });
}

/** The seq of the message the copy followed (live or trashed here), else of the live message at its index; null: first. */
async function messagePlace(client: PoolClient, uid: UserId, sid: SessionId, copy: TrashedMessageCopy): Promise<bigint | null> {
  if (copy.after === null) return null;
  const { rows } = await client.query<{ seq: string }>(
    `SELECT seq::text AS seq FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3
     UNION ALL SELECT message ->> 'seq' FROM memex.trashed_messages WHERE user_id = $1 AND session_id = $2 AND message_id = $3`,
    [uid, sid, copy.after],
  );
  if (rows[0]) return BigInt(rows[0].seq);
  if (copy.index === 0) return null;
  const { rows: at } = await client.query<{ seq: string }>('SELECT seq::text AS seq FROM memex.messages WHERE user_id = $1 AND session_id = $2 ORDER BY seq OFFSET $3 LIMIT 1', [
    uid,
    sid,
    copy.index - 1,
  ]);
  if (at[0]) return BigInt(at[0].seq);
  const { rows: last } = await client.query<{ seq: string | null }>('SELECT max(seq)::text AS seq FROM memex.messages WHERE user_id = $1 AND session_id = $2', [uid, sid]);
  return last[0]?.seq == null ? null : BigInt(last[0].seq);
}

/** Inserts message rows in order, taking new seqs; resolves with them by id. */
async function insertMessageRows(client: PoolClient, uid: UserId, sid: SessionId, rows: readonly Record<string, unknown>[]): Promise<Map<string, string>> {
  const seqs = new Map<string, string>();
  if (rows.length === 0) return seqs;
  const { rows: inserted } = await client.query<{ id: string; seq: string }>(
    `INSERT INTO memex.messages (${MESSAGE_INSERT_COLUMNS})
     SELECT $1, $2, ${MESSAGE_INSERT_COLUMNS.split(', ').slice(2).map((c) => `r.${c}`).join(', ')}
       FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS e(value, ord) CROSS JOIN LATERAL jsonb_populate_record(NULL::memex.messages, e.value) AS r
      ORDER BY e.ord
     RETURNING id, seq::text AS seq`,
    [uid, sid, JSON.stringify(rows)],
  );
  for (const row of inserted) seqs.set(row.id, row.seq);
  return seqs;
}

function summaryRowOf(uid: UserId, summary: Summary): Record<string, unknown> {
  return {
    user_id: uid,
    session_id: summary.sessionId,
    text: summary.text,
    covers_through_message_id: summary.coversThroughMessageId,
    covered_messages: summary.coveredMessages,
    method: summary.method,
    model: summary.model ?? null,
    tokens: summary.tokens,
    encoding: summary.encoding ?? null,
    items: summary.items ?? null,
    centroid: summary.centroid ?? null,
    updated_at: summary.updatedAt,
  };
}
