import type { PoolClient } from 'pg';
import { MemexError, parseId, type AttachmentRef, type ContentPart, type Message, type MessageId, type NewMessage, type PersonaId, type PageOptions, type SessionId, type ToolCall, type UserId } from '../../core/index.js';
import { buildMessages, parseBatch, type BatchChecks, type ParsedBatch } from '../new-messages.js';
import { aroundFromRanges, messagePage, messageWindow } from '../paging.js';
import type { AppendOptions, MessagePage, MessagesAround } from '../store.js';
import { sessionTrashed } from '../trash.js';
import { appendTotals } from '../usage.js';
import { foldCase, oneLine } from '../text.js';
import { iso, type PgContext, TITLE_CHARS } from './context.js';
import { deleteChunks } from './chunk-stats.js';
import { requireSession } from './sessions.js';

export interface MessageRow {
  id: MessageId;
  session_id: SessionId;
  seq: string;
  v: 1 | 2;
  role: Message['role'];
  content: string;
  parts: ContentPart[] | null;
  name: string | null;
  tool_calls: ToolCall[] | null;
  tool_call_id: string | null;
  tool_name: string | null;
  metadata: Record<string, unknown>;
  attachments: AttachmentRef[];
  created_at: Date;
  persona_id: PersonaId | null;
}

export const MESSAGE_COLUMNS = 'id, session_id, seq, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at, persona_id';

export function messageOf(row: MessageRow): Message {
  const base = {
    v: row.v,
    id: row.id,
    sessionId: row.session_id,
    content: row.content,
    ...(row.parts !== null ? { parts: row.parts } : {}),
    ...(row.name !== null ? { name: row.name } : {}),
    createdAt: iso(row.created_at),
    metadata: row.metadata,
    attachments: row.attachments,
    ...(row.persona_id !== null ? { personaId: row.persona_id } : {}),
  };
  if (row.role === 'tool') return { ...base, role: 'tool', ...(row.tool_call_id !== null ? { toolCallId: row.tool_call_id } : {}), ...(row.tool_name !== null ? { toolName: row.tool_name } : {}) };
  if (row.role === 'assistant') return { ...base, role: 'assistant', ...(row.tool_calls !== null ? { toolCalls: row.tool_calls } : {}) };
  return row.role === 'user' ? { ...base, role: 'user' } : { ...base, role: 'system' };
}

export async function appendMessages(ctx: PgContext, userId: string, sessionId: string, inputs: readonly NewMessage[], options: AppendOptions = {}): Promise<Message[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const batch = parseBatch(inputs, ctx.limits.maxMessageChars);
  // PostgreSQL text cannot hold NUL; JSON may carry it, so it is refused here with a clear code.
  batch.bodies.forEach((body, i) => {
    if (body.content.includes('\u0000')) throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1} contains a NUL character`);
  });
  return ctx.as(uid, async (client) => {
    // Locking the session row makes appends to one session take turns across every instance.
    const session = await requireSession(client, uid, sid, { lock: true });
    if (session.trashed_at !== null) throw sessionTrashed(sid);
    const messages = await buildMessages(sid, batch, await batchChecks(client, uid, sid, batch));
    await client.query(
      `INSERT INTO memex.messages (user_id, session_id, id, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at, persona_id)
       SELECT $1, $2, m.id, m.v, m.role, m.content, m.parts, m.name, m.tool_calls, m.tool_call_id, m.tool_name, m.metadata, m.attachments, m.created_at, m.persona_id
         FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (id text, v smallint, role text, content text, parts jsonb, name text, tool_calls jsonb,
              tool_call_id text, tool_name text, metadata jsonb, attachments jsonb, created_at timestamptz, persona_id text)) WITH ORDINALITY
              AS m(id, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at, persona_id, ord)
        ORDER BY m.ord`,
      [uid, sid, JSON.stringify(messages.map(rowOf))],
    );
    const firstUser = messages.find((m) => m.role === 'user');
    const modelTitle = options.autoTitle !== undefined && session.title_source !== 'user' ? oneLine(options.autoTitle, TITLE_CHARS) : '';
    if (modelTitle) {
      await client.query("UPDATE memex.sessions SET title = $3, title_key = $4, title_source = 'auto' WHERE user_id = $1 AND id = $2", [uid, sid, modelTitle, foldCase(modelTitle)]);
    } else if (session.title === null && firstUser) {
      const title = oneLine(firstUser.content, TITLE_CHARS);
      if (title) await client.query("UPDATE memex.sessions SET title = $3, title_key = $4, title_source = 'auto' WHERE user_id = $1 AND id = $2 AND title IS NULL", [uid, sid, title, foldCase(title)]);
    }
    // The row is locked (requireSession), so read-add-write of the totals cannot lose a concurrent turn's usage.
    const metadata = appendTotals(session.metadata, messages, options);
    if (metadata) await client.query('UPDATE memex.sessions SET metadata = $3::jsonb WHERE user_id = $1 AND id = $2', [uid, sid, JSON.stringify(metadata)]);
    return messages;
  });
}

export function rowOf(message: Message): Record<string, unknown> {
  return {
    id: message.id,
    v: message.v,
    role: message.role,
    content: message.content,
    parts: message.parts ?? null,
    name: message.name ?? null,
    tool_calls: message.role === 'assistant' ? (message.toolCalls ?? null) : null,
    tool_call_id: message.role === 'tool' ? (message.toolCallId ?? null) : null,
    tool_name: message.role === 'tool' ? (message.toolName ?? null) : null,
    metadata: message.metadata,
    attachments: message.attachments,
    created_at: message.createdAt,
    persona_id: message.personaId ?? null,
  };
}

/** What buildMessages asks of the session, read in two queries for the whole batch. */
async function batchChecks(client: PoolClient, userId: UserId, sessionId: SessionId, batch: ParsedBatch): Promise<BatchChecks> {
  const given = batch.inputs.flatMap((input) => (input.id !== undefined ? [input.id] : []));
  const stored = new Set(
    given.length === 0 ? [] : (await client.query<{ id: string }>('SELECT id FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, given])).rows.map((r) => r.id),
  );
  const fileIds = [...new Set(batch.inputs.flatMap((input) => (input.attachments ?? []).map((a) => a.fileId)))];
  const files = new Set(
    fileIds.length === 0 ? [] : (await client.query<{ id: string }>('SELECT id FROM memex.files WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, fileIds])).rows.map((r) => r.id),
  );
  return {
    exists: (id) => stored.has(id),
    requireFile: (fileId) => {
      if (!files.has(fileId)) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fileId} is not in session ${sessionId}`, { details: { sessionId, fileId } });
    },
  };
}

