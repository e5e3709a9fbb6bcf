import { isDeepStrictEqual } from 'node:util';
import { type Chunk, type EmbeddingModel, isMemexError, MemexError, type Message, type MemexErrorCode, type NewMessage, type Profile, type SessionSummary } from '../../core/index.js';
import { sessionReader, type SessionReader } from '../session-reader.js';
import { FILE_ARTIFACTS, type RestoredSession, type Store, type TrashedMessageCopy } from '../store.js';
import { differences, digestSession, digestUser } from './verify.js';

/**
 * Messages per append. Each append is one durable write (one fsync on flat files, one transaction
 * on Postgres): larger batches copy faster and hold more in memory. 500 keeps a batch of long
 * messages to a few MB.
 */
export const DEFAULT_MESSAGE_BATCH = 500;
/** Vector rows per read and per append (512-d rows: 2 KB each, so about 2 MB a window). */
export const DEFAULT_VECTOR_WINDOW = 1000;
const SESSION_PAGE = 200;

export interface MigrateOptions {
  /** Only these users (default: every user of the source). */
  userIds?: readonly string[];
  signal?: AbortSignal;
  onProgress?: (progress: MigrateProgress) => void;
  messageBatch?: number;
  vectorWindow?: number;
  /** Read both sides back and compare them per session (default true). */
  verify?: boolean;
}

export interface MigrateProgress {
  phase: 'copy' | 'verify';
  sessionsDone: number;
  sessionsTotal: number;
  /** Written so far by this run. */
  messages: number;
  vectorRows: number;
  files: number;
}

/** How much of each kind: what the source holds (`totals`) or what this run wrote (`written`). */
export interface MigrateCounts {
  users: number;
  personas: number;
  notes: number;
  sessions: number;
  messages: number;
  files: number;
  fileBytes: number;
  artifacts: number;
  summaries: number;
  vectorRows: number;
}

export interface MigrateResult {
  /** What the source holds, now also in the target. */
  totals: MigrateCounts;
  /** What this run wrote: all zero when a finished migration runs again. */
  written: MigrateCounts;
  model: EmbeddingModel | null;
  seconds: number;
  /** Messages and vector rows written per second of copying (verification not counted). */
  rowsPerSecond: number;
  /** Null when `verify: false`; a mismatch throws MEMEX_MIGRATION_MISMATCH instead of returning. */
  verification: { sessions: number; users: number; ok: true; seconds: number } | null;
  /** Sessions the source could not read: not copied, named here. */
  unreadable: { userId: string; sessionId: string; code: MemexErrorCode; message: string }[];
}

const zero = (): MigrateCounts => ({ users: 0, personas: 0, notes: 0, sessions: 0, messages: 0, files: 0, fileBytes: 0, artifacts: 0, summaries: 0, vectorRows: 0 });

/**
 * Copies everything of `from` into `to` through the Store contract: users, personas, notes,
 * sessions (ids, titles, times), messages (ids, times, content, metadata, attachments), files (bytes,
 * what ingest learned, derived artifacts), summaries and vector rows, which are copied as they are,
 * not embedded again, so both sides must use one model (MEMEX_MODEL_MISMATCH otherwise).
 *
 * Streaming: messages go over in batches and vector rows in windows, so neither a user nor a session
 * is ever held in memory whole. Resumable and idempotent: every step first looks at what the target
 * has and continues from there (a session's messages after its last copied one, its rows after its
 * last copied row), so a run cut off anywhere is finished by running it again, and running it after
 * it finished writes nothing. At the end each session is read back on both sides and compared by
 * counts and sha256 over a canonical form; a difference throws MEMEX_MIGRATION_MISMATCH.
 */
export async function migrateStore(from: Store, to: Store, options: MigrateOptions = {}): Promise<MigrateResult> {
  const run = new Migration(from, to, options);
  return run.run();
}

class Migration {
  private readonly totals = zero();
  private readonly written = zero();
  private readonly unreadable: MigrateResult['unreadable'] = [];
  private readonly batch: number;
  private readonly window: number;
  private sessionsDone = 0;
  private sessionsTotal = 0;
  private model: EmbeddingModel | null = null;

  constructor(
    private readonly from: Store,
    private readonly to: Store,
    private readonly options: MigrateOptions,
  ) {
    this.batch = Math.max(1, options.messageBatch ?? DEFAULT_MESSAGE_BATCH);
    this.window = Math.max(1, options.vectorWindow ?? DEFAULT_VECTOR_WINDOW);
  }

