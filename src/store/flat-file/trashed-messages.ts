import { rm } from 'node:fs/promises';
import { z } from 'zod';
import {
  MemexError,
  MessageSchema,
  parseId,
  parseInput,
  type SessionId,
  SummarySchema,
  TimestampInputSchema,
  type UserId,
  VectorLineSchema,
  type Message,
  type Summary,
} from '../../core/index.js';
import { readJsonRecord, wrapIo } from '../durable.js';
import type { TrashedMessage, TrashedMessageCopy } from '../store.js';
import { messageNotInTrash, sessionTrashed } from '../trash.js';
import { type FlatFileContext, nowIso, sessionKey, type SessionState } from './context.js';
import { requireUser } from './users.js';
import { countsFromLog, loadSession, sessionVectors, writeMeta } from './session-state.js';
import { publish, userIndex } from './listing.js';
import { messageNotFound, removeMessage } from './messages.js';
import { batchInLog } from './vectors.js';

/**
 * Trashed messages of a session, in `trashed_messages.json` beside its log: each message's line
 * exactly as the log held it, where it stood (the message before it and its position), its vector
 * rows (lines and float32 bytes, base64) and the summary its removal dropped. The message itself
 * leaves the log, its rows leave the vector files, so every reader of the session (listing, search,
 * context windows) is simply without it; restoring puts each back where it was. The file goes with
 * the session's folder when the session is purged.
 */
const TrashedItemSchema = z.object({
  messageId: z.string(),
  trashedAt: z.string(),
  index: z.number().int().nonnegative(),
  after: z.string().nullable(),
  line: z.string(),
  model: z.string().nullable(),
  rows: z.array(VectorLineSchema),
  vectors: z.string(),
  summary: SummarySchema.nullable(),
});
type TrashedItem = z.infer<typeof TrashedItemSchema>;
const TrashFileSchema = z.object({ v: z.literal(1), items: z.array(TrashedItemSchema) });

export async function trashMessage(ctx: FlatFileContext, userId: string, sessionId: string, messageId: string, options: { at?: string } = {}): Promise<TrashedMessage> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  const trashedAt = options.at === undefined ? nowIso() : parseInput(TimestampInputSchema, options.at, 'trash time');
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    if (state.meta.trashedAt !== null) throw sessionTrashed(sid);
    const found = await state.log.line(mid);
    if (!found) throw messageNotFound(sid, mid);
    const message = parseLine(found.bytes.toString('utf8'));
    const previous = found.index > 0 ? (await state.log.range(found.index - 1, found.index))[0] : undefined;
    const rows = await (await sessionVectors(ctx, state, uid, sid)).readMessages(new Set([mid]));
    const item: TrashedItem = {
      messageId: mid,
      trashedAt,
      index: found.index,
      after: previous?.id ?? null,
      line: found.bytes.toString('utf8'),
      model: rows.lines.length > 0 ? rows.model : null,
      rows: rows.lines,
      vectors: Buffer.from(rows.vectors.buffer, rows.vectors.byteOffset, rows.vectors.byteLength).toString('base64'),
      summary: await currentSummary(ctx, state, uid, sid),
    };
    // The copy first: a crash before the removal leaves the message in both places, and restoring
    // it then only forgets the copy.
    const items = (await readItems(ctx, uid, sid)).filter((other) => other.messageId !== mid);
    await writeItems(ctx, uid, sid, [...items, item]);
    await removeMessage(ctx, uid, sid, state, mid);
    return { sessionId: sid, message, trashedAt };
  });
}

export async function untrashMessage(ctx: FlatFileContext, userId: string, sessionId: string, messageId: string): Promise<Message> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    if (state.meta.trashedAt !== null) throw sessionTrashed(sid);
    const items = await readItems(ctx, uid, sid);
    const item = items.find((candidate) => candidate.messageId === mid);
    if (!item) throw messageNotInTrash(sid, mid);
    const message = parseLine(item.line);
    if (!(await state.log.has(mid))) {
      const count = await state.log.count();
      const after = item.after === null ? -1 : await state.log.indexOf(item.after);
      await state.log.insert(after === undefined ? Math.min(item.index, count) : after + 1, Buffer.from(item.line, 'utf8'), ctx.durability);
      await putRowsBack(ctx, uid, sid, state, item);
      const summary = await currentSummary(ctx, state, uid, sid);
      if (summary === null && item.summary !== null) {
        await ctx.durability.writeJsonAtomic(ctx.layout.sessionFile(uid, sid, 'summary.json'), item.summary, { durable: ctx.durability.policy === 'always' });
        state.summary = item.summary;
      }
      await writeMeta(ctx, state, { ...state.meta, ...(await countsFromLog(state.log)), updatedAt: nowIso() });
      publish(ctx, uid, state);
    }
    await writeItems(ctx, uid, sid, items.filter((other) => other !== item));
    return message;
  });
}

export async function listTrashedMessages(ctx: FlatFileContext, userId: string): Promise<TrashedMessage[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  const found: TrashedMessage[] = [];
  for (const sid of (await userIndex(ctx, uid)).entries.keys()) {
    const items = await ctx.mutex.run(sessionKey(uid, sid), () => readItems(ctx, uid, sid));
    for (const item of items) found.push({ sessionId: sid, message: parseLine(item.line), trashedAt: item.trashedAt });
  }
  return found.sort((a, b) => (a.trashedAt < b.trashedAt ? -1 : a.trashedAt > b.trashedAt ? 1 : 0));
}

