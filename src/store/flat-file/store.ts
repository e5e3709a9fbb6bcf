import { join } from 'node:path';
import { mkdir, readdir, rm } from 'node:fs/promises';
import {
  DataDirManifestSchema,
  FORMAT_VERSION,
  MemexError,
  toMemexError,
  type Config,
  type EmbeddingModel,
  type FileContent,
  type FileRecord,
  type Message,
  type NewMessage,
  type NewNote,
  type NewPersona,
  type NewSession,
  type NewUser,
  type ImportJob, type ImportRecord,
  type Note,
  type NotePatch,
  type PageOptions,
  type Persona,
  type PersonaPatch,
  type Profile,
  type ProfilePatch,
  type SessionUpdate,
  type SessionSummary,
  type Summary,
  type VectorLine,
} from '../../core/index.js';
import type { TagCount, TrashedMessage, TrashedMessageCopy } from '../store.js';
import { Durability, isNotFound, readJsonRecord, wrapIo } from '../durable.js';
import { DataDirLock } from '../lock.js';
import type {
  AppendOptions,
  FileArtifactName,
  ListOptions,
  MessagePage,
  MessagesAround,
  PutFileInput,
  PutFileResult,
  RestoredSession,
  SessionPage,
  SessionVectorData,
  Store,
  StoreRepair,
  StoreWarning,
  StoreLimits,
  VectorBatch,
  VectorStatus,
  ArchiveResult,
  ArchivedSessionContent,
} from '../store.js';
import { FlatFileContext, nowIso } from './context.js';
import * as archive from './archive.js';
import { readArchivedSession } from './archive-read.js';
import * as files from './files.js';
import * as imports from './imports.js';
import { Layout } from './layout.js';
import * as listing from './listing.js';
import * as messages from './messages.js';
import * as notes from './notes.js';
import * as personas from './personas.js';
import * as repair from './repair.js';
import * as sessions from './sessions.js';
import * as trashed from './trashed-messages.js';
import * as users from './users.js';
import * as vectors from './vectors.js';
import { defaultWarn } from './warnings.js';

export interface FlatFileStoreOptions {
  dataDir: string;
  fsync?: Config['fsync'];
  lockTimeoutMs?: number;
  limits?: Partial<StoreLimits>;
  /** Called for repairs and unreadable files; defaults to process.emitWarning. */
  onWarning?: (warning: StoreWarning) => void;
}

/**
 * The default backend: plain files under one data dir (DESIGN.md "Flat-file layout").
 *
 * Concurrency: one process owns the data dir (DataDirLock). Inside it, work on one session runs
 * one task at a time (KeyedMutex), so appends never interleave; different sessions run in parallel.
 * The store caches what it has read (profiles, session metas, line positions, the session listing);
 * the caches stay right because every write in the data dir goes through this instance.
 *
 * The work is done by one module per concern in this folder (users, sessions, listing, messages,
 * vectors, personas, notes, files, repair), each a set of functions over the shared FlatFileContext;
 * this class only opens the data dir and delegates.
 */
