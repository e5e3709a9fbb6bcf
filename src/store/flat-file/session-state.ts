import { MemexError, type SessionId, type SessionMeta, SessionMetaSchema, type UserId } from '../../core/index.js';
import { exists, readJsonRecord } from '../durable.js';
import { Coalescer } from '../serial.js';
import { type FlatFileContext, mtimeOf, oneLine, PREVIEW_CHARS, SESSION_CACHE_SIZE, sessionKey, type SessionState } from './context.js';
import { MessageLog } from './message-log.js';
import { SessionVectors, type VectorPaths } from './session-vectors.js';
import { requireUser } from './users.js';

/** Reads a session's meta and opens its log (repairing a torn tail). Call inside the session's mutex. */
export async function loadSession(ctx: FlatFileContext, userId: UserId, sessionId: SessionId): Promise<SessionState> {
  const key = sessionKey(userId, sessionId);
  const cached = ctx.sessionCache.get(key);
  if (cached) {
    ctx.sessionCache.delete(key);
    ctx.sessionCache.set(key, cached);
    return cached;
  }
  await requireUser(ctx, userId);
  const path = ctx.layout.sessionMeta(userId, sessionId);
  const meta = await readJsonRecord(
    path,
    SessionMetaSchema,
    (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: ${reason}`, { cause, details: { sessionId, path } }),
  );
  if (!meta && (await exists(ctx.layout.archivedMeta(userId, sessionId)))) {
    throw new MemexError('MEMEX_SESSION_ARCHIVED', `session ${sessionId} is archived; unarchive it to read or change its messages`, { details: { sessionId } });
  }
  if (!meta || meta.id !== sessionId) {
    throw new MemexError('MEMEX_SESSION_NOT_FOUND', `session ${sessionId} does not exist for user ${userId}`, { details: { userId, sessionId } });
  }
  if (meta.userId !== userId) {
    throw new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: ${path} belongs to user ${meta.userId}`, { details: { sessionId, path } });
  }
  const { log, repair } = await MessageLog.open(ctx.layout.messages(userId, sessionId), sessionId, ctx.durability, (found) =>
    ctx.warn({ kind: 'corrupt-lines-skipped', ...found }),
  );
  if (repair) ctx.warn({ kind: 'torn-line-repaired', ...repair });
  const state = stateOf(ctx, meta, log, await mtimeOf(path), null);
  if (log.size !== meta.messagesBytes) {
    // The log and the counts in the meta disagree (a crash between their writes): the log wins.
    const reconciled: SessionMeta = { ...meta, ...(await countsFromLog(log)) };
    await writeMeta(ctx, state, reconciled);
    ctx.warn({ kind: 'counts-reconciled', path, messageCount: reconciled.messageCount });
  }
  return remember(ctx, state);
}

/**
 * The state of a session this store has just written, with its meta and nothing else: no log and
 * no vectors to open or check, so none are read back. Call inside the session's mutex.
 */
export async function newSessionState(ctx: FlatFileContext, meta: SessionMeta): Promise<SessionState> {
  const { userId, id } = meta;
  const log = MessageLog.empty(ctx.layout.messages(userId, id), id, (found) => ctx.warn({ kind: 'corrupt-lines-skipped', ...found }));
  const vectors = SessionVectors.empty(vectorPaths(ctx, userId, id), ctx.durability);
  return remember(ctx, stateOf(ctx, meta, log, await mtimeOf(ctx.layout.sessionMeta(userId, id)), vectors));
}

function stateOf(ctx: FlatFileContext, meta: SessionMeta, log: MessageLog, metaMtimeMs: number, vectors: SessionVectors | null): SessionState {
  const path = ctx.layout.sessionMeta(meta.userId, meta.id);
  const state: SessionState = {
    meta,
    log,
    metaMtimeMs,
    metaWriter: new Coalescer(async () => {
      await ctx.durability.writeJsonAtomic(path, state.meta);
      state.metaMtimeMs = await mtimeOf(path);
    }),
    vectors,
  };
  return state;
}

function remember(ctx: FlatFileContext, state: SessionState): SessionState {
  ctx.sessionCache.set(sessionKey(state.meta.userId, state.meta.id), state);
  if (ctx.sessionCache.size > SESSION_CACHE_SIZE) {
    const oldest = ctx.sessionCache.keys().next().value;
    if (oldest !== undefined) ctx.sessionCache.delete(oldest);
  }
  return state;
}

export async function writeMeta(ctx: FlatFileContext, state: SessionState, meta: SessionMeta): Promise<void> {
  state.meta = meta;
  await state.metaWriter.run();
}

/** Opens the session's vector files once (reconciling them); call inside the session's turn. */
export async function sessionVectors(ctx: FlatFileContext, state: SessionState, userId: UserId, sessionId: SessionId): Promise<SessionVectors> {
  if (state.vectors) return state.vectors;
  const { vectors, repair } = await SessionVectors.open(vectorPaths(ctx, userId, sessionId), ctx.durability);
  if (repair) {
    ctx.warn({ kind: 'vectors-reconciled', ...repair });
    ctx.bumpVectors(userId);
  }
  state.vectors = vectors;
  return vectors;
}

function vectorPaths(ctx: FlatFileContext, userId: UserId, sessionId: SessionId): VectorPaths {
  return {
    index: ctx.layout.sessionFile(userId, sessionId, 'vector_index.jsonl'),
    npy: ctx.layout.sessionFile(userId, sessionId, 'embeddings.npy'),
    journal: ctx.layout.sessionFile(userId, sessionId, 'vectors.swap.json'),
  };
}

/** What a session's meta says of its log, read from the log itself (the log decides). */
export async function countsFromLog(log: MessageLog): Promise<Pick<SessionMeta, 'messageCount' | 'lastMessageAt' | 'lastMessagePreview' | 'messagesBytes'>> {
  const last = await log.last();
  return {
    messageCount: await log.count(),
    lastMessageAt: last?.createdAt ?? null,
    lastMessagePreview: last ? oneLine(last.content, PREVIEW_CHARS) : null,
    messagesBytes: log.size,
  };
}