export async function purgeTrashedMessage(ctx: FlatFileContext, userId: string, sessionId: string, messageId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const mid = parseId('message', messageId);
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    await loadSession(ctx, uid, sid);
    const items = await readItems(ctx, uid, sid);
    const kept = items.filter((item) => item.messageId !== mid);
    if (kept.length === items.length) throw messageNotInTrash(sid, mid);
    await writeItems(ctx, uid, sid, kept);
  });
}

export async function readTrashedMessages(ctx: FlatFileContext, userId: string, sessionId: string): Promise<TrashedMessageCopy[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await requireUser(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    await loadSession(ctx, uid, sid);
    return copiesOf(await readItems(ctx, uid, sid), sid);
  });
}

/** The trash of an archived session's extracted copy (`trashed_messages.json` at `path`). */
export async function trashedCopiesAt(path: string, sid: SessionId): Promise<TrashedMessageCopy[]> {
  const file = await readJsonRecord(path, TrashFileSchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause, details: { path } }));
  return copiesOf(file?.items ?? [], sid);
}

function copiesOf(items: readonly TrashedItem[], sid: SessionId): TrashedMessageCopy[] {
  return items
    .map((item) => {
      const saved = Buffer.from(item.vectors, 'base64');
      return {
        sessionId: sid,
        message: parseLine(item.line),
        trashedAt: item.trashedAt,
        after: item.after,
        index: item.index,
        summary: item.summary,
        model: item.model,
        lines: item.rows,
        vectors: new Float32Array(saved.buffer.slice(saved.byteOffset, saved.byteOffset + saved.byteLength)),
      };
    })
    .sort((a, b) => (a.trashedAt < b.trashedAt ? -1 : a.trashedAt > b.trashedAt ? 1 : 0));
}

export async function restoreTrashedMessage(ctx: FlatFileContext, userId: string, sessionId: string, copy: TrashedMessageCopy): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const message = parseInput(MessageSchema, { ...copy.message, sessionId: sid }, 'trashed message');
  const trashedAt = parseInput(TimestampInputSchema, copy.trashedAt, 'trash time');
  const rows = parseInput(z.array(VectorLineSchema), copy.lines, 'trashed message rows');
  const summary = copy.summary === null ? null : parseInput(SummarySchema, { ...copy.summary, sessionId: sid }, 'trashed message summary');
  if (rows.length > 0 ? copy.vectors.length % rows.length !== 0 : copy.vectors.length !== 0) {
    throw new MemexError('MEMEX_INVALID_INPUT', `trashed message ${message.id}: ${copy.vectors.length} floats do not make ${rows.length} rows`);
  }
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    await loadSession(ctx, uid, sid);
    const item: TrashedItem = {
      messageId: message.id,
      trashedAt,
      index: copy.index,
      after: copy.after,
      line: JSON.stringify(message),
      model: rows.length > 0 ? copy.model : null,
      rows,
      vectors: Buffer.from(copy.vectors.buffer, copy.vectors.byteOffset, copy.vectors.byteLength).toString('base64'),
      summary,
    };
    const items = (await readItems(ctx, uid, sid)).filter((other) => other.messageId !== message.id);
    await writeItems(ctx, uid, sid, [...items, item]);
  });
}

/** The saved rows back among the session's, in log order (the vector files follow the log); skipped when the session's rows were remade with another model since. */
async function putRowsBack(ctx: FlatFileContext, uid: UserId, sid: SessionId, state: SessionState, item: TrashedItem): Promise<void> {
  if (item.rows.length === 0 || item.model === null) return;
  const vectors = await sessionVectors(ctx, state, uid, sid);
  const current = await vectors.read();
  if (current.model !== null && current.model !== item.model) return;
  const saved = Buffer.from(item.vectors, 'base64');
  const savedRows = new Float32Array(saved.buffer.slice(saved.byteOffset, saved.byteOffset + saved.byteLength));
  const dimension = savedRows.length / item.rows.length;
  const currentDimension = current.dimension ?? dimension;
  const batch = await batchInLog(ctx, uid, state, {
    model: item.model,
    chunks: [...current.lines, ...item.rows],
    vectors: [
      ...current.lines.map((_, i) => current.vectors.subarray(i * currentDimension, (i + 1) * currentDimension)),
      ...item.rows.map((_, i) => savedRows.subarray(i * dimension, (i + 1) * dimension)),
    ],
  }, () => true);
  await vectors.replace(batch);
  ctx.bumpVectors(uid);
}

async function currentSummary(ctx: FlatFileContext, state: SessionState, uid: UserId, sid: SessionId): Promise<Summary | null> {
  if (state.summary !== undefined) return state.summary;
  try {
    return await readJsonRecord(ctx.layout.sessionFile(uid, sid, 'summary.json'), SummarySchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause }));
  } catch {
    return null; // derived: an unreadable summary is made again
  }
}

function parseLine(line: string): Message {
  return MessageSchema.parse(JSON.parse(line));
}

async function readItems(ctx: FlatFileContext, uid: UserId, sid: SessionId): Promise<TrashedItem[]> {
  const path = ctx.layout.sessionFile(uid, sid, 'trashed_messages.json');
  const file = await readJsonRecord(path, TrashFileSchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause, details: { path } }));
  return file?.items ?? [];
}

async function writeItems(ctx: FlatFileContext, uid: UserId, sid: SessionId, items: TrashedItem[]): Promise<void> {
  const path = ctx.layout.sessionFile(uid, sid, 'trashed_messages.json');
  if (items.length === 0) {
    await rm(path, { force: true }).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot remove ${path}`);
    });
    return;
  }
  await ctx.durability.writeJsonAtomic(path, { v: 1, items });
}
