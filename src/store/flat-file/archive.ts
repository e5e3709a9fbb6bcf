import { open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { create as createTar, extract as extractTar } from 'tar';
import { MemexError, isMemexError, type SessionId, type SessionMeta, SessionMetaSchema, type UserId } from '../../core/index.js';
import { exists, isNotFound, readJsonRecord, wrapIo } from '../durable.js';
import type { ArchiveResult } from '../store.js';
import { type FlatFileContext, listDir, sessionKey, summaryOf, type UserIndex } from './context.js';
import { loadSession } from './session-state.js';
import { listingChanged, userIndex } from './listing.js';

/**
 * Archiving on flat files: the session's folder becomes one `archived/<id>.tar.gz` (a plain tar,
 * `tar xzf` opens it) with its meta beside it as `archived/<id>.json`, so the session stays listed.
 *
 * Crash safety rests on one rule, applied when a user's listing loads (`reconcileArchives`): while
 * the session folder exists, the session is live and any archive files of it are leftovers; once
 * the folder is gone, the archive is the session. Archiving writes the tar (temp file, fsync,
 * rename), then the meta (atomically), then moves the folder to the trash in one rename: a crash
 * before that rename leaves the folder, after it the archive, each whole. Unarchiving extracts into
 * a hidden folder and renames it into place (the commit), then removes the archive files.
 */

/** The archived session's meta; null when it is not archived. */
export async function readArchivedMeta(ctx: FlatFileContext, userId: UserId, sessionId: SessionId): Promise<SessionMeta | null> {
  const path = ctx.layout.archivedMeta(userId, sessionId);
  const meta = await readJsonRecord(path, SessionMetaSchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', `archived session ${sessionId}: ${reason}`, { cause, details: { sessionId, path } }));
  return meta && meta.id === sessionId && meta.userId === userId ? meta : null;
}

export function sessionArchived(sessionId: SessionId): MemexError {
  return new MemexError('MEMEX_SESSION_ARCHIVED', `session ${sessionId} is archived; unarchive it to read or change its messages`, { details: { sessionId } });
}

export async function archiveSession(ctx: FlatFileContext, userId: string, sessionId: string, options: { now?: Date } = {}): Promise<ArchiveResult> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const index = await listingOf(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    let state;
    try {
      state = await loadSession(ctx, uid, sid);
    } catch (cause) {
      const archived = isMemexError(cause, 'MEMEX_SESSION_ARCHIVED') ? await readArchivedMeta(ctx, uid, sid) : null;
      if (archived) return { session: summaryOf(archived), rawBytes: 0, archiveBytes: 0, archivedNow: false };
      throw cause;
    }
    await state.metaWriter.run();
    const folder = ctx.layout.session(uid, sid);
    const dir = ctx.layout.archived(uid);
    await ctx.durability.mkdirp(dir);
    const target = ctx.layout.archive(uid, sid);
    const temp = join(dir, `.${sid}.tar.gz.tmp`);
    try {
      await createTar({ gzip: true, file: temp, cwd: folder, portable: true }, await readdir(folder));
      if (ctx.durability.policy !== 'none') await fsyncFile(temp);
      await rename(temp, target);
    } catch (cause) {
      await unlink(temp).catch(() => undefined);
      throw wrapIo(cause, `cannot archive session ${sid} to ${target}`);
    }
    const meta: SessionMeta = { ...state.meta, archivedAt: (options.now ?? new Date()).toISOString() };
    await ctx.durability.writeJsonAtomic(ctx.layout.archivedMeta(uid, sid), meta);
    const rawBytes = await treeBytes(folder);
    // The commit: from this rename on, the archive is the session.
    await ctx.moveToTrash(folder);
    await ctx.durability.syncDir(dir);
    forgetLive(ctx, uid, sid);
    index.entries.set(sid, { ...meta, metaMtimeMs: 0 });
    listingChanged(ctx, uid, index);
    return { session: summaryOf(meta), rawBytes, archiveBytes: (await stat(target)).size, archivedNow: true };
  });
}

