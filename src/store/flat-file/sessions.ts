import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT_VERSION, isMemexError, TimestampInputSchema, type NewSession, newSessionId, NewSessionSchema, parseId, parseInput, type SessionId, type SessionMeta, SessionMetaSchema, SessionLineageInputSchema, noLineage, type SessionLineage, type SessionUpdate, SessionUpdateSchema, type SessionSummary, type UserId } from '../../core/index.js';
import type { RestoredSession } from '../store.js';
import { normalTags, patchTags } from '../tags.js';
import { notInTrash } from '../trash.js';
import { wrapIo } from '../durable.js';
import { type FlatFileContext, nowIso, sessionKey, summaryOf } from './context.js';
import { requireUser } from './users.js';
import { loadSession, newSessionState, writeMeta } from './session-state.js';
import { listingChanged, publish, userIndex } from './listing.js';
import { getPersona } from './personas.js';
import { readArchivedMeta, removeArchive, setArchivedTrash } from './archive.js';

export async function createSession(ctx: FlatFileContext, userId: string, input: NewSession = {}): Promise<SessionSummary> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const fields = parseInput(NewSessionSchema, input, 'session');
  await requireUser(ctx, uid);
  if (fields.personaId) await getPersona(ctx, uid, fields.personaId);
  for (const personaId of fields.participants ?? []) await getPersona(ctx, uid, personaId);
  // Load the listing first, so the new folder is added to it rather than found by a rescan.
  await userIndex(ctx, uid);
  const created = fields.createdAt ?? nowIso();
  const now = nowIso();
  for (let attempt = 0; ; attempt++) {
    const id = newSessionId(new Date(created));
    const meta: SessionMeta = {
      v: FORMAT_VERSION,
      id,
      userId: uid,
      title: fields.title ?? null,
      titleSource: fields.title ? 'user' : null,
      personaId: fields.personaId ?? null,
      origin: fields.origin ?? { kind: 'native' },
      createdAt: created,
      updatedAt: now,
      lastMessageAt: null,
      messageCount: 0,
      lastMessagePreview: null,
      messagesBytes: 0,
      metadata: fields.metadata ?? {},
      ...noLineage(),
      participants: [...new Set(fields.participants ?? [])],
      archivedAt: null,
      tags: normalTags(fields.tags ?? []),
      trashedAt: null,
    };
    if (!(await writeNewSession(ctx, uid, meta, attempt < 5))) continue;
    return ctx.mutex.run(sessionKey(uid, id), async () => {
      const state = await newSessionState(ctx, meta);
      publish(ctx, uid, state);
      return summaryOf(state.meta);
    });
  }
}

/**
 * Writes a new session's folder, built under a hidden name and renamed into place, so a crash
 * never leaves half a session. False when the id is taken and `mayRetry`.
 */
async function writeNewSession(ctx: FlatFileContext, userId: UserId, meta: SessionMeta, mayRetry: boolean): Promise<boolean> {
  const parent = ctx.layout.sessionParent(userId, meta.id);
  const staging = join(parent, `.new-${meta.id}`);
  // Only the rename below needs to be durable: until then the folder is hidden, and a crash's
  // leftover is ignored by the listing.
  await ctx.durability.mkdirp(parent);
  try {
    await mkdir(staging).catch(async (cause: unknown) => {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
      // A leftover of a crash under this name: it never became a session.
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging);
    });
    await ctx.durability.writeJsonStaged(join(staging, 'session_meta.json'), meta);
    await rename(staging, ctx.layout.session(userId, meta.id));
  } catch (cause) {
    await rm(staging, { recursive: true, force: true });
    const code = (cause as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && mayRetry) return false;
    throw wrapIo(cause, `cannot create session in ${parent}`);
  }
  await ctx.durability.syncDir(parent);
  return true;
}

const RestoredSessionSchema = SessionMetaSchema.pick({ id: true, title: true, titleSource: true, personaId: true, origin: true, createdAt: true, updatedAt: true, metadata: true, tags: true, trashedAt: true }).extend(
  SessionLineageInputSchema.shape,
);

export async function restoreSession(ctx: FlatFileContext, userId: string, session: RestoredSession): Promise<SessionSummary> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const { forkedFrom, forks, mergedFrom, participants, ...fields } = parseInput(RestoredSessionSchema, session, 'session');
  // A restore given no lineage keeps the session's own.
  const lineage: Partial<SessionLineage> = {
    ...(forkedFrom !== undefined ? { forkedFrom } : {}),
    ...(forks !== undefined ? { forks } : {}),
    ...(mergedFrom !== undefined ? { mergedFrom } : {}),
    ...(participants !== undefined ? { participants } : {}),
  };
  const sid: SessionId = fields.id;
  await requireUser(ctx, uid);
  if (fields.personaId) await getPersona(ctx, uid, fields.personaId);
  await userIndex(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    let state = await loadSession(ctx, uid, sid).catch((cause: unknown) => {
      if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND')) return null;
      throw cause;
    });
    if (state) {
      await writeMeta(ctx, state, { ...state.meta, ...fields, ...lineage, tags: normalTags(fields.tags) });
      ctx.bumpVectors(uid); // the trash flag may have changed: search looks again
    } else {
      const meta: SessionMeta = { v: FORMAT_VERSION, userId: uid, ...noLineage(), ...fields, ...lineage, tags: normalTags(fields.tags), lastMessageAt: null, messageCount: 0, lastMessagePreview: null, messagesBytes: 0, archivedAt: null };
      await writeNewSession(ctx, uid, meta, false);
      state = await newSessionState(ctx, meta);
    }
    publish(ctx, uid, state);
    return summaryOf(state.meta);
  });
}

