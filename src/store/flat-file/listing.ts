import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { FORMAT_VERSION, MemexError, isMemexError, parseId, parseInput, type SessionId, SessionListOptionsSchema, toMemexError, type UserId } from '../../core/index.js';
import { readSessionCursor, sessionCursor } from '../cursor.js';
import { readJsonRecord } from '../durable.js';
import { foldCase } from '../text.js';
import { Coalescer } from '../serial.js';
import type { ListOptions, SessionPage, TagCount } from '../store.js';
import { sortTagCounts } from '../tags.js';
import { activityOf, comparePositions, sortValue } from '../session-order.js';
import { DEFAULT_PAGE, type FlatFileContext, type IndexEntry, IndexEntrySchema, listDir, sessionKey, type SessionState, summaryOf, type UserIndex } from './context.js';
import { requireUser } from './users.js';
import { loadSession } from './session-state.js';
import { readArchivedMeta, reconcileArchives } from './archive.js';

export async function listSessions(ctx: FlatFileContext, userId: string, options: ListOptions = {}): Promise<SessionPage> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const parsed = parseInput(SessionListOptionsSchema, options, 'list options');
  const { limit = DEFAULT_PAGE, offset, cursor, sort = 'activity', order = 'desc' } = parsed;
  if (offset !== undefined && cursor !== undefined) throw new MemexError('MEMEX_INVALID_INPUT', 'pass either offset or cursor, not both');
  const after = cursor === undefined ? null : readSessionCursor(cursor, sort, order);
  await requireUser(ctx, uid);
  const index = await userIndex(ctx, uid);
  await retryUnreadable(ctx, uid, index);
  const keep = listFilter(parsed);
  const sign = order === 'asc' ? 1 : -1;
  const all = [...index.entries.values()]
    .filter(keep)
    .map((entry) => ({ entry, value: sortValue(entry, sort) }))
    .sort((a, b) => sign * comparePositions(a.value, a.entry.id, b.value, b.entry.id));
  let start = offset ?? 0;
  if (after) {
    // Keyset: the first session after the cursor's place in the order, so sessions created since
    // the last page neither shift this one nor repeat.
    const next = all.findIndex(({ entry, value }) => sign * comparePositions(value, entry.id, after.value, after.id) > 0);
    start = next === -1 ? all.length : next;
  }
  const page = all.slice(start, start + limit);
  const last = page[page.length - 1];
  return {
    sessions: page.map(({ entry: { metaMtimeMs: _m, ...meta } }) => summaryOf(meta)),
    total: all.length,
    offset: start,
    limit,
    nextCursor: last && start + page.length < all.length ? sessionCursor({ sort, order, value: last.value, id: last.entry.id }) : null,
    unreadable: [...index.unreadable.values()],
  };
}

/** Whether a session passes a listing's filters (everything but paging and order). */
function listFilter(options: z.output<typeof SessionListOptionsSchema>): (entry: IndexEntry) => boolean {
  const { title, origin = 'all', tags, personaId, after, before, trashed = 'exclude', archived = 'include' } = options;
  const wanted = title === undefined ? null : foldCase(title);
  return (entry) => {
    if (trashed === 'exclude' ? entry.trashedAt !== null : trashed === 'only' ? entry.trashedAt === null : false) return false;
    if (archived !== 'include' && (archived === 'only') !== (entry.archivedAt !== null)) return false;
    if (wanted !== null && (entry.title === null || !foldCase(entry.title).includes(wanted))) return false;
    if (origin !== 'all' && entry.origin.kind !== origin) return false;
    if (personaId !== undefined && entry.personaId !== personaId) return false;
    if (tags && !tags.every((tag) => entry.tags.includes(tag))) return false;
    const activity = activityOf(entry);
    if (after !== undefined && activity < after) return false;
    if (before !== undefined && activity >= before) return false;
    return true;
  };
}

/** The user's tags on sessions outside the trash, with how many sessions carry each; most used first. */
export async function listTags(ctx: FlatFileContext, userId: string): Promise<TagCount[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  const counts = new Map<string, number>();
  for (const entry of (await userIndex(ctx, uid)).entries.values()) {
    if (entry.trashedAt !== null) continue;
    for (const tag of entry.tags) counts.set(tag, (counts.get(tag) ?? 0) + 1);
  }
  return sortTagCounts(counts);
}