  async run(): Promise<MigrateResult> {
    const started = performance.now();
    this.model = await this.models();
    const users = await this.users();
    for (const user of users) this.sessionsTotal += (await this.from.listSessions(user.id, { limit: 1, trashed: 'include' })).total;
    for (const user of users) await this.copyUser(user);
    const copySeconds = (performance.now() - started) / 1000;
    let verification: MigrateResult['verification'] = null;
    if (this.options.verify !== false) {
      const verifyStarted = performance.now();
      const sessions = await this.verify(users);
      verification = { sessions, users: users.length, ok: true, seconds: round((performance.now() - verifyStarted) / 1000) };
    }
    const rows = this.written.messages + this.written.vectorRows;
    return {
      totals: this.totals,
      written: this.written,
      model: this.model,
      seconds: round((performance.now() - started) / 1000),
      rowsPerSecond: copySeconds > 0 ? Math.round(rows / copySeconds) : 0,
      verification,
      unreadable: this.unreadable,
    };
  }

  /** Vectors are copied only between stores of one model: a target that records another is refused. */
  private async models(): Promise<EmbeddingModel | null> {
    const source = await this.from.getEmbeddingModel();
    const target = await this.to.getEmbeddingModel();
    if (source === null) return null;
    if (target !== null && (target.model !== source.model || target.dimension !== source.dimension)) {
      throw new MemexError(
        'MEMEX_MODEL_MISMATCH',
        `the source's vectors are from ${source.model} (${source.dimension}-d) but the target records ${target.model} (${target.dimension}-d); vectors are copied, not embedded again: migrate into a target without vectors, then run \`memex reindex\` there to change models`,
        { details: { source, target } },
      );
    }
    if (target === null) await this.to.setEmbeddingModel(source);
    return source;
  }

  private async users(): Promise<Profile[]> {
    if (!this.options.userIds) return this.from.listUsers();
    const out: Profile[] = [];
    for (const id of this.options.userIds) out.push(await this.from.getUser(id));
    return out;
  }

  private progress(phase: MigrateProgress['phase']): void {
    this.options.onProgress?.({ phase, sessionsDone: this.sessionsDone, sessionsTotal: this.sessionsTotal, messages: this.written.messages, vectorRows: this.written.vectorRows, files: this.written.files });
  }

  private checkAborted(): void {
    if (this.options.signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'the migration was cancelled; run it again to continue where it stopped');
  }

  private async copyUser(profile: Profile): Promise<void> {
    this.checkAborted();
    const uid = profile.id;
    this.totals.users++;
    const existing = await this.to.getUser(uid).catch(orNull('MEMEX_USER_NOT_FOUND'));
    if (!isDeepStrictEqual(existing, profile)) {
      await this.to.restoreUser(profile);
      this.written.users++;
    }
    const personas = new Map((await this.to.listPersonas(uid)).map((p) => [p.id, p]));
    for (const persona of await this.from.listPersonas(uid)) {
      this.totals.personas++;
      if (isDeepStrictEqual(personas.get(persona.id), persona)) continue;
      await this.to.restorePersona(uid, persona);
      this.written.personas++;
    }
    const notes = new Map((await this.to.listNotes(uid)).map((n) => [n.id, n]));
    for (const note of await this.from.listNotes(uid)) {
      this.totals.notes++;
      if (isDeepStrictEqual(notes.get(note.id), note)) continue;
      await this.to.restoreNote(uid, note);
      this.written.notes++;
    }
    for await (const session of this.sessionsOf(this.from, uid, true)) {
      await this.copySession(uid, session);
      this.sessionsDone++;
      this.progress('copy');
    }
  }

  /** A user's sessions a page at a time (a user may have many). */
  private async *sessionsOf(store: Store, userId: string, noteUnreadable: boolean): AsyncGenerator<SessionSummary> {
    let cursor: string | undefined;
    for (;;) {
      const page = await store.listSessions(userId, { limit: SESSION_PAGE, trashed: 'include', ...(cursor !== undefined ? { cursor } : {}) });
      if (noteUnreadable) for (const broken of page.unreadable) this.unreadable.push({ userId, ...broken });
      yield* page.sessions;
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
    }
  }

