import type { PoolClient } from 'pg';
import type { z } from 'zod';
import {
  MemexError,
  messageBody,
  newMessageId,
  NewMessageSchema,
  PageOptionsSchema,
  parseId,
  parseInput,
  type AttachmentRef,
  type ContentPart,
  type Message,
  type MessageBody,
  type MessageId,
  type NewMessage,
  type PageOptions,
  type SessionId,
  type ToolCall,
  type UserId,
} from '../../core/index.js';
import { messageCursor, readMessageCursor } from '../cursor.js';
import type { MessagePage } from '../store.js';
import { foldCase, oneLine } from '../text.js';
import { DEFAULT_PAGE, iso, type PgContext, TITLE_CHARS } from './context.js';
import { requireSession } from './sessions.js';

interface MessageRow {
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
}

export const MESSAGE_COLUMNS = 'id, session_id, seq, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at';

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
  };
  if (row.role === 'tool') return { ...base, role: 'tool', ...(row.tool_call_id !== null ? { toolCallId: row.tool_call_id } : {}), ...(row.tool_name !== null ? { toolName: row.tool_name } : {}) };
  if (row.role === 'assistant') return { ...base, role: 'assistant', ...(row.tool_calls !== null ? { toolCalls: row.tool_calls } : {}) };
  return row.role === 'user' ? { ...base, role: 'user' } : { ...base, role: 'system' };
}

export async function appendMessages(ctx: PgContext, userId: string, sessionId: string, inputs: readonly NewMessage[]): Promise<Message[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  if (!Array.isArray(inputs) || inputs.length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'no messages to append');
  const parsed = inputs.map((input, i) => parseInput(NewMessageSchema, input, inputs.length > 1 ? `message ${i + 1}` : 'message'));
  const bodies = parsed.map(messageBody);
  for (const [i, message] of parsed.entries()) {
    const body = bodies[i] as MessageBody;
    if (body.size > ctx.limits.maxMessageChars) {
      throw new MemexError('MEMEX_MESSAGE_TOO_LARGE', `message ${i + 1} has ${body.size} characters; the limit is ${ctx.limits.maxMessageChars}`, {
        details: { maxMessageChars: ctx.limits.maxMessageChars },
      });
    }
    if (body.content.trim() === '' && (message.attachments ?? []).length === 0 && !body.parts?.length && !body.toolCalls) {
      throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1} has no content and no attachments`);
    }
    // PostgreSQL text cannot hold NUL; JSON may carry it, so it is refused here with a clear code.
    if (body.content.includes('\u0000')) throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1} contains a NUL character`);
  }
  return ctx.as(uid, async (client) => {
    // Locking the session row makes appends to one session take turns across every instance.
    const session = await requireSession(client, uid, sid, { lock: true });
    const messages = await buildMessages(client, uid, sid, parsed, bodies);
    await client.query(
      `INSERT INTO memex.messages (user_id, session_id, id, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at)
       SELECT $1, $2, m.id, m.v, m.role, m.content, m.parts, m.name, m.tool_calls, m.tool_call_id, m.tool_name, m.metadata, m.attachments, m.created_at
         FROM ROWS FROM (jsonb_to_recordset($3::jsonb) AS (id text, v smallint, role text, content text, parts jsonb, name text, tool_calls jsonb,
              tool_call_id text, tool_name text, metadata jsonb, attachments jsonb, created_at timestamptz)) WITH ORDINALITY
              AS m(id, v, role, content, parts, name, tool_calls, tool_call_id, tool_name, metadata, attachments, created_at, ord)
        ORDER BY m.ord`,
      [uid, sid, JSON.stringify(messages.map(rowOf))],
    );
    const firstUser = messages.find((m) => m.role === 'user');
    if (session.title === null && firstUser) {
      const title = oneLine(firstUser.content, TITLE_CHARS);
      if (title) await client.query("UPDATE memex.sessions SET title = $3, title_key = $4, title_source = 'auto' WHERE user_id = $1 AND id = $2 AND title IS NULL", [uid, sid, title, foldCase(title)]);
    }
    return messages;
  });
}

function rowOf(message: Message): Record<string, unknown> {
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
  };
}

