import { rm } from 'node:fs/promises';
import type { z } from 'zod';
import { MemexError, type Message, messageBody, type MessageBody, type NewMessage, newMessageId, NewMessageSchema, type PageOptions, PageOptionsSchema, parseId, parseInput, type SessionId, type UserId } from '../../core/index.js';
import { messageCursor, readMessageCursor } from '../cursor.js';
import { wrapIo } from '../durable.js';
import type { MessagePage } from '../store.js';
import { DEFAULT_PAGE, definedOnly, type FlatFileContext, nowIso, oneLine, PREVIEW_CHARS, sessionKey, type SessionState, TITLE_CHARS } from './context.js';
import { requireUser } from './users.js';
import { countsFromLog, loadSession, sessionVectors, writeMeta } from './session-state.js';
import { publish, userIndex } from './listing.js';
import { getFileRecord } from './files.js';

export async function appendMessages(ctx: FlatFileContext, userId: string, sessionId: string, inputs: readonly NewMessage[]): Promise<Message[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  if (!Array.isArray(inputs) || inputs.length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'no messages to append');
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  const parsed = inputs.map((input, i) => parseInput(NewMessageSchema, input, inputs.length > 1 ? `message ${i + 1}` : 'message'));
  const bodies = parsed.map(messageBody);
  for (const [i, message] of parsed.entries()) {
    const body = bodies[i] as MessageBody;
    if (body.size > ctx.limits.maxMessageChars) {
      throw new MemexError('MEMEX_MESSAGE_TOO_LARGE', `message ${i + 1} has ${body.size} characters; the limit is ${ctx.limits.maxMessageChars}`, {
        details: { maxMessageChars: ctx.limits.maxMessageChars },
      });
    }
    // An image, a tool call or an attachment is content too.
    if (body.content.trim() === '' && (message.attachments ?? []).length === 0 && !body.parts?.length && !body.toolCalls) {
      throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1} has no content and no attachments`);
    }
  }
  const { state, messages: written } = await ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const messages = await buildMessages(ctx, uid, sid, state, parsed, bodies);
    await state.log.append(messages, ctx.durability);
    const last = messages[messages.length - 1];
    const firstUser = messages.find((m) => m.role === 'user');
    const autoTitle = state.meta.title === null && firstUser ? oneLine(firstUser.content, TITLE_CHARS) : '';
    state.meta = {
      ...state.meta,
      ...(autoTitle ? { title: autoTitle, titleSource: 'auto' as const } : {}),
      messageCount: state.meta.messageCount + messages.length,
      lastMessageAt: last?.createdAt ?? state.meta.lastMessageAt,
      lastMessagePreview: last ? oneLine(last.content, PREVIEW_CHARS) : state.meta.lastMessagePreview,
      messagesBytes: state.log.size,
      updatedAt: nowIso(),
    };
    return { state, messages };
  });
  // Outside the session's turn, so concurrent appenders share the log's fsync (under `group`),
  // the meta write and the listing write. The meta's counts are rebuilt from the log if a crash
  // loses this write (see loadSession), so the log alone decides what was appended.
  const settle = (async () => {
    await Promise.all([ctx.durability.commit(ctx.layout.messages(uid, sid)), state.metaWriter.run()]);
    await publish(ctx, uid, state);
  })();
  ctx.inFlight.add(settle);
  try {
    await settle;
  } finally {
    ctx.inFlight.delete(settle);
  }
  return written;
}

async function buildMessages(ctx: FlatFileContext, userId: UserId, sessionId: SessionId, state: SessionState, inputs: readonly z.output<typeof NewMessageSchema>[], bodies: readonly MessageBody[]): Promise<Message[]> {
  const seen = new Set<string>();
  const now = Date.now();
  const out: Message[] = [];
  for (const [i, input] of inputs.entries()) {
    if (input.id !== undefined && seen.has(input.id)) {
      throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1}: id ${input.id} appears twice in the batch`, { details: { messageId: input.id } });
    }
    // A retry of an append that succeeded: a conflict, so a client can tell it from bad input.
    if (input.id !== undefined && (await state.log.has(input.id))) {
      throw new MemexError('MEMEX_MESSAGE_EXISTS', `message ${i + 1}: id ${input.id} is already in session ${sessionId}`, { details: { messageId: input.id, sessionId } });
    }
    const attachments = input.attachments ?? [];
    for (const attachment of attachments) await getFileRecord(ctx, userId, sessionId, attachment.fileId);
    const id = input.id ?? newMessageId(now);
    seen.add(id);
    const { v, content, parts, name, toolCalls, toolCallId, toolName } = bodies[i] as MessageBody;
    const base = {
      v,
      id,
      sessionId,
      content,
      ...definedOnly({ parts, name }),
      createdAt: input.createdAt ?? new Date(now).toISOString(),
      metadata: input.metadata ?? {},
      attachments,
    };
    out.push(
      input.role === 'tool'
        ? { ...base, role: 'tool', ...definedOnly({ toolCallId, toolName }) }
        : input.role === 'assistant'
          ? { ...base, role: 'assistant', ...definedOnly({ toolCalls }) }
          : { ...base, role: input.role },
    );
  }
  return out;
}