  /**
   * An archived session is read out of its archive (left archived in the source), written live in
   * the target like any other, then archived there in the target's own format at its original time:
   * each backend's archive format is its own, so the content, not the archive, travels.
   */
  private async copySession(userId: string, listed: SessionSummary): Promise<void> {
    this.checkAborted();
    const sid = listed.id;
    this.totals.sessions++;
    // Read again, not as listed: a server sharing a PostgreSQL source may have archived it since.
    const session = await this.from.getSession(userId, sid);
    const source = await sessionReader(this.from, userId, session);
    let target = await this.to.getSession(userId, sid).catch(orNull('MEMEX_SESSION_NOT_FOUND'));
    if (target && target.archivedAt !== null) {
      // Archiving is a copy's last step: an archived copy of an archived session is finished (verification compares them).
      if (source.archived) return this.countOnly(source);
      await this.to.unarchiveSession(userId, sid);
    }
    const created = !target;
    // Out of the trash while messages are copied into it (a trashed session takes none); the last
    // restore below puts the source's trash time back.
    if (!target) target = await this.to.restoreSession(userId, { ...restorable(session), trashedAt: null });
    else if (target.trashedAt !== null && target.messageCount < session.messageCount) target = await this.to.untrashSession(userId, sid);
    await this.copyFiles(userId, sid, source);
    await this.copyMessages(userId, sid, source, target.messageCount);
    await this.copyVectors(userId, sid, source);
    const summary = await source.getSummary();
    if (summary) this.totals.summaries++;
    if (!isDeepStrictEqual(summary, await this.to.getSummary(userId, sid))) {
      await this.to.setSummary(userId, sid, summary);
      this.written.summaries++;
    }
    await this.copyTrashed(userId, sid, source);
    // Last: appending moved the target's updatedAt on, and an earlier, cut-off run may have left it so.
    const now = await this.to.getSession(userId, sid);
    const stale = !isDeepStrictEqual(restorable(now), restorable(session));
    if (stale) await this.to.restoreSession(userId, restorable(session));
    const archived = source.archived && session.archivedAt !== null && (await this.to.archiveSession(userId, sid, { now: new Date(session.archivedAt) })).archivedNow;
    if (created || stale || archived) this.written.sessions++;
  }

  /**
   * The session's trashed messages into the target's trash (with their place and rows, so untrash
   * there puts each back as in the source), newest trashed first; nothing is written when the
   * target's trash already reads the same, and what the source's trash no longer holds is purged.
   */
  private async copyTrashed(userId: string, sessionId: string, source: SessionReader): Promise<void> {
    const items = await source.readTrashedMessages();
    const there = await this.to.readTrashedMessages(userId, sessionId);
    if (isDeepStrictEqual(items.map(comparable), there.map(comparable))) return;
    const kept = new Set(items.map((item) => item.message.id));
    for (const item of there) if (!kept.has(item.message.id)) await this.to.purgeTrashedMessage(userId, sessionId, item.message.id);
    for (const item of [...items].reverse()) {
      this.checkAborted();
      await this.to.restoreTrashedMessage(userId, sessionId, item);
    }
  }

  /** The totals of a session already copied whole. */
  private async countOnly(source: SessionReader): Promise<void> {
    for (const file of await source.listFiles()) {
      this.totals.files++;
      this.totals.fileBytes += file.size;
      for (const name of FILE_ARTIFACTS) if ((await source.readFileArtifact(file.id, name)) !== null) this.totals.artifacts++;
    }
    for await (const _message of source.streamMessages()) this.totals.messages++;
    this.totals.vectorRows += (await source.vectorStatus()).rows;
    if (await source.getSummary()) this.totals.summaries++;
  }

  private async copyFiles(userId: string, sessionId: string, source: SessionReader): Promise<void> {
    const present = new Map((await this.to.listFiles(userId, sessionId)).map((f) => [f.id, f]));
    for (const file of await source.listFiles()) {
      this.checkAborted();
      this.totals.files++;
      this.totals.fileBytes += file.size;
      let copy = present.get(file.id);
      if (!copy) {
        const { file: put } = await this.to.putFile(userId, sessionId, {
          source: { stream: await source.readFile(file.id) },
          name: file.name,
          metadata: file.metadata,
          createdAt: file.createdAt,
        });
        if (put.id !== file.id) throw mismatch(`file ${file.id} of session ${sessionId} was stored as ${put.id}: its bytes changed while it was read`, { userId, sessionId, fileId: file.id });
        this.written.files++;
        this.written.fileBytes += file.size;
        copy = put;
      }
      if (!isDeepStrictEqual(copy.content, file.content)) await this.to.setFileContent(userId, sessionId, file.id, file.content ?? null);
      for (const name of FILE_ARTIFACTS) {
        const bytes = await source.readFileArtifact(file.id, name);
        if (!bytes) continue;
        this.totals.artifacts++;
        const there = await this.to.readFileArtifact(userId, sessionId, file.id, name).catch(orNull('MEMEX_FILE_NOT_FOUND'));
        if (there && Buffer.compare(there, bytes) === 0) continue;
        await this.to.writeFileArtifact(userId, sessionId, file.id, name, bytes);
        this.written.artifacts++;
      }
    }
  }