async function buildMessages(client: PoolClient, userId: UserId, sessionId: SessionId, inputs: readonly z.output<typeof NewMessageSchema>[], bodies: readonly MessageBody[]): Promise<Message[]> {
  const given = inputs.flatMap((input) => (input.id !== undefined ? [input.id] : []));
  const stored = new Set(
    given.length === 0 ? [] : (await client.query<{ id: string }>('SELECT id FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, given])).rows.map((r) => r.id),
  );
  const fileIds = [...new Set(inputs.flatMap((input) => (input.attachments ?? []).map((a) => a.fileId)))];
  const files = new Set(
    fileIds.length === 0 ? [] : (await client.query<{ id: string }>('SELECT id FROM memex.files WHERE user_id = $1 AND session_id = $2 AND id = ANY($3)', [userId, sessionId, fileIds])).rows.map((r) => r.id),
  );
  const seen = new Set<string>();
  const now = Date.now();
  const out: Message[] = [];
  for (const [i, input] of inputs.entries()) {
    if (input.id !== undefined && seen.has(input.id)) {
      throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1}: id ${input.id} appears twice in the batch`, { details: { messageId: input.id } });
    }
    if (input.id !== undefined && stored.has(input.id)) {
      throw new MemexError('MEMEX_MESSAGE_EXISTS', `message ${i + 1}: id ${input.id} is already in session ${sessionId}`, { details: { messageId: input.id, sessionId } });
    }
    const attachments = input.attachments ?? [];
    for (const attachment of attachments) {
      if (!files.has(attachment.fileId)) {
        throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${attachment.fileId} is not in session ${sessionId}`, { details: { sessionId, fileId: attachment.fileId } });
      }
    }
    const id = input.id ?? newMessageId(now);
    seen.add(id);
    const { v, content, parts, name, toolCalls, toolCallId, toolName } = bodies[i] as MessageBody;
    const base = {
      v,
      id,
      sessionId,
      content,
      ...(parts !== undefined ? { parts } : {}),
      ...(name !== undefined ? { name } : {}),
      createdAt: input.createdAt ?? new Date(now).toISOString(),
      metadata: input.metadata ?? {},
      attachments,
    };
    out.push(
      input.role === 'tool'
        ? { ...base, role: 'tool', ...(toolCallId !== undefined ? { toolCallId } : {}), ...(toolName !== undefined ? { toolName } : {}) }
        : input.role === 'assistant'
          ? { ...base, role: 'assistant', ...(toolCalls !== undefined ? { toolCalls } : {}) }
          : { ...base, role: input.role },
    );
  }
  return out;
}

export async function listMessages(ctx: PgContext, userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const { limit = DEFAULT_PAGE, offset, cursor, before, latest } = parseInput(PageOptionsSchema, page, 'page options');
  const starts = [offset !== undefined, cursor !== undefined, before !== undefined, latest === true].filter(Boolean).length;
  if (starts > 1) throw new MemexError('MEMEX_INVALID_INPUT', 'pass one of offset, cursor, before or latest');
  return ctx.as(uid, async (client) => {
    const session = await requireSession(client, uid, sid);
    const total = session.message_count;
    const at = async (encoded: string): Promise<number> => {
      const id = readMessageCursor(encoded);
      const { rows } = await client.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM memex.messages o WHERE o.user_id = m.user_id AND o.session_id = m.session_id AND o.seq < m.seq) AS n
           FROM memex.messages m WHERE m.user_id = $1 AND m.session_id = $2 AND m.id = $3`,
        [uid, sid, id],
      );
      if (!rows[0]) throw new MemexError('MEMEX_INVALID_CURSOR', 'the cursor does not point at a message of this session');
      return Number(rows[0].n);
    };
    let start = offset ?? 0;
    if (cursor !== undefined) start = (await at(cursor)) + 1;
    let end = start + limit;
    if (before !== undefined) {
      const position = await at(before);
      start = Math.max(0, position - limit);
      end = Math.min(start + limit, position);
    }
    if (latest) {
      start = Math.max(0, total - limit);
      end = start + limit;
    }
    const { rows } = await client.query<MessageRow>(
      `SELECT ${MESSAGE_COLUMNS} FROM memex.messages WHERE user_id = $1 AND session_id = $2 ORDER BY seq OFFSET $3 LIMIT $4`,
      [uid, sid, start, Math.max(0, end - start)],
    );
    const messages = rows.map(messageOf);
    const first = messages[0];
    const last = messages[messages.length - 1];
    return {
      messages,
      total,
      offset: start,
      limit,
      nextCursor: last && start + messages.length < total ? messageCursor(last.id) : null,
      prevCursor: first && start > 0 ? messageCursor(first.id) : null,
    };
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
    const { rowCount } = await client.query('DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3', [uid, sid, mid]);
    if (!rowCount) throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
    await client.query("DELETE FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND source_kind = 'message' AND message_id = $3", [uid, sid, mid]);
    await client.query('DELETE FROM memex.summaries WHERE user_id = $1 AND session_id = $2', [uid, sid]);
    await client.query('UPDATE memex.sessions SET updated_at = now() WHERE user_id = $1 AND id = $2', [uid, sid]);
  });
}
