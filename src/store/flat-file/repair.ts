import { rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT_VERSION, isMemexError, MemexError, type Message, noLineage, parseId, type Profile, type SessionId, type SessionMeta, toMemexError, type UserId } from '../../core/index.js';
import { wrapIo } from '../durable.js';
import type { StoreRepair } from '../store.js';
import { type FlatFileContext, listDir, nowIso, oneLine, sessionKey, type SessionState, TITLE_CHARS } from './context.js';
import { MessageLog } from './message-log.js';
import { readProfile } from './users.js';
import { sessionFolderIds } from './listing.js';
import { countsFromLog, loadSession, sessionVectors } from './session-state.js';

export async function repair(ctx: FlatFileContext, options: { userId?: string } = {}): Promise<StoreRepair[]> {
  ctx.assertOpen();
  const found: StoreRepair[] = [];
  // Only folders that exist: a user id that names none is not found, as every other call says.
  const only = options.userId === undefined ? undefined : parseId('user', options.userId);
  const names = (await listDir(ctx.layout.users)).filter((name) => only === undefined || name === only);
  if (only !== undefined && names.length === 0) throw new MemexError('MEMEX_USER_NOT_FOUND', `user ${only} does not exist`, { details: { userId: only } });
  for (const name of names) {
    let uid: UserId;
    try {
      uid = parseId('user', name);
    } catch {
      found.push({ severity: 'problem', where: name, what: `${join(ctx.layout.users, name)} is not named like a user id; move it out of the data dir` });
      continue;
    }
    await repairProfile(ctx, uid, found);
    let rebuilt = false;
    for (const sessionName of await sessionFolderIds(ctx, uid).catch(() => [])) {
      let sid: SessionId;
      try {
        sid = parseId('session', sessionName);
      } catch {
        continue;
      }
      rebuilt = (await repairSession(ctx, uid, sid, found)) || rebuilt;
    }
    // The listing is a cache: look at the folders again so rebuilt sessions are listed.
    if (rebuilt) {
      ctx.indexes.delete(uid);
      ctx.loaded.delete(uid);
    }
  }
  return found;
}

/** A profile.json that cannot be read is kept aside and replaced, so the user's data is reachable again. */
async function repairProfile(ctx: FlatFileContext, userId: UserId, found: StoreRepair[]): Promise<void> {
  const path = ctx.layout.profile(userId);
  await ctx.mutex.run(`user:${userId}`, async () => {
    try {
      if (await readProfile(ctx, userId)) return;
    } catch (cause) {
      if (!isMemexError(cause, 'MEMEX_USER_CORRUPT')) throw cause;
    }
    const exists = await stat(path).then(() => true, () => false);
    const savedTo = exists ? await keepAside(path) : null;
    const created = await stat(ctx.layout.user(userId)).then((s) => s.birthtime.toISOString(), () => nowIso());
    const profile: Profile = { v: FORMAT_VERSION, id: userId, name: userId, createdAt: created, updatedAt: nowIso(), metadata: {} };
    await ctx.durability.writeJsonAtomic(path, profile);
    ctx.profiles.set(userId, profile);
    found.push({
      severity: 'repaired',
      where: userId,
      what: `${exists ? 'profile.json could not be read' : 'profile.json was missing'}; wrote a fresh one (name and metadata reset)${savedTo ? `, the old one is kept as ${savedTo}` : ''}`,
    });
  });
}

/** Returns true when the session's meta was rebuilt (the listing must look again). */
async function repairSession(ctx: FlatFileContext, userId: UserId, sessionId: SessionId, found: StoreRepair[]): Promise<boolean> {
  const where = sessionKey(userId, sessionId);
  return ctx.mutex.run(sessionKey(userId, sessionId), async () => {
    let state: SessionState | null = null;
    let broken: MemexError | null = null;
    try {
      state = await loadSession(ctx, userId, sessionId);
    } catch (cause) {
      broken = toMemexError(cause);
      if (broken.code !== 'MEMEX_SESSION_NOT_FOUND' && broken.code !== 'MEMEX_SESSION_CORRUPT') {
        found.push({ severity: 'problem', where, what: `${broken.code}: ${broken.message}` });
        return false;
      }
    }
    if (state) {
      const moved = await state.log.quarantine(ctx.durability);
      if (moved) {
        // Rows of messages that were on the quarantined lines go too: search shows only what reads.
        const vectors = await sessionVectors(ctx, state, userId, sessionId);
        const orphans = new Set<string>();
        for (const line of (await vectors.read()).lines) {
          if (line.source.kind === 'message' && !(await state.log.has(line.source.messageId))) orphans.add(line.source.messageId);
        }
        if ((await vectors.removeMessagesWhere((id) => orphans.has(id))) > 0) ctx.bumpVectors(userId);
        ctx.sessionCache.delete(sessionKey(userId, sessionId));
        await loadSession(ctx, userId, sessionId); // recounts from the log
        found.push({ severity: 'repaired', where, what: `moved ${moved.lines} line(s) that are not messages out of messages.jsonl, to ${moved.savedTo}` });
      }
      return false;
    }
    const logPath = ctx.layout.messages(userId, sessionId);
    const hasLog = await stat(logPath).then(() => true, () => false);
    if (!hasLog) return false; // a folder with no messages: nothing hidden, nothing to rebuild from
    const metaPath = ctx.layout.sessionMeta(userId, sessionId);
    const savedTo = (await stat(metaPath).then(() => true, () => false)) ? await keepAside(metaPath) : null;
    const { log, repair: torn } = await MessageLog.open(logPath, sessionId, ctx.durability);
    if (torn) ctx.warn({ kind: 'torn-line-repaired', ...torn });
    const counts = await countsFromLog(log);
    const first = counts.messageCount > 0 ? ((await log.range(0, 1))[0] ?? null) : null;
    let firstUser: Message | null = null;
    for await (const message of log.stream()) {
      if (message.role === 'user') {
        firstUser = message;
        break;
      }
    }
    const created = first?.createdAt ?? (await stat(ctx.layout.session(userId, sessionId))).birthtime.toISOString();
    const title = firstUser ? oneLine(firstUser.content, TITLE_CHARS) : '';
    const meta: SessionMeta = {
      ...noLineage(),
      v: FORMAT_VERSION,
      archivedAt: null,
      id: sessionId,
      userId,
      title: title || null,
      titleSource: title ? 'auto' : null,
      personaId: null,
      tags: [],
      trashedAt: null,
      origin: { kind: 'native' },
      createdAt: created,
      updatedAt: nowIso(),
      ...counts,
      metadata: {},
    };
    await ctx.durability.writeJsonAtomic(metaPath, meta);
    ctx.sessionCache.delete(sessionKey(userId, sessionId));
    ctx.bumpVectors(userId);
    found.push({
      severity: 'repaired',
      where,
      what: `session_meta.json was ${savedTo ? `unreadable (${broken?.message ?? 'corrupt'}; kept as ${savedTo})` : 'missing'}; rebuilt it from messages.jsonl (${counts.messageCount} messages; title, persona and metadata reset)`,
    });
    return true;
  });
}

/** Renames a file that cannot be read to `<name>.corrupt-<time>` beside it; returns the new path. */
async function keepAside(path: string): Promise<string> {
  const savedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '')}`;
  await rename(path, savedTo).catch((cause: unknown) => {
    throw wrapIo(cause, `cannot move ${path} aside`);
  });
  return savedTo;
}