  /**
   * Streams the source's messages, skips the `have` the target already holds (checking that they
   * end with the same message), and appends the rest in batches.
   */
  private async copyMessages(userId: string, sessionId: string, source: SessionReader, have: number): Promise<void> {
    const lastThere = have > 0 ? (await this.to.listMessages(userId, sessionId, { latest: true, limit: 1 })).messages[0] : undefined;
    let seen = 0;
    let pending: NewMessage[] = [];
    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      this.checkAborted();
      await this.to.appendMessages(userId, sessionId, pending).catch((cause: unknown) => {
        throw isMemexError(cause, 'MEMEX_FILE_NOT_FOUND') ? danglingAttachment(cause, userId, sessionId, pending) : cause;
      });
      this.written.messages += pending.length;
      pending = [];
      this.progress('copy');
    };
    try {
      for await (const message of source.streamMessages(this.options.signal ? { signal: this.options.signal } : {})) {
        seen++;
        if (seen < have) continue;
        if (seen === have) {
          if (message.id !== lastThere?.id) throw conflict(`session ${sessionId} of user ${userId} already holds ${have} messages in the target, and they do not end with message ${message.id} as the source's do`, { userId, sessionId });
          continue;
        }
        pending.push(toNewMessage(message));
        if (pending.length >= this.batch) await flush();
      }
    } catch (cause) {
      this.checkAborted();
      throw cause;
    }
    await flush();
    if (seen < have) throw conflict(`session ${sessionId} of user ${userId} holds ${have} messages in the target but only ${seen} in the source`, { userId, sessionId });
    this.totals.messages += seen;
  }

  /**
   * Copies the rows after those the target has, as they are. A batch never splits a message's rows
   * and never puts a message's rows after a file's (a store appends a message's rows only after the
   * last embedded message, and files' rows after messages' in one batch), so the target's rows come
   * out in the source's order.
   */
  private async copyVectors(userId: string, sessionId: string, reader: SessionReader): Promise<void> {
    const source = await reader.vectorStatus();
    this.totals.vectorRows += source.rows;
    if (source.rows === 0 || source.model === null || source.dimension === null) return;
    const target = await this.to.vectorStatus(userId, sessionId);
    let have = target.rows;
    if (have > source.rows) throw conflict(`session ${sessionId} of user ${userId} has ${have} vector rows in the target but ${source.rows} in the source`, { userId, sessionId });
    if (have > 0) {
      const [line] = (await reader.readVectors({ from: have - 1, limit: 1 })).lines;
      if (line?.chunkId !== target.tail) throw conflict(`session ${sessionId} of user ${userId}: the target's vector rows are not the source's first ${have}`, { userId, sessionId });
    }
    const model = source.model;
    const dimension = source.dimension;
    let chunks: Chunk[] = [];
    let vectors: Float32Array[] = [];
    let lastKey = null as string | null;
    const flush = async (): Promise<void> => {
      if (chunks.length === 0) return;
      this.checkAborted();
      const status = await this.to.appendVectors(userId, sessionId, { model, chunks, vectors });
      if (status.rows !== have + chunks.length) {
        throw mismatch(`session ${sessionId} of user ${userId}: the target kept ${status.rows - have} of ${chunks.length} vector rows`, { userId, sessionId });
      }
      have = status.rows;
      this.written.vectorRows += chunks.length;
      chunks = [];
      vectors = [];
      this.progress('copy');
    };
    for (let next = have; next < source.rows; ) {
      this.checkAborted();
      const window = await reader.readVectors({ from: next, limit: this.window });
      if (window.lines.length === 0) break;
      for (const [i, line] of window.lines.entries()) {
        const key = line.source.kind === 'message' ? `m:${line.source.messageId}` : `f:${line.source.fileId}`;
        const full = chunks.length >= this.window && (key !== lastKey || key.startsWith('f:'));
        const fileThenMessage = lastKey !== null && lastKey.startsWith('f:') && key.startsWith('m:');
        if (full || fileThenMessage) await flush();
        const { v: _v, row: _row, model: _model, ...chunk } = line;
        chunks.push(chunk);
        vectors.push(window.vectors.slice(i * dimension, (i + 1) * dimension));
        lastKey = key;
      }
      next += window.lines.length;
    }
    await flush();
  }

  private async verify(users: readonly Profile[]): Promise<number> {
    this.sessionsDone = 0;
    const found: { userId: string; sessionId: string | null; differs: string[] }[] = [];
    let sessions = 0;
    const readOptions = { vectorWindow: this.window, ...(this.options.signal ? { signal: this.options.signal } : {}) };
    for (const user of users) {
      this.checkAborted();
      if ((await digestUser(this.from, user.id)) !== (await digestUser(this.to, user.id))) found.push({ userId: user.id, sessionId: null, differs: ['profile, personas or notes'] });
      for await (const session of this.sessionsOf(this.from, user.id, false)) {
        this.checkAborted();
        const source = await digestSession(this.from, user.id, session.id, readOptions);
        const target = await digestSession(this.to, user.id, session.id, readOptions).catch((cause: unknown) => {
          if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND')) return null;
          throw cause;
        });
        const differs = target ? differences(source, target) : ['missing'];
        if (differs.length > 0) found.push({ userId: user.id, sessionId: session.id, differs });
        sessions++;
        this.sessionsDone++;
        this.progress('verify');
      }
    }
    if (found.length > 0) {
      const first = found[0] as (typeof found)[number];
      throw mismatch(`${found.length} ${found.length === 1 ? 'difference' : 'differences'} between source and target after copying, first: user ${first.userId}${first.sessionId ? ` session ${first.sessionId}` : ''} (${first.differs.join(', ')})`, {
        differences: found.slice(0, 100),
      });
    }
    return sessions;
  }
}

