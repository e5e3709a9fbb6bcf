import { parseId, parseInput, TimestampInputSchema, type Message } from '../../core/index.js';
import type { TrashedMessage } from '../store.js';
import { messageNotInTrash, sessionTrashed } from '../trash.js';
import { countChunks, type CountedChunk } from './chunk-stats.js';
import { iso, type PgContext } from './context.js';
import { MESSAGE_COLUMNS, messageOf, type MessageRow, removeMessage } from './messages.js';
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
    await removeMessage(client, uid, sid, mid); // MEMEX_MESSAGE_NOT_FOUND (rolling back the copy) when it is not there
    return { sessionId: sid, message: messageOf(rows[0] as MessageRow), trashedAt: new Date(trashedAt).toISOString() };
  });
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