export async function listMessages(ctx: PgContext, userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid);
    const total = session.message_count;
    const positionOf = async (id: string): Promise<number | undefined> => {
      const { rows } = await client.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM memex.messages o WHERE o.user_id = m.user_id AND o.session_id = m.session_id AND o.seq < m.seq) AS n
           FROM memex.messages m WHERE m.user_id = $1 AND m.session_id = $2 AND m.id = $3`,
        [uid, sid, id],
      );
      return rows[0] ? Number(rows[0].n) : undefined;
    };
    const { start, end, limit } = await messageWindow(page, total, positionOf);
    const { rows } = await client.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM memex.messages WHERE user_id = $1 AND session_id = $2 ORDER BY seq OFFSET $3 LIMIT $4`,
      [uid, sid, start, Math.max(0, end - start)],
    );
    return messagePage(rows.map(messageOf), total, start, limit);
  });
}

/**
 * Neighbours of several messages in two queries: the messages' positions (their rank by sequence
 * number), then the merged ranges around them read by position.
 */
export async function messagesAround(
  ctx: PgContext,
  userId: string,
  sessionId: string,
  messageIds: readonly string[],
  counts: { before: number; after: number },
): Promise<Map<string, MessagesAround>> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid);
    const ids = [...new Set(messageIds)];
    if (ids.length === 0) return new Map<string, MessagesAround>();
    const { rows } = await client.query<{ id: string; n: string }>(
      `SELECT id, n FROM (SELECT id, row_number() OVER (ORDER BY seq) - 1 AS n FROM memex.messages WHERE user_id = $1 AND session_id = $2) ranked WHERE id = ANY($3)`,
      [uid, sid, ids],
    );
    const found = rows.map((row) => ({ id: row.id, at: Number(row.n) }));
    return aroundFromRanges(found, session.message_count, counts, async (ranges) => {
      const { rows: around } = await client.query<MessageRow & { n: string }>(
        `SELECT * FROM (SELECT ${MESSAGE_COLUMNS}, row_number() OVER (ORDER BY seq) - 1 AS n FROM memex.messages WHERE user_id = $1 AND session_id = $2) ranked
          WHERE EXISTS (SELECT 1 FROM unnest($3::bigint[], $4::bigint[]) AS r(s, e) WHERE ranked.n >= r.s AND ranked.n < r.e) ORDER BY n`,
        [uid, sid, ranges.map((r) => r.start), ranges.map((r) => r.end)],
      );
      return new Map(around.map((row) => [Number(row.n), messageOf(row)]));
    });
  });
}

/** The whole history in pages of 500 by sequence number, each read in its own short transaction. */
export async function* streamMessages(ctx: PgContext, userId: string, sessionId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Message> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  let after = -1n;
  for (let first = true; ; first = false) {
    if (options.signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'reading the messages was cancelled');
    const rows = await ctx.as(uid, async (client) => {
      if (first) await requireSession(client, uid, sid);
      return (await client.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND seq > $3 ORDER BY seq LIMIT 500`, [uid, sid, after.toString()])).rows;
    });
    for (const row of rows) yield messageOf(row);
    const last = rows[rows.length - 1];
    if (!last || rows.length < 500) return;
    after = BigInt(last.seq);
  }
}

export async function getMessage(ctx: PgContext, userId: string, sessionId: string, messageId: string): Promise<Message> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  return ctx.as(uid, async (client) => {
    const { rows } = await client.query<MessageRow>(`SELECT ${MESSAGE_COLUMNS} FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3`, [uid, sid, mid]);
    if (rows[0]) return messageOf(rows[0]);
    await requireSession(client, uid, sid);
    throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
  });
}

/** Removes the message, its chunks and the session's summary (which may quote it), in one transaction. */
export async function deleteMessage(ctx: PgContext, userId: string, sessionId: string, messageId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  await ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid, { lock: true });
    await removeMessage(client, uid, sid, mid);
  });
}

/** Deletes the message, its chunks (and their statistics) and the session's summary; the session row must be locked. */
export async function removeMessage(client: PoolClient, uid: UserId, sid: SessionId, mid: string): Promise<void> {
  const { rowCount } = await client.query('DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3', [uid, sid, mid]);
  if (!rowCount) throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
  await deleteChunks(client, uid, "c.session_id = $2 AND c.source_kind = 'message' AND c.message_id = $3", [sid, mid]);
  await client.query('DELETE FROM memex.summaries WHERE user_id = $1 AND session_id = $2', [uid, sid]);
  await client.query('UPDATE memex.sessions SET updated_at = now() WHERE user_id = $1 AND id = $2', [uid, sid]);
}
