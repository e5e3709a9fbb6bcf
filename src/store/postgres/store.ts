import type {
  TermAnalysis,
  EmbeddingModel,
  FileContent,
  FileRecord,
  Message,
  NewMessage,
  NewNote,
  NewPersona,
  NewSession,
  NewUser,
  ImportJob,
  ImportRecord,
  Note,
  NotePatch,
  PageOptions,
  Persona,
  PersonaPatch,
  Profile,
  ProfilePatch,
  SessionUpdate,
  SessionSummary,
  Summary,
  VectorLine,
} from '../../core/index.js';
import { parseId } from '../../core/index.js';
import { Durability } from '../durable.js';
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
  TagCount,
  TrashedMessage,
  TrashedMessageCopy,
  StoreRepair,
  StoreWarning,
  StoreLimits,
  VectorBatch,
  VectorStatus,
  ArchiveResult,
  ArchivedSessionContent,
} from '../store.js';
import { openDatabase, type ConnectOptions, type Database } from './connect.js';
import { PgContext } from './context.js';
import * as archive from './archive.js';
import * as files from './files.js';
import * as messages from './messages.js';
import type { HnswBuild } from './model.js';
import * as notes from './notes.js';
import * as imports from './imports.js';
import * as personas from './personas.js';
import * as sessions from './sessions.js';
import * as trashed from './trashed-messages.js';
import * as users from './users.js';
import * as vectors from './vectors.js';

export interface PostgresStoreOptions extends ConnectOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** The HNSW index pgvector builds when the model is recorded (index.m, index.efConstruction). */
  hnsw?: HnswBuild;
  limits?: Partial<StoreLimits>;
  /**
   * How chunk texts become BM25 terms (search.stopwords, search.stemming; both on by default),
   * recorded with the database's first chunks; once recorded, the recorded one is used.
   */
  lexical?: TermAnalysis;
  onWarning?: (warning: StoreWarning) => void;
}

/**
 * The Store on PostgreSQL with pgvector: the same contract as the flat files, for several stateless
 * service instances sharing one database. Every call is one transaction run as the caller's user
 * under row-level security (`PgContext.as`), so a query can only ever see that user's rows; it
 * caches nothing, because other instances write the same rows. The schema and its migrations are in
 * schema-v1.ts and migrations.ts; one module per concern, as in the flat-file store.
 */
export class PostgresStore implements Store {
  /** Uploads are staged on local disk only while they are hashed; their bytes go into the database. */
  private readonly staging = new Durability('none');

  private constructor(
    private readonly ctx: PgContext,
    readonly database: Database,
  ) {}