/** What `restoreSession` sets, from a session of either store. */
function restorable(session: SessionSummary): RestoredSession {
  const { id, title, titleSource, personaId, origin, createdAt, updatedAt, metadata, forkedFrom, forks, mergedFrom, participants, tags, trashedAt } = session;
  return { id, title, titleSource, personaId, origin, createdAt, updatedAt, metadata, forkedFrom, forks, mergedFrom, participants, tags, trashedAt };
}

/** A stored message as the append that makes the same message again (its id and time included). */
/** A trashed message as compared between stores: row numbers left out (not every backend keeps them), the rows by their bytes. */
function comparable({ lines, vectors, ...item }: TrashedMessageCopy): unknown {
  return { ...item, lines: lines.map(({ row: _row, ...line }) => line), vectors: Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength).toString('base64') };
}

export function toNewMessage(message: Message): NewMessage {
  const base = {
    id: message.id,
    content: message.parts ?? message.content,
    createdAt: message.createdAt,
    metadata: message.metadata,
    attachments: message.attachments,
    ...(message.name !== undefined ? { name: message.name } : {}),
    ...(message.personaId !== undefined ? { personaId: message.personaId } : {}),
  };
  switch (message.role) {
    case 'assistant':
      return { ...base, role: 'assistant', ...(message.toolCalls ? { tool_calls: message.toolCalls } : {}) };
    case 'tool':
      return { ...base, role: 'tool', ...(message.toolCallId !== undefined ? { toolCallId: message.toolCallId } : {}), ...(message.toolName !== undefined ? { toolName: message.toolName } : {}) };
    default:
      return { ...base, role: message.role };
  }
}

function orNull(code: MemexErrorCode): (cause: unknown) => null {
  return (cause) => {
    if (isMemexError(cause, code)) return null;
    throw cause;
  };
}

function conflict(message: string, details: Record<string, unknown>, cause?: unknown): MemexError {
  return new MemexError('MEMEX_MIGRATION_CONFLICT', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * A message that names a file its session no longer holds (deleteFile keeps the reference): the
 * flat-file store refuses to append such a message, so the copy cannot be exact. Named, not hidden.
 */
function danglingAttachment(cause: MemexError, userId: string, sessionId: string, batch: readonly NewMessage[]): MemexError {
  const fileId = cause.details.fileId;
  const message = batch.find((m) => (m.attachments ?? []).some((a) => a.fileId === fileId));
  return conflict(
    `message ${message?.id ?? '?'} of session ${sessionId} (user ${userId}) attaches file ${String(fileId)}, which the session no longer holds, and the target refuses a message whose attachment is missing; delete that message in the source (\`memex message delete\`) or add the file back to the session, then run the migration again`,
    { userId, sessionId, messageId: message?.id, fileId },
    cause,
  );
}

function mismatch(message: string, details: Record<string, unknown>): MemexError {
  return new MemexError('MEMEX_MIGRATION_MISMATCH', message, { details });
}

function round(seconds: number): number {
  return Math.round(seconds * 100) / 100;
}