/**
 * The user's listing, loaded once per process: entries from session_index.json are checked
 * against each session folder (meta mtime, log size) and any missing or stale entry is rebuilt
 * from its session. After that the listing is kept current in memory and written atomically.
 */
export function userIndex(ctx: FlatFileContext, userId: UserId): Promise<UserIndex> {
  let loading = ctx.indexes.get(userId);
  if (!loading) {
    loading = loadUserIndex(ctx, userId);
    ctx.indexes.set(userId, loading);
    loading.catch(() => ctx.indexes.delete(userId));
  }
  return loading;
}

async function loadUserIndex(ctx: FlatFileContext, userId: UserId): Promise<UserIndex> {
  const path = ctx.layout.sessionIndex(userId);
  let saved: z.infer<typeof SessionIndexSchema> | null = null;
  let reason: string | null = null;
  try {
    saved = await readJsonRecord(path, SessionIndexSchema, (why, cause) => new MemexError('MEMEX_SESSION_CORRUPT', why, { cause }));
    if (!saved) reason = 'missing';
    else if (saved.userId !== userId) [saved, reason] = [null, 'belongs to another user'];
  } catch (cause) {
    reason = toMemexError(cause).message;
  }
  const known = new Map((saved?.sessions ?? []).map((entry) => [entry.id, entry]));
  const index: UserIndex = {
    entries: new Map(),
    unreadable: new Map(),
    writer: new Coalescer(() => writeIndex(ctx, userId, index)),
    due: null,
  };
  let stale = 0;
  for (const name of await sessionFolderIds(ctx, userId)) {
    let sid: SessionId;
    try {
      sid = parseId('session', name);
    } catch {
      continue;
    }
    const entry = known.get(sid);
    const [metaStat, logStat] = await Promise.all([
      stat(ctx.layout.sessionMeta(userId, sid)).catch(() => null),
      stat(ctx.layout.messages(userId, sid)).catch(() => null),
    ]);
    if (entry && metaStat && entry.metaMtimeMs === metaStat.mtimeMs && entry.messagesBytes === (logStat?.size ?? 0)) {
      index.entries.set(sid, entry);
      continue;
    }
    if (entry) stale++;
    await refreshEntry(ctx, userId, sid, index);
  }
  const parseSession = (name: string): SessionId | null => {
    try {
      return parseId('session', name);
    } catch {
      return null;
    }
  };
  for (const sid of await reconcileArchives(ctx, userId, parseSession)) await refreshEntry(ctx, userId, sid, index);
  // Sessions in memory are the truth: an append may have landed while this listing loaded.
  for (const state of ctx.sessionCache.values()) {
    if (state.meta.userId === userId) index.entries.set(state.meta.id, entryOf(state));
  }
  ctx.loaded.set(userId, index);
  const changed = reason !== null || stale > 0 || known.size !== index.entries.size || [...known.keys()].some((id) => !index.entries.has(id));
  if (changed) {
    // A missing listing for a user without sessions is simply new, not worth a warning.
    if (stale > 0 || (reason !== null && (reason !== 'missing' || index.entries.size > 0))) {
      ctx.warn({ kind: 'session-index-rebuilt', userId, reason: reason ?? `${stale} stale entries` });
    }
    listingChanged(ctx, userId, index);
  }
  return index;
}

async function refreshEntry(ctx: FlatFileContext, userId: UserId, sessionId: SessionId, index: UserIndex): Promise<void> {
  try {
    const state = await ctx.mutex.run(sessionKey(userId, sessionId), async () => {
      try {
        return await loadSession(ctx, userId, sessionId);
      } catch (cause) {
        const archived = isMemexError(cause, 'MEMEX_SESSION_ARCHIVED') ? await readArchivedMeta(ctx, userId, sessionId) : null;
        if (!archived) throw cause;
        return { meta: archived, metaMtimeMs: 0 };
      }
    });
    index.entries.set(sessionId, entryOf(state));
    index.unreadable.delete(sessionId);
  } catch (cause) {
    const error = toMemexError(cause);
    index.entries.delete(sessionId);
    if (error.code === 'MEMEX_SESSION_NOT_FOUND') return;
    index.unreadable.set(sessionId, { sessionId, code: error.code, message: error.message });
    ctx.warn({ kind: 'unreadable', path: ctx.layout.session(userId, sessionId), code: error.code, message: error.message });
  }
}