export async function listMessages(ctx: FlatFileContext, userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const { limit = DEFAULT_PAGE, offset, cursor, before, latest } = parseInput(PageOptionsSchema, page, 'page options');
  const starts = [offset !== undefined, cursor !== undefined, before !== undefined, latest === true].filter(Boolean).length;
  if (starts > 1) throw new MemexError('MEMEX_INVALID_INPUT', 'pass one of offset, cursor, before or latest');
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const { log } = await loadSession(ctx, uid, sid);
    const total = await log.count();
    const at = async (messageCursor: string): Promise<number> => {
      const index = await log.indexOf(readMessageCursor(messageCursor));
      if (index === undefined) throw new MemexError('MEMEX_INVALID_CURSOR', 'the cursor does not point at a message of this session');
      return index;
    };
    let start = offset ?? 0;
    if (cursor !== undefined) start = (await at(cursor)) + 1;
    if (before !== undefined) start = Math.max(0, (await at(before)) - limit);
    if (latest) start = Math.max(0, total - limit);
    const end = before !== undefined ? Math.min(start + limit, await at(before)) : start + limit;
    const messages = await log.range(start, end);
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

export async function* streamMessages(ctx: FlatFileContext, userId: string, sessionId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Message> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const { log } = await ctx.mutex.run(sessionKey(uid, sid), () => loadSession(ctx, uid, sid));
  yield* log.stream(options.signal);
}

export async function getMessage(ctx: FlatFileContext, userId: string, sessionId: string, messageId: string): Promise<Message> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const message = await (await loadSession(ctx, uid, sid)).log.get(mid);
    if (!message) throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
    return message;
  });
}

export async function deleteMessage(ctx: FlatFileContext, userId: string, sessionId: string, messageId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    if (!(await state.log.has(mid))) {
      throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
    }
    // Rows first: a crash in between leaves the message without rows (embedded again on open when
    // it is the last one, else still listed and deletable), never rows of a message that is gone.
    await (await sessionVectors(ctx, state, uid, sid)).removeMessage(mid);
    ctx.bumpVectors(uid);
    await state.log.remove(mid, ctx.durability);
    // The summary may quote the message: it goes too, and is rebuilt from what is left.
    state.summary = null;
    await rm(ctx.layout.sessionFile(uid, sid, 'summary.json'), { force: true }).catch((cause: unknown) => {
      throw wrapIo(cause, 'cannot remove summary.json');
    });
    await writeMeta(ctx, state, { ...state.meta, ...(await countsFromLog(state.log)), updatedAt: nowIso() });
    await publish(ctx, uid, state);
  });
}