export class FlatFileStore implements Store {
  private constructor(private readonly ctx: FlatFileContext) {}

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
        // A data dir inside a project (./memex-data by default) must never be committed with it:
        // it holds users' conversations. Written once, when the dir is made; deleting it is the user's choice.
        await durability.writeAtomic(join(layout.root, '.gitignore'), "# Memex data: users' conversations, never committed.\n*\n");
        await durability.writeJsonAtomic(layout.manifest, manifest);
        await durability.syncDir(layout.root);
      }
      await durability.mkdirp(layout.users);
      await rm(layout.trash, { recursive: true, force: true });
      const warn = options.onWarning ?? defaultWarn;
      const limits = { maxMessageChars: 1_000_000, maxFileBytes: 100 * 1024 * 1024, ...options.limits };
      return new FlatFileStore(new FlatFileContext(layout, durability, lock, limits, warn, manifest));
    } catch (cause) {
      await lock.release();
      throw toMemexError(cause, `cannot open data dir ${layout.root}`);
    }
  }

  async close(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.closed) return;
    ctx.closed = true;
    await ctx.mutex.drain();
    // Appends still syncing and listing writes under way, then the listings' changes still waiting.
    await Promise.allSettled([...ctx.inFlight]);
    await listing.writeChangedListings(ctx);
    await ctx.lock.release();
  }

  get layout(): Layout {
    return this.ctx.layout;
  }

  // ---- users --------------------------------------------------------------------------------

  createUser(input: NewUser): Promise<Profile> {
    return users.createUser(this.ctx, input);
  }

  getUser(userId: string): Promise<Profile> {
    return users.getUser(this.ctx, userId);
  }

  listUsers(): Promise<Profile[]> {
    return users.listUsers(this.ctx);
  }

  restoreUser(profile: Profile): Promise<Profile> {
    return users.restoreUser(this.ctx, profile);
  }

  updateUser(userId: string, patch: ProfilePatch): Promise<Profile> {
    return users.updateUser(this.ctx, userId, patch);
  }

  deleteUser(userId: string): Promise<void> {
    return users.deleteUser(this.ctx, userId);
  }

  // ---- sessions -----------------------------------------------------------------------------

  createSession(userId: string, input: NewSession = {}): Promise<SessionSummary> {
    return sessions.createSession(this.ctx, userId, input);
  }

  getSession(userId: string, sessionId: string): Promise<SessionSummary> {
    return sessions.getSession(this.ctx, userId, sessionId);
  }

  listSessions(userId: string, options: ListOptions = {}): Promise<SessionPage> {
    return listing.listSessions(this.ctx, userId, options);
  }

  restoreSession(userId: string, session: RestoredSession): Promise<SessionSummary> {
    return sessions.restoreSession(this.ctx, userId, session);
  }

  updateSession(userId: string, sessionId: string, patch: SessionUpdate): Promise<SessionSummary> {
    return sessions.updateSession(this.ctx, userId, sessionId, patch);
  }

  deleteSession(userId: string, sessionId: string): Promise<void> {
    return sessions.deleteSession(this.ctx, userId, sessionId);
  }
  archiveSession(userId: string, sessionId: string, options?: { now?: Date }): Promise<ArchiveResult> {
    return archive.archiveSession(this.ctx, userId, sessionId, options);
  }
  unarchiveSession(userId: string, sessionId: string): Promise<ArchiveResult> {
    return archive.unarchiveSession(this.ctx, userId, sessionId);
  }
  readArchivedSession(userId: string, sessionId: string): Promise<ArchivedSessionContent> {
    return readArchivedSession(this.ctx, userId, sessionId);
  }

  trashSession(userId: string, sessionId: string, options?: { at?: string }): Promise<SessionSummary> {
    return sessions.trashSession(this.ctx, userId, sessionId, options);
  }

  untrashSession(userId: string, sessionId: string): Promise<SessionSummary> {
    return sessions.untrashSession(this.ctx, userId, sessionId);
  }

  listTags(userId: string): Promise<TagCount[]> {
    return listing.listTags(this.ctx, userId);
  }

  repair(options: { userId?: string } = {}): Promise<StoreRepair[]> {
    return repair.repair(this.ctx, options);
  }

  // ---- messages -----------------------------------------------------------------------------

  appendMessages(userId: string, sessionId: string, inputs: readonly NewMessage[], options?: AppendOptions): Promise<Message[]> {
    return messages.appendMessages(this.ctx, userId, sessionId, inputs, options);
  }

  listMessages(userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> {
    return messages.listMessages(this.ctx, userId, sessionId, page);
  }

  streamMessages(userId: string, sessionId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Message> {
    return messages.streamMessages(this.ctx, userId, sessionId, options);
  }

  messagesAround(userId: string, sessionId: string, messageIds: readonly string[], counts: { before: number; after: number }): Promise<Map<string, MessagesAround>> {
    return messages.messagesAround(this.ctx, userId, sessionId, messageIds, counts);
  }

  messageLogStamp(userId: string, sessionId: string): Promise<string | null> {
    return messages.messageLogStamp(this.ctx, userId, sessionId);
  }

  getMessage(userId: string, sessionId: string, messageId: string): Promise<Message> {
    return messages.getMessage(this.ctx, userId, sessionId, messageId);
  }

  deleteMessage(userId: string, sessionId: string, messageId: string): Promise<void> {
    return messages.deleteMessage(this.ctx, userId, sessionId, messageId);
  }

  trashMessage(userId: string, sessionId: string, messageId: string, options?: { at?: string }): Promise<TrashedMessage> {
    return trashed.trashMessage(this.ctx, userId, sessionId, messageId, options);
  }

  untrashMessage(userId: string, sessionId: string, messageId: string): Promise<Message> {
    return trashed.untrashMessage(this.ctx, userId, sessionId, messageId);
  }

  listTrashedMessages(userId: string): Promise<TrashedMessage[]> {
    return trashed.listTrashedMessages(this.ctx, userId);
  }

  purgeTrashedMessage(userId: string, sessionId: string, messageId: string): Promise<void> {
    return trashed.purgeTrashedMessage(this.ctx, userId, sessionId, messageId);
  }

  readTrashedMessages(userId: string, sessionId: string): Promise<TrashedMessageCopy[]> {
    return trashed.readTrashedMessages(this.ctx, userId, sessionId);
  }

  restoreTrashedMessage(userId: string, sessionId: string, item: TrashedMessageCopy): Promise<void> {
    return trashed.restoreTrashedMessage(this.ctx, userId, sessionId, item);
  }

  // ---- vectors ------------------------------------------------------------------------------

  getEmbeddingModel(): Promise<EmbeddingModel | null> {
    return vectors.getEmbeddingModel(this.ctx);
  }

  setEmbeddingModel(model: EmbeddingModel, options: { replace?: boolean } = {}): Promise<void> {
    return vectors.setEmbeddingModel(this.ctx, model, options);
  }

  vectorStatus(userId: string, sessionId: string): Promise<VectorStatus> {
    return vectors.vectorStatus(this.ctx, userId, sessionId);
  }

  unembeddedMessages(userId: string, sessionId: string, options: { limit?: number; after?: string } = {}): Promise<Message[]> {
    return vectors.unembeddedMessages(this.ctx, userId, sessionId, options);
  }

  appendVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
    return vectors.appendVectors(this.ctx, userId, sessionId, batch);
  }

  replaceVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
    return vectors.replaceVectors(this.ctx, userId, sessionId, batch);
  }

  vectorEpoch(userId: string): number {
    return vectors.vectorEpoch(this.ctx, userId);
  }

  indexDir(userId: string): Promise<string> {
    return vectors.indexDir(this.ctx, userId);
  }

  readVectors(userId: string, sessionId: string, options: { from?: number; limit?: number } = {}): Promise<SessionVectorData> {
    return vectors.readVectors(this.ctx, userId, sessionId, options);
  }

  readMessageVectors(userId: string, sessionId: string, messageIds: readonly string[]): Promise<Omit<SessionVectorData, 'from'>> {
    return vectors.readMessageVectors(this.ctx, userId, sessionId, messageIds);
  }

  readVectorLines(userId: string, sessionId: string, rows: readonly number[]): Promise<VectorLine[]> {
    return vectors.readVectorLines(this.ctx, userId, sessionId, rows);
  }

  // ---- personas -----------------------------------------------------------------------------

  createPersona(userId: string, input: NewPersona): Promise<Persona> {
    return personas.createPersona(this.ctx, userId, input);
  }

  getPersona(userId: string, personaId: string): Promise<Persona> {
    return personas.getPersona(this.ctx, userId, personaId);
  }

  listPersonas(userId: string): Promise<Persona[]> {
    return personas.listPersonas(this.ctx, userId);
  }

  restorePersona(userId: string, persona: Persona): Promise<Persona> {
    return personas.restorePersona(this.ctx, userId, persona);
  }

  updatePersona(userId: string, personaId: string, patch: PersonaPatch): Promise<Persona> {
    return personas.updatePersona(this.ctx, userId, personaId, patch);
  }

  deletePersona(userId: string, personaId: string): Promise<void> {
    return personas.deletePersona(this.ctx, userId, personaId, (uid, sid) => sessions.updateSession(this.ctx, uid, sid, { personaId: null }));
  }

  // ---- context: summaries and notes ----------------------------------------------------------

  getSummary(userId: string, sessionId: string): Promise<Summary | null> {
    return notes.getSummary(this.ctx, userId, sessionId);
  }

  setSummary(userId: string, sessionId: string, summary: Summary | null): Promise<void> {
    return notes.setSummary(this.ctx, userId, sessionId, summary);
  }

  listNotes(userId: string): Promise<Note[]> {
    return notes.listNotes(this.ctx, userId);
  }

  addNote(userId: string, input: NewNote): Promise<Note> {
    return notes.addNote(this.ctx, userId, input);
  }

  restoreNote(userId: string, note: Note): Promise<Note> {
    return notes.restoreNote(this.ctx, userId, note);
  }

  saveImportJob(userId: string, job: ImportJob): Promise<{ cancelRequested: boolean }> {
    return imports.saveImportJob(this.ctx, userId, job);
  }

  getImportJob(userId: string, jobId: string): Promise<ImportJob> {
    return imports.getImportJob(this.ctx, userId, jobId);
  }

  requestImportJobCancel(userId: string, jobId: string): Promise<void> {
    return imports.requestImportJobCancel(this.ctx, userId, jobId);
  }

  saveImport(userId: string, record: ImportRecord): Promise<void> {
    return imports.saveImport(this.ctx, userId, record);
  }

  listImports(userId: string): Promise<ImportRecord[]> {
    return imports.listImports(this.ctx, userId);
  }

  deleteImport(userId: string, importId: string): Promise<void> {
    return imports.deleteImport(this.ctx, userId, importId);
  }

  updateNote(userId: string, noteId: string, patch: NotePatch): Promise<Note> {
    return notes.updateNote(this.ctx, userId, noteId, patch);
  }

  deleteNote(userId: string, noteId: string): Promise<void> {
    return notes.deleteNote(this.ctx, userId, noteId);
  }

  // ---- files --------------------------------------------------------------------------------

  sweepStaleUploads(): Promise<number> {
    return files.sweepAllStaleUploads(this.ctx);
  }

  putFile(userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> {
    return files.putFile(this.ctx, userId, sessionId, input);
  }

  getFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord> {
    return files.getFile(this.ctx, userId, sessionId, fileId);
  }

  listFiles(userId: string, sessionId: string): Promise<FileRecord[]> {
    return files.listFiles(this.ctx, userId, sessionId);
  }

  readFile(userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> {
    return files.openFile(this.ctx, userId, sessionId, fileId);
  }

  setFileContent(userId: string, sessionId: string, fileId: string, content: FileContent | null): Promise<FileRecord> {
    return files.setFileContent(this.ctx, userId, sessionId, fileId, content);
  }

  writeFileArtifact(userId: string, sessionId: string, fileId: string, name: FileArtifactName, data: string | Uint8Array): Promise<void> {
    return files.writeFileArtifact(this.ctx, userId, sessionId, fileId, name, data);
  }

  readFileArtifact(userId: string, sessionId: string, fileId: string, name: FileArtifactName): Promise<Buffer> {
    return files.readFileArtifact(this.ctx, userId, sessionId, fileId, name);
  }

  deleteFile(userId: string, sessionId: string, fileId: string): Promise<void> {
    return files.deleteFile(this.ctx, userId, sessionId, fileId);
  }

  // ---- helpers ------------------------------------------------------------------------------
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
  const ours = ['memex.json', 'memex.lock', 'users', '.trash', '.gitignore', 'api_keys.json', 'api_keys.json.lock', 'ingest_jobs.jsonl'];
  const foreign = names.filter((n) => !ours.includes(n) && !n.startsWith('memex.'));
  if (!isMemex && foreign.length > 0) {
    throw new MemexError('MEMEX_DATA_DIR_INVALID', `${layout.root} is not empty and is not a Memex data dir (it holds ${foreign.slice(0, 3).join(', ')}…)`, {
      details: { dataDir: layout.root },
    });
  }
}