export async function getSession(ctx: FlatFileContext, userId: string, sessionId: string): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    try {
      return summaryOf((await loadSession(ctx, uid, sid)).meta);
    } catch (cause) {
      const archived = isMemexError(cause, 'MEMEX_SESSION_ARCHIVED') ? await readArchivedMeta(ctx, uid, sid) : null;
      if (archived) return summaryOf(archived);
      throw cause;
    }
  });
}

export async function updateSession(ctx: FlatFileContext, userId: string, sessionId: string, patch: SessionUpdate): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const changes = parseInput(SessionUpdateSchema, patch, 'session patch');
  if (changes.personaId) await getPersona(ctx, uid, changes.personaId);
  for (const personaId of changes.participants ?? []) await getPersona(ctx, uid, personaId);
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const meta: SessionMeta = {
      ...state.meta,
      ...(changes.title !== undefined ? { title: changes.title, titleSource: 'user' as const } : {}),
      ...(changes.personaId !== undefined ? { personaId: changes.personaId } : {}),
      ...(changes.metadata !== undefined ? { metadata: changes.metadata } : {}),
      ...(changes.participants !== undefined ? { participants: [...new Set(changes.participants)] } : {}),
      ...(changes.addFork !== undefined && !state.meta.forks.includes(changes.addFork) ? { forks: [...state.meta.forks, changes.addFork] } : {}),
      ...(changes.addTags || changes.removeTags ? { tags: patchTags(state.meta.tags, changes.addTags, changes.removeTags) } : {}),
      updatedAt: nowIso(),
    };
    await writeMeta(ctx, state, meta);
    publish(ctx, uid, state);
    return summaryOf(meta);
  });
}

export async function trashSession(ctx: FlatFileContext, userId: string, sessionId: string, options: { at?: string } = {}): Promise<SessionSummary> {
  return setTrashed(ctx, userId, sessionId, options.at === undefined ? nowIso() : parseInput(TimestampInputSchema, options.at, 'trash time'));
}

export async function untrashSession(ctx: FlatFileContext, userId: string, sessionId: string): Promise<SessionSummary> {
  return setTrashed(ctx, userId, sessionId, null);
}

/**
 * Only the flag changes: the session's folder stays where it is, so restoring gives back exactly
 * what was there. Search drops (or takes back) its rows at its next sync, which the vector epoch
 * triggers, and a saved index loaded after a restart is synced against the listing, which leaves
 * trashed sessions out (index/flat/user-index.ts).
 */
async function setTrashed(ctx: FlatFileContext, userId: string, sessionId: string, at: string | null): Promise<SessionSummary> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await requireUser(ctx, uid);
  await userIndex(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid).catch(async (cause: unknown) => {
      // An archived session goes to the trash as it is: only its listed meta carries the flag.
      const archived = isMemexError(cause, 'MEMEX_SESSION_ARCHIVED') ? await readArchivedMeta(ctx, uid, sid) : null;
      if (!archived) throw cause;
      return archived;
    });
    if ('v' in state) {
      if (at === null && state.trashedAt === null) throw notInTrash(sid);
      if (at !== null && state.trashedAt !== null) return summaryOf(state);
      return summaryOf(await setArchivedTrash(ctx, uid, sid, state, at));
    }
    if (at === null && state.meta.trashedAt === null) throw notInTrash(sid);
    if (at !== null && state.meta.trashedAt !== null) return summaryOf(state.meta);
    await writeMeta(ctx, state, { ...state.meta, trashedAt: at });
    ctx.bumpVectors(uid);
    publish(ctx, uid, state);
    return summaryOf(state.meta);
  });
}

export async function deleteSession(ctx: FlatFileContext, userId: string, sessionId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    let archived = false;
    await loadSession(ctx, uid, sid).catch((cause: unknown) => {
      archived = isMemexError(cause, 'MEMEX_SESSION_ARCHIVED');
      // A corrupt session can still be deleted; a missing one cannot.
      if (!archived && !isMemexError(cause, 'MEMEX_SESSION_CORRUPT')) throw cause;
    });
    if (archived) await removeArchive(ctx, uid, sid);
    else await ctx.moveToTrash(ctx.layout.session(uid, sid));
    ctx.sessionCache.delete(sessionKey(uid, sid));
    ctx.durability.forget(ctx.layout.session(uid, sid));
    ctx.bumpVectors(uid);
    const index = ctx.loaded.get(uid);
    if (index) {
      index.entries.delete(sid);
      index.unreadable.delete(sid);
      listingChanged(ctx, uid, index);
    }
  });
}

