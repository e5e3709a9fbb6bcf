import { mkdir, readFile, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import {
  samePersonaName,
  messageBody,
  DataDirManifestSchema,
  EmbeddingModelSchema,
  FileContentSchema,
  FileRecordSchema,
  ContextHistorySchema,
  FORMAT_VERSION,
  MemexError,
  NewNoteSchema,
  NotePatchSchema,
  SummarySchema,
  newNoteId,
  NewMessageSchema,
  NewPersonaSchema,
  NewSessionSchema,
  NewUserSchema,
  PageOptionsSchema,
  SessionListOptionsSchema,
  PersonaPatchSchema,
  PersonaSchema,
  ProfilePatchSchema,
  ProfileSchema,
  SessionMetaSchema,
  SessionPatchSchema,
  newMessageId,
  newPersonaId,
  newSessionId,
  parseId,
  parseInput,
  isMemexError,
  toMemexError,
  type Config,
  type DataDirManifest,
  type EmbeddingModel,
  type Chunk,
  type FileContent,
  type FileRecord,
  type Message,
  type NewMessage,
  type NewNote,
  type Note,
  type NotePatch,
  type Summary,
  type ContextHistory,
  type NewPersona,
  type NewSession,
  type NewUser,
  type PageOptions,
  type Persona,
  type PersonaPatch,
  type Profile,
  type ProfilePatch,
  type SessionId,
  type SessionMeta,
  type SessionPatch,
  type SessionSummary,
  type UserId,
  type VectorLine,
} from '../core/index.js';
import { Durability, isNotFound, readJsonRecord, wrapIo } from './durable.js';
import { messageCursor, readMessageCursor, readSessionCursor, sessionCursor } from './cursor.js';
import { stageFile, sweepStaleUploads } from './files.js';
import { FILE_ARTIFACTS, Layout, type FileArtifactName } from './layout.js';
import { DataDirLock } from './lock.js';
import { MessageLog } from './message-log.js';
import { Coalescer, KeyedMutex } from './serial.js';
import { SessionVectors, type SessionVectorData, type VectorBatch, type VectorStatus } from './session-vectors.js';
import type { ListOptions, MessagePage, PutFileInput, PutFileResult, SessionPage, Store, StoreRepair, StoreWarning, UnreadableSession } from './store.js';

export interface FlatFileStoreOptions {
  dataDir: string;
  fsync?: Config['fsync'];
  lockTimeoutMs?: number;
  limits?: Partial<Config['limits']>;
  /** Called for repairs and unreadable files; defaults to process.emitWarning. */
  onWarning?: (warning: StoreWarning) => void;
}

/** How many sessions keep their parsed state (meta, line positions) in memory. */
const SESSION_CACHE_SIZE = 256;
const DEFAULT_PAGE = 50;
const TITLE_CHARS = 60;
const PREVIEW_CHARS = 160;

interface SessionState {
  meta: SessionMeta;
  /** session_meta.json's mtime after our last read or write: how the listing tells a stale entry. */
  metaMtimeMs: number;
  log: MessageLog;
  /** Writes the latest `meta`; concurrent appends to one session share a write. */
  metaWriter: Coalescer;
  /** Opened (and reconciled) the first time the session's vectors are needed. */
  vectors: SessionVectors | null;
  /** summary.json as last read or written (undefined: not read yet): a window reads it on every call. */
  summary?: Summary | null | undefined;
}

const IndexEntrySchema = SessionMetaSchema.extend({ metaMtimeMs: z.number() });
type IndexEntry = z.infer<typeof IndexEntrySchema>;
const SessionIndexSchema = z.object({
  v: z.literal(FORMAT_VERSION),
  userId: z.string(),
  sessions: z.array(IndexEntrySchema),
});

interface UserIndex {
  entries: Map<SessionId, IndexEntry>;
  unreadable: Map<string, UnreadableSession>;
  writer: Coalescer;
}

function nowIso(): string {
  return new Date().toISOString();
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const space = cut.lastIndexOf(' ');
  return `${(space > max * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** Lowercase without accents: what a title search compares. */
function foldCase(text: string): string {
  return text.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

function summaryOf(meta: SessionMeta): SessionSummary {
  const { v: _v, messagesBytes: _bytes, ...summary } = meta;
  return summary;
}

/**
 * The default backend: plain files under one data dir (DESIGN.md "Flat-file layout").
 *
 * Concurrency: one process owns the data dir (DataDirLock). Inside it, work on one session runs
 * one task at a time (KeyedMutex), so appends never interleave; different sessions run in parallel.
 * The store caches what it has read (profiles, session metas, line positions, the session listing);
 * the caches stay right because every write in the data dir goes through this instance.
 */
export class FlatFileStore implements Store {
  private readonly mutex = new KeyedMutex();
  private readonly sessionCache = new Map<string, SessionState>();
  /** Per user, a counter of changes to their vector rows made through this store (`vectorEpoch`). */
  private readonly vectorEpochs = new Map<UserId, number>();
  private readonly profiles = new Map<UserId, Profile>();
  private readonly indexes = new Map<UserId, Promise<UserIndex>>();
  /** Listings that finished loading. Code inside a session's turn only uses these: it never waits for a load. */
  private readonly loaded = new Map<UserId, UserIndex>();
  private closed = false;
  /** Appends past their session's turn, still syncing: close() waits for them. */
  private readonly inFlight = new Set<Promise<unknown>>();

  private constructor(
    readonly layout: Layout,
    private readonly durability: Durability,
    private readonly lock: DataDirLock,
    private readonly limits: Config['limits'],
    private readonly warn: (warning: StoreWarning) => void,
    private manifest: DataDirManifest,
  ) {}

  static async open(options: FlatFileStoreOptions): Promise<FlatFileStore> {
    const layout = new Layout(options.dataDir);
    const durability = new Durability(options.fsync ?? 'group');
    await assertDataDir(layout);
    await durability.mkdirp(layout.root);
    const lock = await DataDirLock.acquire(layout.lockFile, options.lockTimeoutMs ?? 5_000);
    try {
      let manifest = await readJsonRecord(layout.manifest, DataDirManifestSchema, (reason, cause) => new MemexError('MEMEX_DATA_DIR_INVALID', reason, { cause }));
      if (!manifest) {
        manifest = { v: FORMAT_VERSION, kind: 'memex-data', createdAt: nowIso(), embedding: null };
        await durability.writeJsonAtomic(layout.manifest, manifest);
        await durability.syncDir(layout.root);
      }
      await durability.mkdirp(layout.users);
      await rm(layout.trash, { recursive: true, force: true });
      const warn = options.onWarning ?? defaultWarn;
      const limits = { maxMessageChars: 1_000_000, maxFileBytes: 100 * 1024 * 1024, ...options.limits };
      return new FlatFileStore(layout, durability, lock, limits, warn, manifest);
    } catch (cause) {
      await lock.release();
      throw toMemexError(cause, `cannot open data dir ${layout.root}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.mutex.drain();
    // Every listing write is awaited by the call that asked for it, so these two cover all work in flight.
    await Promise.allSettled([...this.inFlight]);
    await this.lock.release();
  }

  private assertOpen(): void {
    if (this.closed) throw new MemexError('MEMEX_STORE_CLOSED', 'this store is closed');
  }

  // ---- users --------------------------------------------------------------------------------

  async createUser(input: NewUser): Promise<Profile> {
    this.assertOpen();
    const { id, name, metadata } = parseInput(NewUserSchema, input, 'user');
    return this.mutex.run(`user:${id}`, async () => {
      const existing = await this.readProfile(id);
      if (existing) throw new MemexError('MEMEX_USER_EXISTS', `user ${id} already exists`, { details: { userId: id } });
      // Ids that differ only in case would share a folder on macOS and Windows: refuse them everywhere.
      const clash = (await listDir(this.layout.users)).find((other) => other !== id && other.toLowerCase() === id.toLowerCase());
      if (clash) throw new MemexError('MEMEX_USER_EXISTS', `user ${clash} already exists (ids may not differ only in case)`, { details: { userId: clash } });
      const now = nowIso();
      const profile: Profile = { v: FORMAT_VERSION, id, name: name ?? id, createdAt: now, updatedAt: now, metadata: metadata ?? {} };
      await this.durability.mkdirp(this.layout.sessions(id));
      await this.durability.mkdirp(this.layout.personas(id));
      await this.durability.writeJsonAtomic(this.layout.profile(id), profile);
      await this.durability.syncDir(this.layout.user(id));
      this.profiles.set(id, profile);
      return profile;
    });
  }

  async getUser(userId: string): Promise<Profile> {
    this.assertOpen();
    return this.requireUser(parseId('user', userId));
  }

  async listUsers(): Promise<Profile[]> {
    this.assertOpen();
    const out: Profile[] = [];
    for (const name of await listDir(this.layout.users)) {
      try {
        const profile = await this.readProfile(parseId('user', name));
        if (profile) out.push(profile);
      } catch (cause) {
        const error = toMemexError(cause);
        this.warn({ kind: 'unreadable', path: join(this.layout.users, name), code: error.code, message: error.message });
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async updateUser(userId: string, patch: ProfilePatch): Promise<Profile> {
    this.assertOpen();
    const id = parseId('user', userId);
    const changes = parseInput(ProfilePatchSchema, patch, 'profile patch');
    return this.mutex.run(`user:${id}`, async () => {
      const profile = await this.requireUser(id);
      const next: Profile = { ...profile, ...definedOnly(changes), updatedAt: nowIso() };
      await this.durability.writeJsonAtomic(this.layout.profile(id), next);
      this.profiles.set(id, next);
      return next;
    });
  }

  async deleteUser(userId: string): Promise<void> {
    this.assertOpen();
    const id = parseId('user', userId);
    await this.mutex.run(`user:${id}`, async () => {
      await this.requireUser(id);
      await this.moveToTrash(this.layout.user(id));
      this.profiles.delete(id);
      this.indexes.delete(id);
      this.loaded.delete(id);
      for (const key of this.sessionCache.keys()) if (key.startsWith(`${id}/`)) this.sessionCache.delete(key);
      this.durability.forget(this.layout.user(id));
      this.bumpVectors(id);
    });
  }

  private async readProfile(userId: UserId): Promise<Profile | null> {
    const cached = this.profiles.get(userId);
    if (cached) return cached;
    const profile = await readJsonRecord(
      this.layout.profile(userId),
      ProfileSchema,
      (reason, cause) => new MemexError('MEMEX_USER_CORRUPT', reason, { cause, details: { userId } }),
    );
    // On a case-insensitive file system "Alice" opens alice's folder: the stored id must match exactly.
    if (!profile || profile.id !== userId) return null;
    this.profiles.set(userId, profile);
    return profile;
  }

  private async requireUser(userId: UserId): Promise<Profile> {
    const profile = await this.readProfile(userId);
    if (!profile) throw new MemexError('MEMEX_USER_NOT_FOUND', `user ${userId} does not exist`, { details: { userId } });
    return profile;
  }

  // ---- sessions -----------------------------------------------------------------------------

  async createSession(userId: string, input: NewSession = {}): Promise<SessionSummary> {
    this.assertOpen();
    const uid = parseId('user', userId);
    const fields = parseInput(NewSessionSchema, input, 'session');
    await this.requireUser(uid);
    if (fields.personaId) await this.getPersona(uid, fields.personaId);
    // Load the listing first, so the new folder is added to it rather than found by a rescan.
    await this.userIndex(uid);
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
      };
      // Built under a hidden name and renamed into place: a crash never leaves half a session.
      const staging = join(this.layout.sessions(uid), `.new-${id}`);
      await this.durability.mkdirp(staging);
      try {
        await this.durability.writeJsonAtomic(join(staging, 'session_meta.json'), meta);
        await rename(staging, this.layout.session(uid, id));
      } catch (cause) {
        await rm(staging, { recursive: true, force: true });
        const code = (cause as NodeJS.ErrnoException).code;
        if ((code === 'ENOTEMPTY' || code === 'EEXIST') && attempt < 5) continue;
        throw wrapIo(cause, `cannot create session in ${this.layout.sessions(uid)}`);
      }
      await this.durability.syncDir(this.layout.sessions(uid));
      return this.mutex.run(sessionKey(uid, id), async () => {
        const state = await this.loadSession(uid, id);
        await this.publish(uid, state);
        return summaryOf(state.meta);
      });
    }
  }

  async getSession(userId: string, sessionId: string): Promise<SessionSummary> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    return this.mutex.run(sessionKey(uid, sid), async () => summaryOf((await this.loadSession(uid, sid)).meta));
  }

  async listSessions(userId: string, options: ListOptions = {}): Promise<SessionPage> {
    this.assertOpen();
    const uid = parseId('user', userId);
    const { limit = DEFAULT_PAGE, offset, cursor, title } = parseInput(SessionListOptionsSchema, options, 'list options');
    if (offset !== undefined && cursor !== undefined) throw new MemexError('MEMEX_INVALID_INPUT', 'pass either offset or cursor, not both');
    await this.requireUser(uid);
    const index = await this.userIndex(uid);
    await this.retryUnreadable(uid, index);
    const activity = (entry: IndexEntry): string => entry.lastMessageAt ?? entry.createdAt;
    const wanted = title === undefined ? null : foldCase(title);
    const all = [...index.entries.values()]
      .filter((entry) => wanted === null || (entry.title !== null && foldCase(entry.title).includes(wanted)))
      .sort((a, b) => activity(b).localeCompare(activity(a)) || b.id.localeCompare(a.id));
    let start = offset ?? 0;
    if (cursor !== undefined) {
      // Keyset: the first session after the cursor's place in the order, so sessions created since
      // the last page neither shift this one nor repeat.
      const after = readSessionCursor(cursor);
      const next = all.findIndex((entry) => activity(entry) < after.activity || (activity(entry) === after.activity && entry.id < after.id));
      start = next === -1 ? all.length : next;
    }
    const page = all.slice(start, start + limit);
    const last = page[page.length - 1];
    return {
      sessions: page.map(({ metaMtimeMs: _m, ...meta }) => summaryOf(meta)),
      total: all.length,
      offset: start,
      limit,
      nextCursor: last && start + page.length < all.length ? sessionCursor({ activity: activity(last), id: last.id }) : null,
      unreadable: [...index.unreadable.values()],
    };
  }

  async updateSession(userId: string, sessionId: string, patch: SessionPatch): Promise<SessionSummary> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const changes = parseInput(SessionPatchSchema, patch, 'session patch');
    if (changes.personaId) await this.getPersona(uid, changes.personaId);
    await this.requireUser(uid);
    await this.userIndex(uid);
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const meta: SessionMeta = {
        ...state.meta,
        ...(changes.title !== undefined ? { title: changes.title, titleSource: 'user' as const } : {}),
        ...(changes.personaId !== undefined ? { personaId: changes.personaId } : {}),
        ...(changes.metadata !== undefined ? { metadata: changes.metadata } : {}),
        updatedAt: nowIso(),
      };
      await this.writeMeta(state, meta);
      await this.publish(uid, state);
      return summaryOf(meta);
    });
  }

  async deleteSession(userId: string, sessionId: string): Promise<void> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    await this.mutex.run(sessionKey(uid, sid), async () => {
      await this.loadSession(uid, sid).catch((cause: unknown) => {
        // A corrupt session can still be deleted; a missing one cannot.
        if (!isMemexError(cause, 'MEMEX_SESSION_CORRUPT')) throw cause;
      });
      await this.moveToTrash(this.layout.session(uid, sid));
      this.sessionCache.delete(sessionKey(uid, sid));
      this.durability.forget(this.layout.session(uid, sid));
      this.bumpVectors(uid);
      const index = this.loaded.get(uid);
      if (index) {
        index.entries.delete(sid);
        index.unreadable.delete(sid);
        await index.writer.run();
      }
    });
  }

  async repair(options: { userId?: string } = {}): Promise<StoreRepair[]> {
    this.assertOpen();
    const found: StoreRepair[] = [];
    const names = options.userId !== undefined ? [parseId('user', options.userId) as string] : await listDir(this.layout.users);
    for (const name of names) {
      let uid: UserId;
      try {
        uid = parseId('user', name);
      } catch {
        found.push({ severity: 'problem', where: name, what: `${join(this.layout.users, name)} is not named like a user id; move it out of the data dir` });
        continue;
      }
      await this.repairProfile(uid, found);
      let rebuilt = false;
      for (const sessionName of await listDir(this.layout.sessions(uid)).catch(() => [])) {
        let sid: SessionId;
        try {
          sid = parseId('session', sessionName);
        } catch {
          continue;
        }
        rebuilt = (await this.repairSession(uid, sid, found)) || rebuilt;
      }
      // The listing is a cache: look at the folders again so rebuilt sessions are listed.
      if (rebuilt) {
        this.indexes.delete(uid);
        this.loaded.delete(uid);
      }
    }
    return found;
  }

  /** A profile.json that cannot be read is kept aside and replaced, so the user's data is reachable again. */
  private async repairProfile(userId: UserId, found: StoreRepair[]): Promise<void> {
    const path = this.layout.profile(userId);
    await this.mutex.run(`user:${userId}`, async () => {
      try {
        if (await this.readProfile(userId)) return;
      } catch (cause) {
        if (!isMemexError(cause, 'MEMEX_USER_CORRUPT')) throw cause;
      }
      const exists = await stat(path).then(() => true, () => false);
      const savedTo = exists ? await this.keepAside(path) : null;
      const created = await stat(this.layout.user(userId)).then((s) => s.birthtime.toISOString(), () => nowIso());
      const profile: Profile = { v: FORMAT_VERSION, id: userId, name: userId, createdAt: created, updatedAt: nowIso(), metadata: {} };
      await this.durability.writeJsonAtomic(path, profile);
      this.profiles.set(userId, profile);
      found.push({
        severity: 'repaired',
        where: userId,
        what: `${exists ? 'profile.json could not be read' : 'profile.json was missing'}; wrote a fresh one (name and metadata reset)${savedTo ? `, the old one is kept as ${savedTo}` : ''}`,
      });
    });
  }

  /** Returns true when the session's meta was rebuilt (the listing must look again). */
  private async repairSession(userId: UserId, sessionId: SessionId, found: StoreRepair[]): Promise<boolean> {
    const where = `${userId}/${sessionId}`;
    return this.mutex.run(sessionKey(userId, sessionId), async () => {
      let state: SessionState | null = null;
      let broken: MemexError | null = null;
      try {
        state = await this.loadSession(userId, sessionId);
      } catch (cause) {
        broken = toMemexError(cause);
        if (broken.code !== 'MEMEX_SESSION_NOT_FOUND' && broken.code !== 'MEMEX_SESSION_CORRUPT') {
          found.push({ severity: 'problem', where, what: `${broken.code}: ${broken.message}` });
          return false;
        }
      }
      if (state) {
        const moved = await state.log.quarantine(this.durability);
        if (moved) {
          // Rows of messages that were on the quarantined lines go too: search shows only what reads.
          const vectors = await this.sessionVectors(state, userId, sessionId);
          const orphans = new Set<string>();
          for (const line of (await vectors.read()).lines) {
            if (line.source.kind === 'message' && !(await state.log.has(line.source.messageId))) orphans.add(line.source.messageId);
          }
          for (const messageId of orphans) await vectors.removeMessage(messageId);
          if (orphans.size > 0) this.bumpVectors(userId);
          this.sessionCache.delete(sessionKey(userId, sessionId));
          await this.loadSession(userId, sessionId); // recounts from the log
          found.push({ severity: 'repaired', where, what: `moved ${moved.lines} line(s) that are not messages out of messages.jsonl, to ${moved.savedTo}` });
        }
        return false;
      }
      const logPath = this.layout.messages(userId, sessionId);
      const hasLog = await stat(logPath).then(() => true, () => false);
      if (!hasLog) return false; // a folder with no messages: nothing hidden, nothing to rebuild from
      const metaPath = this.layout.sessionMeta(userId, sessionId);
      const savedTo = (await stat(metaPath).then(() => true, () => false)) ? await this.keepAside(metaPath) : null;
      const { log } = await MessageLog.open(logPath, sessionId, this.durability);
      const count = await log.count();
      const first = count > 0 ? ((await log.range(0, 1))[0] ?? null) : null;
      const last = await log.last();
      let firstUser: Message | null = null;
      for await (const message of log.stream()) {
        if (message.role === 'user') {
          firstUser = message;
          break;
        }
      }
      const created = first?.createdAt ?? (await stat(this.layout.session(userId, sessionId))).birthtime.toISOString();
      const title = firstUser ? oneLine(firstUser.content, TITLE_CHARS) : '';
      const meta: SessionMeta = {
        v: FORMAT_VERSION,
        id: sessionId,
        userId,
        title: title || null,
        titleSource: title ? 'auto' : null,
        personaId: null,
        origin: { kind: 'native' },
        createdAt: created,
        updatedAt: nowIso(),
        lastMessageAt: last?.createdAt ?? null,
        messageCount: count,
        lastMessagePreview: last ? oneLine(last.content, PREVIEW_CHARS) : null,
        messagesBytes: log.size,
        metadata: {},
      };
      await this.durability.writeJsonAtomic(metaPath, meta);
      this.sessionCache.delete(sessionKey(userId, sessionId));
      this.bumpVectors(userId);
      found.push({
        severity: 'repaired',
        where,
        what: `session_meta.json was ${savedTo ? `unreadable (${broken?.message ?? 'corrupt'}; kept as ${savedTo})` : 'missing'}; rebuilt it from messages.jsonl (${count} messages; title, persona and metadata reset)`,
      });
      return true;
    });
  }

  /** Renames a file that cannot be read to `<name>.corrupt-<time>` beside it; returns the new path. */
  private async keepAside(path: string): Promise<string> {
    const savedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '')}`;
    await rename(path, savedTo).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot move ${path} aside`);
    });
    return savedTo;
  }

  private sessionIds(userId: string, sessionId: string): [UserId, SessionId] {
    this.assertOpen();
    return [parseId('user', userId), parseId('session', sessionId)];
  }

  /** Reads a session's meta and opens its log (repairing a torn tail). Call inside the session's mutex. */
  private async loadSession(userId: UserId, sessionId: SessionId): Promise<SessionState> {
    const key = sessionKey(userId, sessionId);
    const cached = this.sessionCache.get(key);
    if (cached) {
      this.sessionCache.delete(key);
      this.sessionCache.set(key, cached);
      return cached;
    }
    await this.requireUser(userId);
    const path = this.layout.sessionMeta(userId, sessionId);
    const meta = await readJsonRecord(
      path,
      SessionMetaSchema,
      (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: ${reason}`, { cause, details: { sessionId, path } }),
    );
    if (!meta || meta.id !== sessionId) {
      throw new MemexError('MEMEX_SESSION_NOT_FOUND', `session ${sessionId} does not exist for user ${userId}`, { details: { userId, sessionId } });
    }
    if (meta.userId !== userId) {
      throw new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: ${path} belongs to user ${meta.userId}`, { details: { sessionId, path } });
    }
    const { log, repair } = await MessageLog.open(this.layout.messages(userId, sessionId), sessionId, this.durability, (found) =>
      this.warn({ kind: 'corrupt-lines-skipped', ...found }),
    );
    if (repair) this.warn({ kind: 'torn-line-repaired', ...repair });
    const state: SessionState = {
      meta,
      log,
      metaMtimeMs: await mtimeOf(path),
      metaWriter: new Coalescer(async () => {
        await this.durability.writeJsonAtomic(path, state.meta);
        state.metaMtimeMs = await mtimeOf(path);
      }),
      vectors: null,
    };
    if (log.size !== meta.messagesBytes) {
      // The log and the counts in the meta disagree (a crash between their writes): the log wins.
      const last = await log.last();
      const reconciled: SessionMeta = {
        ...meta,
        messageCount: await log.count(),
        lastMessageAt: last?.createdAt ?? null,
        lastMessagePreview: last ? oneLine(last.content, PREVIEW_CHARS) : null,
        messagesBytes: log.size,
      };
      await this.writeMeta(state, reconciled);
      this.warn({ kind: 'counts-reconciled', path, messageCount: reconciled.messageCount });
    }
    this.sessionCache.set(key, state);
    if (this.sessionCache.size > SESSION_CACHE_SIZE) {
      const oldest = this.sessionCache.keys().next().value;
      if (oldest !== undefined) this.sessionCache.delete(oldest);
    }
    return state;
  }

  private async writeMeta(state: SessionState, meta: SessionMeta): Promise<void> {
    state.meta = meta;
    await state.metaWriter.run();
  }

  // ---- the session listing (session_index.json) ----------------------------------------------

  /**
   * The user's listing, loaded once per process: entries from session_index.json are checked
   * against each session folder (meta mtime, log size) and any missing or stale entry is rebuilt
   * from its session. After that the listing is kept current in memory and written atomically.
   */
  private userIndex(userId: UserId): Promise<UserIndex> {
    let loading = this.indexes.get(userId);
    if (!loading) {
      loading = this.loadUserIndex(userId);
      this.indexes.set(userId, loading);
      loading.catch(() => this.indexes.delete(userId));
    }
    return loading;
  }

  private async loadUserIndex(userId: UserId): Promise<UserIndex> {
    const path = this.layout.sessionIndex(userId);
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
      writer: new Coalescer(() => this.writeIndex(userId, index)),
    };
    let stale = 0;
    for (const name of await listDir(this.layout.sessions(userId))) {
      let sid: SessionId;
      try {
        sid = parseId('session', name);
      } catch {
        continue;
      }
      const entry = known.get(sid);
      const [metaStat, logStat] = await Promise.all([
        stat(this.layout.sessionMeta(userId, sid)).catch(() => null),
        stat(this.layout.messages(userId, sid)).catch(() => null),
      ]);
      if (entry && metaStat && entry.metaMtimeMs === metaStat.mtimeMs && entry.messagesBytes === (logStat?.size ?? 0)) {
        index.entries.set(sid, entry);
        continue;
      }
      if (entry) stale++;
      await this.refreshEntry(userId, sid, index);
    }
    // Sessions in memory are the truth: an append may have landed while this listing loaded.
    for (const state of this.sessionCache.values()) {
      if (state.meta.userId === userId) index.entries.set(state.meta.id, entryOf(state));
    }
    this.loaded.set(userId, index);
    const changed = reason !== null || stale > 0 || known.size !== index.entries.size || [...known.keys()].some((id) => !index.entries.has(id));
    if (changed) {
      // A missing listing for a user without sessions is simply new, not worth a warning.
      if (stale > 0 || (reason !== null && (reason !== 'missing' || index.entries.size > 0))) {
        this.warn({ kind: 'session-index-rebuilt', userId, reason: reason ?? `${stale} stale entries` });
      }
      await index.writer.run();
    }
    return index;
  }

  private async refreshEntry(userId: UserId, sessionId: SessionId, index: UserIndex): Promise<void> {
    try {
      const state = await this.mutex.run(sessionKey(userId, sessionId), () => this.loadSession(userId, sessionId));
      index.entries.set(sessionId, entryOf(state));
      index.unreadable.delete(sessionId);
    } catch (cause) {
      const error = toMemexError(cause);
      index.entries.delete(sessionId);
      if (error.code === 'MEMEX_SESSION_NOT_FOUND') return;
      index.unreadable.set(sessionId, { sessionId, code: error.code, message: error.message });
      this.warn({ kind: 'unreadable', path: this.layout.session(userId, sessionId), code: error.code, message: error.message });
    }
  }

  private async retryUnreadable(userId: UserId, index: UserIndex): Promise<void> {
    if (index.unreadable.size === 0) return;
    for (const sessionId of [...index.unreadable.keys()]) await this.refreshEntry(userId, sessionId as SessionId, index);
    await index.writer.run();
  }

  /**
   * Puts a session's current meta into the listing and writes the listing (coalesced). Callers load
   * the listing before taking the session's turn; a listing still loading picks the session up
   * from the cache when it finishes.
   */
  private async publish(userId: UserId, state: SessionState): Promise<void> {
    const index = this.loaded.get(userId);
    if (!index) return;
    index.entries.set(state.meta.id, entryOf(state));
    await index.writer.run();
  }

  private async writeIndex(userId: UserId, index: UserIndex): Promise<void> {
    if (!this.profiles.has(userId)) return; // deleted while this write was queued
    // A cache: rebuilt from the session folders if lost, so it is replaced atomically but not fsynced.
    const listing = { v: FORMAT_VERSION, userId, sessions: [...index.entries.values()] };
    await this.durability.writeJsonAtomic(this.layout.sessionIndex(userId), listing, { durable: false });
  }

  // ---- messages -----------------------------------------------------------------------------

  async appendMessages(userId: string, sessionId: string, inputs: readonly NewMessage[]): Promise<Message[]> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    if (!Array.isArray(inputs) || inputs.length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'no messages to append');
    await this.requireUser(uid);
    await this.userIndex(uid);
    const parsed = inputs.map((input, i) => parseInput(NewMessageSchema, input, inputs.length > 1 ? `message ${i + 1}` : 'message'));
    for (const [i, message] of parsed.entries()) {
      const body = messageBody(message);
      if (body.size > this.limits.maxMessageChars) {
        throw new MemexError('MEMEX_MESSAGE_TOO_LARGE', `message ${i + 1} has ${body.size} characters; the limit is ${this.limits.maxMessageChars}`, {
          details: { maxMessageChars: this.limits.maxMessageChars },
        });
      }
      if (message.role !== 'tool' && (message.toolCallId !== undefined || message.toolName !== undefined)) {
        throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1}: toolCallId and toolName are only for role "tool"`);
      }
      // An image, a tool call or an attachment is content too.
      if (body.content.trim() === '' && (message.attachments ?? []).length === 0 && !body.parts?.length && !body.toolCalls) {
        throw new MemexError('MEMEX_INVALID_INPUT', `message ${i + 1} has no content and no attachments`);
      }
    }
    const { state, messages: written } = await this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const messages = await this.buildMessages(uid, sid, state, parsed);
      await state.log.append(messages, this.durability);
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
      await Promise.all([this.durability.commit(this.layout.messages(uid, sid)), state.metaWriter.run()]);
      await this.publish(uid, state);
    })();
    this.inFlight.add(settle);
    try {
      await settle;
    } finally {
      this.inFlight.delete(settle);
    }
    return written;
  }

  private async buildMessages(userId: UserId, sessionId: SessionId, state: SessionState, inputs: readonly z.output<typeof NewMessageSchema>[]): Promise<Message[]> {
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
      for (const attachment of attachments) await this.getFileRecord(userId, sessionId, attachment.fileId);
      const id = input.id ?? newMessageId(now);
      seen.add(id);
      const { v, content, parts, name, toolCalls, toolCallId, toolName } = messageBody(input);
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

  async listMessages(userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const { limit = DEFAULT_PAGE, offset, cursor, before, latest } = parseInput(PageOptionsSchema, page, 'page options');
    const starts = [offset !== undefined, cursor !== undefined, before !== undefined, latest === true].filter(Boolean).length;
    if (starts > 1) throw new MemexError('MEMEX_INVALID_INPUT', 'pass one of offset, cursor, before or latest');
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const { log } = await this.loadSession(uid, sid);
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

  async *streamMessages(userId: string, sessionId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Message> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const { log } = await this.mutex.run(sessionKey(uid, sid), () => this.loadSession(uid, sid));
    yield* log.stream(options.signal);
  }

  async getMessage(userId: string, sessionId: string, messageId: string): Promise<Message> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const mid = parseId('message', messageId);
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const message = await (await this.loadSession(uid, sid)).log.get(mid);
      if (!message) throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
      return message;
    });
  }

  async deleteMessage(userId: string, sessionId: string, messageId: string): Promise<void> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const mid = parseId('message', messageId);
    await this.requireUser(uid);
    await this.userIndex(uid);
    await this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      if (!(await state.log.has(mid))) {
        throw new MemexError('MEMEX_MESSAGE_NOT_FOUND', `message ${mid} is not in session ${sid}`, { details: { sessionId: sid, messageId: mid } });
      }
      // Rows first: a crash in between leaves the message without rows (embedded again on open when
      // it is the last one, else still listed and deletable), never rows of a message that is gone.
      await (await this.sessionVectors(state, uid, sid)).removeMessage(mid);
      this.bumpVectors(uid);
      await state.log.remove(mid, this.durability);
      // The summary may quote the message: it goes too, and is rebuilt from what is left.
      state.summary = null;
      await rm(this.layout.sessionFile(uid, sid, 'summary.json'), { force: true }).catch((cause: unknown) => {
        throw wrapIo(cause, 'cannot remove summary.json');
      });
      const last = await state.log.last();
      await this.writeMeta(state, {
        ...state.meta,
        messageCount: await state.log.count(),
        lastMessageAt: last?.createdAt ?? null,
        lastMessagePreview: last ? oneLine(last.content, PREVIEW_CHARS) : null,
        messagesBytes: state.log.size,
        updatedAt: nowIso(),
      });
      await this.publish(uid, state);
    });
  }

  // ---- vectors ------------------------------------------------------------------------------

  getEmbeddingModel(): Promise<EmbeddingModel | null> {
    this.assertOpen();
    return Promise.resolve(this.manifest.embedding);
  }

  /**
   * The data dir's model is recorded with its first vectors, not when a model first loads: a
   * process that only started (say, a server on a machine without the model, on the fallback)
   * leaves a data dir without vectors free to take the model configured before the first add.
   */
  private async recordFirstModel(batch: VectorBatch): Promise<void> {
    const first = batch.vectors[0];
    if (this.manifest.embedding !== null || !first) return;
    await this.setEmbeddingModel({ model: batch.model, dimension: first.length });
  }

  async setEmbeddingModel(model: EmbeddingModel, options: { replace?: boolean } = {}): Promise<void> {
    this.assertOpen();
    const next = parseInput(EmbeddingModelSchema, model, 'embedding model');
    await this.mutex.run('manifest', async () => {
      const recorded = this.manifest.embedding;
      if (recorded && recorded.model === next.model && recorded.dimension === next.dimension) return;
      if (recorded && !options.replace) {
        throw new MemexError('MEMEX_MODEL_MISMATCH', `the data dir's vectors are from ${recorded.model} (${recorded.dimension}-d), not ${next.model} (${next.dimension}-d)`, {
          details: { recorded, configured: next },
        });
      }
      const manifest = { ...this.manifest, embedding: next };
      await this.durability.writeJsonAtomic(this.layout.manifest, manifest);
      this.manifest = manifest;
    });
  }

  async vectorStatus(userId: string, sessionId: string): Promise<VectorStatus> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    return this.mutex.run(sessionKey(uid, sid), async () => (await this.sessionVectors(await this.loadSession(uid, sid), uid, sid)).status);
  }

  async unembeddedMessages(userId: string, sessionId: string, options: { limit?: number; after?: string } = {}): Promise<Message[]> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const after = options.after === undefined ? -1 : ((await state.log.indexOf(options.after)) ?? -1);
      const from = Math.max(await this.embeddedThrough(state, uid, sid), after) + 1;
      return state.log.range(from, from + limit);
    });
  }

  async appendVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    await this.recordFirstModel(batch);
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const vectors = await this.sessionVectors(state, uid, sid);
      const through = await this.embeddedThrough(state, uid, sid);
      const present = batch.chunks.some((chunk) => chunk.source.kind === 'file') ? vectors.chunkIdSet() : new Set<string>();
      const fresh = await this.batchInLog(uid, state, batch, (position) => position > through);
      await vectors.append(filterBatch(fresh, (chunk) => !present.has(chunk.chunkId)));
      this.bumpVectors(uid);
      return vectors.status;
    });
  }

  async replaceVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    await this.recordFirstModel(batch);
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const vectors = await this.sessionVectors(state, uid, sid);
      await vectors.replace(await this.batchInLog(uid, state, batch, () => true));
      this.bumpVectors(uid);
      return vectors.status;
    });
  }

  vectorEpoch(userId: string): number {
    return this.vectorEpochs.get(parseId('user', userId)) ?? 0;
  }

  /** Rows of the user changed (see `vectorEpoch`); failed writes bump too, which only costs a sync. */
  private bumpVectors(userId: UserId): void {
    this.vectorEpochs.set(userId, (this.vectorEpochs.get(userId) ?? 0) + 1);
  }

  async indexDir(userId: string): Promise<string> {
    this.assertOpen();
    const uid = parseId('user', userId);
    await this.requireUser(uid);
    return this.layout.searchIndex(uid);
  }

  async readVectors(userId: string, sessionId: string, options: { from?: number } = {}): Promise<SessionVectorData> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    return this.mutex.run(sessionKey(uid, sid), async () => (await this.sessionVectors(await this.loadSession(uid, sid), uid, sid)).read(options));
  }

  async readMessageVectors(userId: string, sessionId: string, messageIds: readonly string[]): Promise<Omit<SessionVectorData, 'from'>> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const wanted = new Set(messageIds);
    return this.mutex.run(sessionKey(uid, sid), async () => (await this.sessionVectors(await this.loadSession(uid, sid), uid, sid)).readMessages(wanted));
  }

  async readVectorLines(userId: string, sessionId: string, rows: readonly number[]): Promise<VectorLine[]> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    return this.mutex.run(sessionKey(uid, sid), async () => (await this.sessionVectors(await this.loadSession(uid, sid), uid, sid)).lines(rows));
  }

  /** Opens the session's vector files once (reconciling them); call inside the session's turn. */
  private async sessionVectors(state: SessionState, userId: UserId, sessionId: SessionId): Promise<SessionVectors> {
    if (state.vectors) return state.vectors;
    const { vectors, repair } = await SessionVectors.open(
      {
        index: this.layout.sessionFile(userId, sessionId, 'vector_index.jsonl'),
        npy: this.layout.sessionFile(userId, sessionId, 'embeddings.npy'),
        journal: this.layout.sessionFile(userId, sessionId, 'vectors.swap.json'),
      },
      this.durability,
    );
    if (repair) {
      this.warn({ kind: 'vectors-reconciled', ...repair });
      this.bumpVectors(userId);
    }
    state.vectors = vectors;
    return vectors;
  }

  /**
   * The log position of the last message with rows, -1 if none. Rows of a message the log no longer
   * has (only a hand edit or a lost rename can cause that) are dropped first.
   */
  private async embeddedThrough(state: SessionState, userId: UserId, sessionId: SessionId): Promise<number> {
    const vectors = await this.sessionVectors(state, userId, sessionId);
    for (;;) {
      const last = vectors.lastEmbeddedMessageId;
      if (last === null) return -1;
      const position = await state.log.indexOf(last);
      if (position !== undefined) return position;
      await vectors.removeMessage(last);
      this.bumpVectors(userId);
    }
  }

  /**
   * The batch's chunks (with their vectors) whose message is in the log at a position `accept`
   * takes, in log order, then those of files the session holds, in batch order.
   */
  private async batchInLog(userId: UserId, state: SessionState, batch: VectorBatch, accept: (position: number) => boolean): Promise<VectorBatch> {
    if (batch.chunks.length !== batch.vectors.length) {
      throw new MemexError('MEMEX_INVALID_INPUT', `a vector batch needs one vector per chunk (got ${batch.chunks.length} chunks, ${batch.vectors.length} vectors)`);
    }
    const keep: { index: number; position: number }[] = [];
    const files = new Map<string, boolean>();
    for (const [index, chunk] of batch.chunks.entries()) {
      if (chunk.source.kind === 'file') {
        const { fileId } = chunk.source;
        if (!files.has(fileId)) files.set(fileId, (await this.readFileRecord(userId, state.meta.id, fileId)) !== null);
        if (files.get(fileId)) keep.push({ index, position: Number.MAX_SAFE_INTEGER });
        continue;
      }
      const position = await state.log.indexOf(chunk.source.messageId);
      if (position !== undefined && accept(position)) keep.push({ index, position });
    }
    const order = keep.sort((a, b) => a.position - b.position || a.index - b.index).map((k) => k.index);
    return { model: batch.model, chunks: order.map((i) => batch.chunks[i] as Chunk), vectors: order.map((i) => batch.vectors[i] as Float32Array) };
  }

  // ---- personas -----------------------------------------------------------------------------

  async createPersona(userId: string, input: NewPersona): Promise<Persona> {
    this.assertOpen();
    const uid = parseId('user', userId);
    const fields = parseInput(NewPersonaSchema, input, 'persona');
    const id = fields.id ?? newPersonaId();
    // The user's personas turn first: names are unique per user, so two creates must not both pass the check.
    return this.mutex.run(`personas:${uid}`, () => this.mutex.run(`persona:${uid}/${id}`, async () => {
      await this.requireUser(uid);
      if (await this.readPersona(uid, id)) throw new MemexError('MEMEX_PERSONA_EXISTS', `persona ${id} already exists`, { details: { personaId: id } });
      await this.assertPersonaNameFree(uid, fields.name, null);
      const now = nowIso();
      const persona: Persona = { v: FORMAT_VERSION, id, userId: uid, name: fields.name, instructions: fields.instructions, createdAt: now, updatedAt: now, metadata: fields.metadata ?? {} };
      await this.durability.mkdirp(this.layout.personas(uid));
      await this.durability.writeJsonAtomic(this.layout.persona(uid, id), persona);
      await this.durability.syncDir(this.layout.personas(uid));
      return persona;
    }));
  }

  /** MEMEX_PERSONA_EXISTS when another persona of the user (not `except`) has this name, ignoring case. */
  private async assertPersonaNameFree(userId: UserId, name: string, except: string | null): Promise<void> {
    const taken = (await this.listPersonas(userId)).find((persona) => persona.id !== except && samePersonaName(persona.name, name));
    if (taken) {
      throw new MemexError('MEMEX_PERSONA_EXISTS', `user ${userId} already has a persona named "${taken.name}" (${taken.id})`, { details: { personaId: taken.id, name: taken.name } });
    }
  }

  async getPersona(userId: string, personaId: string): Promise<Persona> {
    this.assertOpen();
    const uid = parseId('user', userId);
    const pid = parseId('persona', personaId);
    await this.requireUser(uid);
    const persona = await this.readPersona(uid, pid);
    if (!persona) throw new MemexError('MEMEX_PERSONA_NOT_FOUND', `persona ${pid} does not exist for user ${uid}`, { details: { personaId: pid } });
    return persona;
  }

  async listPersonas(userId: string): Promise<Persona[]> {
    this.assertOpen();
    const uid = parseId('user', userId);
    await this.requireUser(uid);
    const out: Persona[] = [];
    for (const name of await listDir(this.layout.personas(uid))) {
      if (!name.endsWith('.json')) continue;
      try {
        const persona = await this.readPersona(uid, parseId('persona', name.slice(0, -'.json'.length)));
        if (persona) out.push(persona);
      } catch (cause) {
        const error = toMemexError(cause);
        this.warn({ kind: 'unreadable', path: join(this.layout.personas(uid), name), code: error.code, message: error.message });
      }
    }
    return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  async updatePersona(userId: string, personaId: string, patch: PersonaPatch): Promise<Persona> {
    const changes = parseInput(PersonaPatchSchema, patch, 'persona patch');
    const [uid, pid] = [parseId('user', userId), parseId('persona', personaId)];
    // Read inside the persona's turn, so two concurrent updates cannot overwrite each other.
    return this.mutex.run(`personas:${uid}`, () => this.mutex.run(`persona:${uid}/${pid}`, async () => {
      const current = await this.getPersona(uid, pid);
      if (changes.name !== undefined) await this.assertPersonaNameFree(current.userId, changes.name, current.id);
      const next: Persona = { ...current, ...definedOnly(changes), updatedAt: nowIso() };
      await this.durability.writeJsonAtomic(this.layout.persona(current.userId, current.id), next);
      return next;
    }));
  }

  async deletePersona(userId: string, personaId: string): Promise<void> {
    const persona = await this.getPersona(userId, personaId);
    const uid = persona.userId;
    const index = await this.userIndex(uid);
    for (const entry of [...index.entries.values()].filter((e) => e.personaId === persona.id)) {
      await this.updateSession(uid, entry.id, { personaId: null });
    }
    await this.mutex.run(`persona:${uid}/${persona.id}`, () =>
      rm(this.layout.persona(uid, persona.id), { force: true }).catch((cause: unknown) => {
        throw wrapIo(cause, 'cannot delete persona');
      }),
    );
  }

  private async readPersona(userId: UserId, personaId: z.infer<typeof PersonaSchema>['id']): Promise<Persona | null> {
    const persona = await readJsonRecord(
      this.layout.persona(userId, personaId),
      PersonaSchema,
      (reason, cause) => new MemexError('MEMEX_PERSONA_CORRUPT', reason, { cause, details: { personaId } }),
    );
    return persona && persona.id === personaId && persona.userId === userId ? persona : null;
  }

  // ---- context: summaries and notes ----------------------------------------------------------

  async getSummary(userId: string, sessionId: string): Promise<Summary | null> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      if (state.summary !== undefined) return state.summary;
      const path = this.layout.sessionFile(uid, sid, 'summary.json');
      try {
        const summary = await readJsonRecord(path, SummarySchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause, details: { path } }));
        state.summary = summary && summary.sessionId === sid ? frozen(summary) : null;
      } catch (cause) {
        // Derived from the messages: an unreadable one is reported and made again, never fatal.
        if (!isMemexError(cause, 'MEMEX_SESSION_CORRUPT')) throw cause;
        this.warn({ kind: 'unreadable', path, code: cause.code, message: cause.message });
        state.summary = null;
      }
      return state.summary;
    });
  }

  async setSummary(userId: string, sessionId: string, summary: Summary | null): Promise<void> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const record = summary === null ? null : parseInput(SummarySchema, summary, 'summary');
    if (record && record.sessionId !== sid) throw new MemexError('MEMEX_INVALID_INPUT', `the summary is of session ${record.sessionId}, not ${sid}`);
    await this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const path = this.layout.sessionFile(uid, sid, 'summary.json');
      state.summary = undefined;
      // Derived data, like the vectors: replaced atomically, fsynced only under `always`.
      if (record) await this.durability.writeJsonAtomic(path, record, { durable: this.durability.policy === 'always' });
      else await rm(path, { force: true }).catch((cause: unknown) => {
        throw wrapIo(cause, `cannot remove ${path}`);
      });
      state.summary = record ? frozen(record) : null;
    });
  }

  async listNotes(userId: string): Promise<Note[]> {
    const uid = parseId('user', userId);
    return this.mutex.run(`notes:${uid}`, async () => (await this.readNotes(uid)).notes);
  }

  async addNote(userId: string, input: NewNote): Promise<Note> {
    const uid = parseId('user', userId);
    const fields = parseInput(NewNoteSchema, input, 'note');
    return this.mutex.run(`notes:${uid}`, async () => {
      const history = await this.readNotes(uid);
      const id = fields.id ?? newNoteId();
      if (history.notes.some((note) => note.id === id)) throw new MemexError('MEMEX_NOTE_EXISTS', `note ${id} already exists`, { details: { noteId: id } });
      const now = nowIso();
      const note: Note = { id, kind: fields.kind, text: fields.text, pinned: fields.pinned, createdAt: now, updatedAt: now, metadata: fields.metadata ?? {} };
      await this.durability.writeJsonAtomic(this.layout.contextHistory(uid), { ...history, notes: [...history.notes, note] });
      return note;
    });
  }

  async updateNote(userId: string, noteId: string, patch: NotePatch): Promise<Note> {
    const [uid, nid] = [parseId('user', userId), parseId('note', noteId)];
    const changes = parseInput(NotePatchSchema, patch, 'note patch');
    return this.mutex.run(`notes:${uid}`, async () => {
      const history = await this.readNotes(uid);
      const current = history.notes.find((note) => note.id === nid);
      if (!current) throw noteNotFound(uid, nid);
      const next: Note = { ...current, ...definedOnly(changes), updatedAt: nowIso() };
      await this.durability.writeJsonAtomic(this.layout.contextHistory(uid), { ...history, notes: history.notes.map((note) => (note.id === nid ? next : note)) });
      return next;
    });
  }

  async deleteNote(userId: string, noteId: string): Promise<void> {
    const [uid, nid] = [parseId('user', userId), parseId('note', noteId)];
    await this.mutex.run(`notes:${uid}`, async () => {
      const history = await this.readNotes(uid);
      if (!history.notes.some((note) => note.id === nid)) throw noteNotFound(uid, nid);
      await this.durability.writeJsonAtomic(this.layout.contextHistory(uid), { ...history, notes: history.notes.filter((note) => note.id !== nid) });
    });
  }

  /** The user's notes file; a missing one is empty, an unreadable one an error (notes are not derived: nothing overwrites them). */
  private async readNotes(userId: UserId): Promise<ContextHistory> {
    await this.requireUser(userId);
    const path = this.layout.contextHistory(userId);
    const history = await readJsonRecord(path, ContextHistorySchema, (reason, cause) => new MemexError('MEMEX_USER_CORRUPT', reason, { cause, details: { userId, path } }));
    if (history && history.userId !== userId) throw new MemexError('MEMEX_USER_CORRUPT', `${path} belongs to user ${history.userId}`, { details: { userId, path } });
    return history ?? { v: FORMAT_VERSION, userId, notes: [] };
  }

  // ---- files --------------------------------------------------------------------------------

  /**
   * Removes the temp files of uploads cut off by a crash or a kill, in every session. They were
   * never acknowledged, so nothing is lost. This process holds the data dir's lock, so any upload
   * staged by another process is dead. Uploads of this process are left alone. Returns how many went.
   */
  async sweepStaleUploads(): Promise<number> {
    this.assertOpen();
    let removed = 0;
    for (const user of await listDir(this.layout.users)) {
      const sessions = join(this.layout.users, user, 'sessions');
      for (const session of await listDir(sessions)) removed += await sweepStaleUploads(join(sessions, session, 'files'), { othersAreDead: true });
    }
    return removed;
  }

  async putFile(userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const name = parseInput(z.string().max(255), input.name ?? '', 'file name');
    await this.mutex.run(sessionKey(uid, sid), () => this.loadSession(uid, sid));
    const dir = this.layout.files(uid, sid);
    await this.durability.mkdirp(dir);
    await sweepStaleUploads(dir);
    // Streaming and hashing run outside the session's turn; only the final rename takes it.
    const staged = await stageFile(dir, input.source, name, this.limits.maxFileBytes, this.durability);
    return this.mutex.run(sessionKey(uid, sid), async () => {
      const existing = await this.readFileRecord(uid, sid, staged.id);
      const { created } = await staged.commit((type) => this.layout.fileBlob(uid, sid, staged.id, existing?.ext ?? type.ext));
      if (existing) return { file: existing, created: false };
      const file: FileRecord = {
        v: FORMAT_VERSION,
        id: staged.id,
        sessionId: sid,
        sha256: staged.id,
        name,
        mimeType: staged.type.mimeType,
        ext: staged.type.ext,
        size: staged.size,
        createdAt: nowIso(),
        metadata: input.metadata ?? {},
      };
      await this.durability.writeJsonAtomic(this.layout.fileRecord(uid, sid, staged.id), file);
      return { file, created };
    });
  }

  async getFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    await this.mutex.run(sessionKey(uid, sid), () => this.loadSession(uid, sid));
    return this.getFileRecord(uid, sid, parseId('file', fileId));
  }

  async listFiles(userId: string, sessionId: string): Promise<FileRecord[]> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    await this.mutex.run(sessionKey(uid, sid), () => this.loadSession(uid, sid));
    const out: FileRecord[] = [];
    for (const name of await listDir(this.layout.files(uid, sid))) {
      if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
      const record = await this.readFileRecord(uid, sid, parseId('file', name.slice(0, 64)));
      if (record) out.push(record);
    }
    return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async readFile(userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const record = await this.getFile(uid, sid, fileId);
    const path = this.layout.fileBlob(uid, sid, record.id, record.ext);
    await stat(path).catch((cause: unknown) => {
      throw new MemexError('MEMEX_FILE_NOT_FOUND', `the stored copy of file ${record.id} is missing`, { cause, details: { fileId: record.id } });
    });
    return createReadStream(path);
  }

  async setFileContent(userId: string, sessionId: string, fileId: string, content: FileContent | null): Promise<FileRecord> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const fid = parseId('file', fileId);
    const parsed = content === null ? null : parseInput(FileContentSchema, content, 'file content');
    return this.mutex.run(sessionKey(uid, sid), async () => {
      await this.loadSession(uid, sid);
      const { content: _old, ...record } = await this.getFileRecord(uid, sid, fid);
      const next: FileRecord = parsed === null ? record : { ...record, content: parsed };
      await this.durability.writeJsonAtomic(this.layout.fileRecord(uid, sid, fid), next);
      return next;
    });
  }

  async writeFileArtifact(userId: string, sessionId: string, fileId: string, name: FileArtifactName, data: string | Uint8Array): Promise<void> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const fid = parseId('file', fileId);
    const artifact = parseInput(z.enum(FILE_ARTIFACTS), name, 'file artifact');
    await this.mutex.run(sessionKey(uid, sid), async () => {
      await this.loadSession(uid, sid);
      await this.getFileRecord(uid, sid, fid);
      await this.durability.writeAtomic(this.layout.fileArtifact(uid, sid, fid, artifact), data);
    });
  }

  async readFileArtifact(userId: string, sessionId: string, fileId: string, name: FileArtifactName): Promise<Buffer> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const fid = parseId('file', fileId);
    const artifact = parseInput(z.enum(FILE_ARTIFACTS), name, 'file artifact');
    await this.getFile(uid, sid, fid);
    return readFile(this.layout.fileArtifact(uid, sid, fid, artifact)).catch((cause: unknown) => {
      if (isNotFound(cause)) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fid} has no ${artifact} (it is made when the file is ingested)`, { cause, details: { fileId: fid, artifact } });
      throw wrapIo(cause, `cannot read the ${artifact} of file ${fid}`);
    });
  }

  async deleteFile(userId: string, sessionId: string, fileId: string): Promise<void> {
    const [uid, sid] = this.sessionIds(userId, sessionId);
    const fid = parseId('file', fileId);
    await this.mutex.run(sessionKey(uid, sid), async () => {
      const state = await this.loadSession(uid, sid);
      const record = await this.getFileRecord(uid, sid, fid);
      // Rows first, then the record: a crash in between leaves a file with no rows, which the next
      // ingest of it fills again, never rows that point at a file that is gone.
      if ((await (await this.sessionVectors(state, uid, sid)).removeFile(fid)) > 0) this.bumpVectors(uid);
      const paths = [...FILE_ARTIFACTS.map((name) => this.layout.fileArtifact(uid, sid, fid, name)), this.layout.fileBlob(uid, sid, fid, record.ext)];
      await unlink(this.layout.fileRecord(uid, sid, fid)).catch((cause: unknown) => {
        if (!isNotFound(cause)) throw wrapIo(cause, `cannot delete file ${fid}`);
      });
      for (const path of paths) await rm(path, { force: true });
      await this.durability.syncDir(this.layout.files(uid, sid));
    });
  }

  private async getFileRecord(userId: UserId, sessionId: SessionId, fileId: string): Promise<FileRecord> {
    const record = await this.readFileRecord(userId, sessionId, parseId('file', fileId));
    if (!record) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fileId} is not in session ${sessionId}`, { details: { sessionId, fileId } });
    return record;
  }

  private readFileRecord(userId: UserId, sessionId: SessionId, fileId: FileRecord['id']): Promise<FileRecord | null> {
    return readJsonRecord(
      this.layout.fileRecord(userId, sessionId, fileId),
      FileRecordSchema,
      (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: ${reason}`, { cause, details: { sessionId, fileId } }),
    );
  }

  // ---- helpers ------------------------------------------------------------------------------

  /** Renames a folder into the trash, then removes it: it vanishes at once, whole, even if removal is cut short. */
  private async moveToTrash(path: string): Promise<void> {
    await this.durability.mkdirp(this.layout.trash);
    const aside = join(this.layout.trash, `${Date.now()}-${randomBytes(4).toString('hex')}`);
    await rename(path, aside).catch((cause: unknown) => {
      throw wrapIo(cause, `cannot delete ${path}`);
    });
    await rm(aside, { recursive: true, force: true });
  }
}

function filterBatch(batch: VectorBatch, keep: (chunk: Chunk) => boolean): VectorBatch {
  const indexes = batch.chunks.flatMap((chunk, i) => (keep(chunk) ? [i] : []));
  if (indexes.length === batch.chunks.length) return batch;
  return { model: batch.model, chunks: indexes.map((i) => batch.chunks[i] as Chunk), vectors: indexes.map((i) => batch.vectors[i] as Float32Array) };
}

function entryOf(state: SessionState): IndexEntry {
  return { ...state.meta, metaMtimeMs: state.metaMtimeMs };
}

async function mtimeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => null))?.mtimeMs ?? 0;
}

function sessionKey(userId: UserId, sessionId: SessionId): string {
  return `${userId}/${sessionId}`;
}

function definedOnly<T extends Record<string, unknown>>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}

async function listDir(path: string): Promise<string[]> {
  try {
    return (await readdir(path)).filter((name) => !name.startsWith('.'));
  } catch (cause) {
    if (isNotFound(cause)) return [];
    throw wrapIo(cause, `cannot list ${path}`);
  }
}

/** Refuses to turn a folder that holds other things into a data dir (say, a mistyped `--data-dir ~`). */
async function assertDataDir(layout: Layout): Promise<void> {
  let names: string[];
  try {
    names = await readdir(layout.root);
  } catch (cause) {
    if (isNotFound(cause)) {
      await mkdir(layout.root, { recursive: true }).catch((inner: unknown) => {
        throw wrapIo(inner, `cannot create data dir ${layout.root}`);
      });
      return;
    }
    if ((cause as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new MemexError('MEMEX_DATA_DIR_INVALID', `${layout.root} is a file, not a data dir`, { cause });
    }
    throw wrapIo(cause, `cannot open data dir ${layout.root}`);
  }
  const isMemex = names.includes('memex.json') || names.includes('users');
  // The server keeps its API keys and job journal beside the store's files (keys may come first).
  const ours = ['memex.json', 'memex.lock', 'users', '.trash', 'api_keys.json', 'api_keys.json.lock', 'ingest_jobs.jsonl'];
  const foreign = names.filter((n) => !ours.includes(n) && !n.startsWith('memex.'));
  if (!isMemex && foreign.length > 0) {
    throw new MemexError('MEMEX_DATA_DIR_INVALID', `${layout.root} is not empty and is not a Memex data dir (it holds ${foreign.slice(0, 3).join(', ')}…)`, {
      details: { dataDir: layout.root },
    });
  }
}

/** One line saying what a warning means, for logs and the CLI. */
export function describeWarning(warning: StoreWarning): string {
  switch (warning.kind) {
    case 'torn-line-repaired':
      return `repaired a torn last line in ${warning.path} (${warning.bytes} bytes ${warning.kept ? 'kept' : `saved to ${warning.savedTo}`})`;
    case 'counts-reconciled':
      return `recounted ${warning.path} from its message log (${warning.messageCount} messages)`;
    case 'session-index-rebuilt':
      return `rebuilt the session listing of user ${warning.userId} (${warning.reason})`;
    case 'unreadable':
      return `cannot read ${warning.path}: ${warning.code}: ${warning.message}`;
    case 'vectors-reconciled':
      return `reconciled ${warning.path} with embeddings.npy (${warning.reason}); kept ${warning.rows} rows, the rest are embedded again`;
    case 'corrupt-lines-skipped':
      return `skipped ${warning.lines.length} line(s) of ${warning.path} that are not messages (line ${warning.lines.slice(0, 5).join(', ')}${warning.lines.length > 5 ? ', …' : ''}: ${warning.reason}); the rest of the session reads on; \`memex doctor\` moves them to a quarantine file`;
  }
}

function defaultWarn(warning: StoreWarning): void {
  process.emitWarning(describeWarning(warning), { code: 'MEMEX_STORE' });
}

function noteNotFound(userId: UserId, noteId: string): MemexError {
  return new MemexError('MEMEX_NOTE_NOT_FOUND', `note ${noteId} does not exist for user ${userId}`, { details: { noteId } });
}

/** Cached records are handed out shared: frozen, so no caller can change the cache under the others. */
function frozen<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) frozen(inner);
    Object.freeze(value);
  }
  return value;
}