export async function unarchiveSession(ctx: FlatFileContext, userId: string, sessionId: string): Promise<ArchiveResult> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const index = await listingOf(ctx, uid);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const meta = await readArchivedMeta(ctx, uid, sid);
    const folder = ctx.layout.session(uid, sid);
    if (!meta || (await exists(folder))) {
      // Not archived (or the archive is a leftover of a cut-off run): the live session is the answer.
      const state = await loadSession(ctx, uid, sid);
      return { session: summaryOf(state.meta), rawBytes: 0, archiveBytes: 0, archivedNow: false };
    }
    const archive = ctx.layout.archive(uid, sid);
    const archiveBytes = (await stat(archive).catch((cause: unknown) => {
      throw new MemexError('MEMEX_SESSION_CORRUPT', `archived session ${sid} has lost its archive ${archive}`, { cause, details: { sessionId: sid, path: archive } });
    })).size;
    const parent = ctx.layout.sessionParent(uid, sid);
    const staging = join(parent, `.unarchive-${sid}`);
    await rm(staging, { recursive: true, force: true });
    await ctx.durability.mkdirp(staging);
    try {
      await extractTar({ file: archive, cwd: staging, strict: true });
      if (ctx.durability.policy !== 'none') await syncTree(staging);
      // The commit: from this rename on, the folder is the session again.
      await rename(staging, folder);
    } catch (cause) {
      await rm(staging, { recursive: true, force: true });
      throw isMemexError(cause) ? cause : new MemexError('MEMEX_SESSION_CORRUPT', `cannot unarchive session ${sid} from ${archive}`, { cause, details: { sessionId: sid, path: archive } });
    }
    await ctx.durability.syncDir(parent);
    await removeArchive(ctx, uid, sid);
    ctx.bumpVectors(uid);
    const state = await loadSession(ctx, uid, sid);
    index.entries.set(sid, { ...state.meta, metaMtimeMs: state.metaMtimeMs });
    listingChanged(ctx, uid, index);
    return { session: summaryOf(state.meta), rawBytes: await treeBytes(folder), archiveBytes, archivedNow: true };
  });
}

/** Removes an archived session's files: the meta first, so a cut-off removal leaves an orphan tar, never a listed session without its archive. */
export async function removeArchive(ctx: FlatFileContext, userId: UserId, sessionId: SessionId): Promise<void> {
  for (const path of [ctx.layout.archivedMeta(userId, sessionId), ctx.layout.archive(userId, sessionId)]) {
    await unlink(path).catch((cause: unknown) => {
      if (!isNotFound(cause)) throw wrapIo(cause, `cannot remove ${path}`);
    });
  }
  await ctx.durability.syncDir(ctx.layout.archived(userId));
}

/**
 * Applies the rule above to what a crash may have left, and returns the archived sessions' ids.
 * Called while a user's listing loads, each session in its turn.
 */
export async function reconcileArchives(ctx: FlatFileContext, userId: UserId, parseSession: (name: string) => SessionId | null): Promise<SessionId[]> {
  const dir = ctx.layout.archived(userId);
  // Temp files of a tar write cut off. Safe to remove here: every archive waits for this listing to load first.
  const temps = (await readdir(dir).catch(() => [])).filter((name) => name.startsWith('.') && name.endsWith('.tmp'));
  for (const name of temps) await rm(join(dir, name), { force: true });
  const names = await listDir(dir);
  const ids = new Set<SessionId>();
  for (const name of names) {
    const match = /^(.+)\.(json|tar\.gz)$/.exec(name);
    const id = match?.[1] === undefined ? null : parseSession(match[1]);
    if (id) ids.add(id);
  }
  const archived: SessionId[] = [];
  for (const sid of ids) {
    await ctx.mutex.run(sessionKey(userId, sid), async () => {
      const live = await exists(ctx.layout.session(userId, sid));
      const hasMeta = await exists(ctx.layout.archivedMeta(userId, sid));
      const hasTar = await exists(ctx.layout.archive(userId, sid));
      if (live || !hasMeta) {
        // Leftovers: an archive cut off before its commit, an unarchive or delete cut off after.
        if (hasMeta || hasTar) await removeArchive(ctx, userId, sid);
        return;
      }
      archived.push(sid);
      if (!hasTar) ctx.warn({ kind: 'unreadable', path: ctx.layout.archive(userId, sid), code: 'MEMEX_SESSION_CORRUPT', message: `archived session ${sid} has lost its archive` });
    });
  }
  return archived;
}

/** Moves an archived session into the trash or out of it (`at` null): its listed meta, beside the archive, carries the flag. */
export async function setArchivedTrash(ctx: FlatFileContext, userId: UserId, sessionId: SessionId, meta: SessionMeta, at: string | null): Promise<SessionMeta> {
  const index = await listingOf(ctx, userId);
  const next: SessionMeta = { ...meta, trashedAt: at };
  await ctx.durability.writeJsonAtomic(ctx.layout.archivedMeta(userId, sessionId), next);
  index.entries.set(sessionId, { ...next, metaMtimeMs: 0 });
  listingChanged(ctx, userId, index);
  return next;
}

function forgetLive(ctx: FlatFileContext, userId: UserId, sessionId: SessionId): void {
  ctx.sessionCache.delete(sessionKey(userId, sessionId));
  ctx.durability.forget(ctx.layout.session(userId, sessionId));
  ctx.bumpVectors(userId);
}

function listingOf(ctx: FlatFileContext, userId: UserId): Promise<UserIndex> {
  return userIndex(ctx, userId);
}

async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Fsyncs every file and folder under `dir` (what was extracted), so the rename that commits it publishes durable bytes. */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) await fsyncFile(path);
  }
  await fsyncFile(dir);
}

async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await treeBytes(path);
    else total += (await stat(path).catch(() => null))?.size ?? 0;
  }
  return total;
}
