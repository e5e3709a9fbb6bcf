import { rm } from 'node:fs/promises';
import { MemexError, type Message, type NewMessage, type PageOptions, parseId, type SessionId, type UserId } from '../../core/index.js';
import { wrapIo } from '../durable.js';
import { buildMessages, parseBatch } from '../new-messages.js';
import { aroundFromRanges, messagePage, messageWindow } from '../paging.js';
import type { AppendOptions, MessagePage, MessagesAround } from '../store.js';
import { sessionTrashed } from '../trash.js';
import { appendTotals } from '../usage.js';
import { type FlatFileContext, type SessionState, nowIso, oneLine, PREVIEW_CHARS, sessionKey, TITLE_CHARS } from './context.js';
import { requireUser } from './users.js';
import { countsFromLog, loadSession, sessionVectors, writeMeta } from './session-state.js';
import { publish, userIndex } from './listing.js';
import { getFileRecord } from './files.js';

export async function appendMessages(ctx: FlatFileContext, userId: string, sessionId: string, inputs: readonly NewMessage[], options: AppendOptions = {}): Promise<Message[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const batch = parseBatch(inputs, ctx.limits.maxMessageChars);
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  const { state, messages: written } = await ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    if (state.meta.trashedAt !== null) throw sessionTrashed(sid);
    const messages = await buildMessages(sid, batch, {
      exists: (id) => state.log.has(id),
      requireFile: async (fileId) => void (await getFileRecord(ctx, uid, sid, fileId)),
    });
    await state.log.append(messages, ctx.durability);
    const last = messages[messages.length - 1];
    const firstUser = messages.find((m) => m.role === 'user');
    const modelTitle = options.autoTitle !== undefined && state.meta.titleSource !== 'user' ? oneLine(options.autoTitle, TITLE_CHARS) : '';
    const autoTitle = modelTitle || (state.meta.title === null && firstUser ? oneLine(firstUser.content, TITLE_CHARS) : '');
    const metadata = appendTotals(state.meta.metadata, messages, options);
    state.meta = {
      ...state.meta,
      ...(autoTitle ? { title: autoTitle, titleSource: 'auto' as const } : {}),
      ...(metadata ? { metadata } : {}),
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
  const settle = Promise.all([ctx.durability.commit(ctx.layout.messages(uid, sid)), state.metaWriter.run()]);
  ctx.inFlight.add(settle);
  try {
    await settle;
  } finally {
    ctx.inFlight.delete(settle);
  }
  publish(ctx, uid, state);
  return written;
}

export async function listMessages(ctx: FlatFileContext, userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const { log } = await loadSession(ctx, uid, sid);
    const total = await log.count();
    const { start, end, limit } = await messageWindow(page, total, (id) => log.indexOf(id));
    return messagePage(await log.range(start, end), total, start, limit);
  });
}

/**
 * Neighbours of several messages: their positions from the log's index, then the messages around
 * them in one read of the log (`MessageLog.pick`).
 */
export async function messagesAround(
  ctx: FlatFileContext,
  userId: string,
  sessionId: string,
  messageIds: readonly string[],
  counts: { before: number; after: number },
): Promise<Map<string, MessagesAround>> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const { log } = await loadSession(ctx, uid, sid);
    const total = await log.count();
    const found: { id: string; at: number }[] = [];
    for (const id of new Set(messageIds)) {
      const at = await log.indexOf(id);
      if (at !== undefined) found.push({ id, at });
    }
    return aroundFromRanges(found, total, counts, (ranges) => log.pick(ranges.flatMap(({ start, end }) => Array.from({ length: end - start }, (_, i) => start + i))));
  });
}

/** The log's stamp (MessageLog.stamp): the same while the session's messages only grow. */
export async function messageLogStamp(ctx: FlatFileContext, userId: string, sessionId: string): Promise<string> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => (await loadSession(ctx, uid, sid)).log.stamp);
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
    if (!(await state.log.has(mid))) throw messageNotFound(sid, mid);
    await removeMessage(ctx, uid, sid, state, mid);
  });
}

export function messageNotFound(sessionId: string, messageId: string): MemexError {
  return new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${messageId} is not in session ${sessionId}`, { details: { sessionId, messageId } });
}

/** Takes a message the log holds out of the session: its rows, its line, the summary; the counts follow. Call inside the session's turn. */
export async function removeMessage(ctx: FlatFileContext, uid: UserId, sid: SessionId, state: SessionState, mid: string): Promise<void> {
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
  publish(ctx, uid, state);
}