  /** Connects, migrates the schema to the newest version, and checks pgvector (coded errors for each). */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const database = await openDatabase(options.url, options);
    const limits = { maxMessageChars: 1_000_000, maxFileBytes: 100 * 1024 * 1024, ...options.limits };
    const warn = options.onWarning ?? ((warning: StoreWarning) => process.emitWarning(JSON.stringify(warning), { code: 'MEMEX' }));
    return new PostgresStore(new PgContext(database.pool, limits, options.hnsw ?? { m: 16, efConstruction: 200 }, warn, options.lexical), database);
  }

  async close(): Promise<void> {
    if (this.ctx.closed) return;
    this.ctx.closed = true;
    await this.database.close();
  }

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

  createSession(userId: string, input?: NewSession): Promise<SessionSummary> {
    return sessions.createSession(this.ctx, userId, input);
  }
  getSession(userId: string, sessionId: string): Promise<SessionSummary> {
    return sessions.getSession(this.ctx, userId, sessionId);
  }
  listSessions(userId: string, options?: ListOptions): Promise<SessionPage> {
    return sessions.listSessions(this.ctx, userId, options);
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
    return archive.readArchivedSession(this.ctx, userId, sessionId);
  }

  trashSession(userId: string, sessionId: string, options?: { at?: string }): Promise<SessionSummary> {
    return sessions.trashSession(this.ctx, userId, sessionId, options);
  }

  untrashSession(userId: string, sessionId: string): Promise<SessionSummary> {
    return sessions.untrashSession(this.ctx, userId, sessionId);
  }

  listTags(userId: string): Promise<TagCount[]> {
    return sessions.listTags(this.ctx, userId);
  }

  appendMessages(userId: string, sessionId: string, input: readonly NewMessage[], options?: AppendOptions): Promise<Message[]> {
    return messages.appendMessages(this.ctx, userId, sessionId, input, options);
  }
  listMessages(userId: string, sessionId: string, page?: PageOptions): Promise<MessagePage> {
    return messages.listMessages(this.ctx, userId, sessionId, page);
  }
  streamMessages(userId: string, sessionId: string, options?: { signal?: AbortSignal }): AsyncIterable<Message> {
    return messages.streamMessages(this.ctx, userId, sessionId, options);
  }
  messagesAround(userId: string, sessionId: string, messageIds: readonly string[], counts: { before: number; after: number }): Promise<Map<string, MessagesAround>> {
    return messages.messagesAround(this.ctx, userId, sessionId, messageIds, counts);
  }

  /** Null: other service instances change the messages too, and no cheap stamp tells this one. */
  messageLogStamp(): Promise<string | null> {
    return Promise.resolve(null);
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
    return personas.deletePersona(this.ctx, userId, personaId);
  }

  putFile(userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> {
    return files.putFile(this.ctx, this.staging, userId, sessionId, input);
  }
  getFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord> {
    return files.getFile(this.ctx, userId, sessionId, fileId);
  }
  listFiles(userId: string, sessionId: string): Promise<FileRecord[]> {
    return files.listFiles(this.ctx, userId, sessionId);
  }
  readFile(userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> {
    return files.readFile(this.ctx, userId, sessionId, fileId);
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
  sweepStaleUploads(): Promise<number> {
    this.ctx.assertOpen();
    return files.sweepStagedUploads();
  }
  deleteFile(userId: string, sessionId: string, fileId: string): Promise<void> {
    return files.deleteFile(this.ctx, userId, sessionId, fileId);
  }

  /**
   * Nothing to repair: every write is one transaction, so the database never holds half of one, and
   * its constraints refuse what the flat files' repair looks for (counts that disagree with the
   * messages, rows without a message). Checks that the user exists when one is named.
   */
  async repair(options: { userId?: string } = {}): Promise<StoreRepair[]> {
    if (options.userId !== undefined) await this.getUser(options.userId);
    return [];
  }

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

  /** The database indexes its rows itself (pgvector HNSW, GIN over tsvector): no folder. */
  async indexDir(userId: string): Promise<string | null> {
    await this.getUser(userId);
    return null;
  }

  /** Other instances change rows without telling this one, so every call is a new epoch. */
  vectorEpoch(userId: string): number {
    parseId('user', userId);
    return ++this.ctx.epoch;
  }

  getEmbeddingModel(): Promise<EmbeddingModel | null> {
    return vectors.getEmbeddingModel(this.ctx);
  }
  setEmbeddingModel(model: EmbeddingModel, options?: { replace?: boolean }): Promise<void> {
    return vectors.setEmbeddingModel(this.ctx, model, options);
  }
  vectorStatus(userId: string, sessionId: string): Promise<VectorStatus> {
    return vectors.vectorStatus(this.ctx, userId, sessionId);
  }
  unembeddedMessages(userId: string, sessionId: string, options?: { limit?: number; after?: string }): Promise<Message[]> {
    return vectors.unembeddedMessages(this.ctx, userId, sessionId, options);
  }
  appendVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
    return vectors.appendVectors(this.ctx, userId, sessionId, batch);
  }
  replaceVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
    return vectors.replaceVectors(this.ctx, userId, sessionId, batch);
  }
  readVectors(userId: string, sessionId: string, options?: { from?: number; limit?: number }): Promise<SessionVectorData> {
    return vectors.readVectors(this.ctx, userId, sessionId, options);
  }
  readMessageVectors(userId: string, sessionId: string, messageIds: readonly string[]): Promise<Omit<SessionVectorData, 'from'>> {
    return vectors.readMessageVectors(this.ctx, userId, sessionId, messageIds);
  }
  readVectorLines(userId: string, sessionId: string, rows: readonly number[]): Promise<VectorLine[]> {
    return vectors.readVectorLines(this.ctx, userId, sessionId, rows);
  }
}