async function retryUnreadable(ctx: FlatFileContext, userId: UserId, index: UserIndex): Promise<void> {
  if (index.unreadable.size === 0) return;
  for (const sessionId of [...index.unreadable.keys()]) await refreshEntry(ctx, userId, sessionId as SessionId, index);
  listingChanged(ctx, userId, index);
}

/**
 * Puts a session's current meta into the listing, which is written soon after (`listingChanged`).
 * Callers load the listing before taking the session's turn; a listing still loading picks the
 * session up from the cache when it finishes.
 */
export function publish(ctx: FlatFileContext, userId: UserId, state: SessionState): void {
  const index = ctx.loaded.get(userId);
  if (!index) return;
  index.entries.set(state.meta.id, entryOf(state));
  listingChanged(ctx, userId, index);
}

/**
 * How long a changed listing waits to be written; the changes within it share one write. The
 * listing is a cache that loading checks against every session folder, so a write lost to a crash
 * costs a re-read of the sessions changed since. Written on every change, it cost a rewrite of the
 * whole file (every session's entry) per append.
 */
export const LISTING_WRITE_DELAY_MS = 500;

/** Writes the user's listing within LISTING_WRITE_DELAY_MS (or at close, whichever comes first). */
export function listingChanged(ctx: FlatFileContext, userId: UserId, index: UserIndex): void {
  if (index.due !== null) return;
  index.due = setTimeout(() => {
    if (ctx.closed) return; // close writes it (writeChangedListings), before it lets the data dir go
    index.due = null;
    if (ctx.loaded.get(userId) !== index) return; // the user was deleted, or its listing reloaded
    // A failed write is retried by the next change, and the listing rebuilt on open if none comes.
    const written = index.writer.run().catch(() => undefined);
    ctx.inFlight.add(written);
    void written.finally(() => ctx.inFlight.delete(written));
  }, LISTING_WRITE_DELAY_MS);
  index.due.unref();
}

/** Writes every listing with changes still waiting (see `listingChanged`): the store is closing. */
export async function writeChangedListings(ctx: FlatFileContext): Promise<void> {
  const writes: Promise<void>[] = [];
  for (const index of ctx.loaded.values()) {
    if (index.due === null) continue;
    clearTimeout(index.due);
    index.due = null;
    writes.push(index.writer.run());
  }
  await Promise.allSettled(writes);
}

async function writeIndex(ctx: FlatFileContext, userId: UserId, index: UserIndex): Promise<void> {
  if (!ctx.profiles.has(userId)) return; // deleted while this write was queued
  // A cache: rebuilt from the session folders if lost, so it is replaced atomically but not fsynced.
  const listing = { v: FORMAT_VERSION, userId, sessions: [...index.entries.values()] };
  await ctx.durability.writeJsonAtomic(ctx.layout.sessionIndex(userId), listing, { durable: false });
}

const SessionIndexSchema = z.object({
  v: z.literal(FORMAT_VERSION),
  userId: z.string(),
  sessions: z.array(IndexEntrySchema),
});

function entryOf(state: Pick<SessionState, 'meta' | 'metaMtimeMs'>): IndexEntry {
  return { ...state.meta, metaMtimeMs: state.metaMtimeMs };
}

/**
 * The session ids of the user's session folders: native sessions under `sessions/`, imported
 * conversations under `imported/<source>/`.
 */
export async function sessionFolderIds(ctx: FlatFileContext, userId: UserId): Promise<string[]> {
  const ids: string[] = [];
  for (const { dir, idOf } of ctx.layout.sessionFolders(userId)) {
    for (const name of await listDir(dir)) ids.push(idOf(name));
  }
  return ids;
}
