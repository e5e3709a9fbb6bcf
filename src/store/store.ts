import type {
  Chunk,
  FileContent,
  FileRecord,
  EmbeddingModel,
  VectorLine,
  Message,
  MemexErrorCode,
  Metadata,
  NewMessage,
  NewNote,
  Note,
  NotePatch,
  Summary,
  NewPersona,
  NewSession,
  NewUser,
  PageOptions,
  Persona,
  PersonaPatch,
  ImportJob,
  ImportRecord,
  Profile,
  ProfilePatch,
  SessionUpdate,
  SessionListOptions,
  SessionSummary,
} from '../core/index.js';
import type { FileSource } from './files.js';

/** The limits a store checks on the way in (the config's `limits`, less what only the server uses). */
export interface StoreLimits {
  maxMessageChars: number;
  maxFileBytes: number;
}

/** How long an ended import job stays readable. */
export const IMPORT_JOB_KEEP_MS = 7 * 24 * 60 * 60 * 1000;

/** Files ingest derives from a stored file, kept beside it. */
export const FILE_ARTIFACTS = ['text.json', 'thumb.webp', 'display.webp'] as const;
export type FileArtifactName = (typeof FILE_ARTIFACTS)[number];

/** Rows to add: one vector per chunk, all from one model. */
export interface VectorBatch {
  model: string;
  chunks: readonly Chunk[];
  vectors: readonly Float32Array[];
}

export interface VectorStatus {
  rows: number;
  /** The model of the session's rows; null while it has none. */
  model: string | null;
  dimension: number | null;
  /**
   * The chunk id of the last row. With `rows` it tells a reader (the search index) whether the
   * session only grew since it looked: rows are appended, or all replaced at once.
   */
  tail: string | null;
}

export interface SessionVectorData extends VectorStatus {
  /** The row of `lines[0]`: reads may start part-way (`read({ from })`). */
  from: number;
  /** Rows `from` to `rows - 1` (fewer when the read had a `limit`). */
  lines: VectorLine[];
  /** Row-major, `(rows - from) * dimension` floats: `lines[i]`'s row is `vectors.subarray(i * dimension, (i + 1) * dimension)`. */
  vectors: Float32Array;
}

/** What opening found and fixed; the dropped rows are re-embedded from their source. */
export interface VectorRepair {
  path: string;
  rows: number;
  droppedLines: number;
  droppedRows: number;
  reason: string;
}

export interface SessionPage {
  /** In the order asked for: most recently active first (last message time, else creation time) by default. */
  sessions: SessionSummary[];
  /** Sessions that match (all of them without a title filter). */
  total: number;
  offset: number;
  limit: number;
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
  /** Sessions whose files cannot be read; listed here so one broken session never hides the rest. */
  unreadable: UnreadableSession[];
}

export interface UnreadableSession {
  sessionId: string;
  code: MemexErrorCode;
  message: string;
}

export interface MessagePage {
  /** Oldest first. */
  messages: Message[];
  total: number;
  offset: number;
  limit: number;
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
  /** Pass as `before` to get the page before this one; null on the first page. */
  prevCursor: string | null;
}

export interface PutFileInput {
  source: FileSource;
  /** The name the caller knows the file by; the type is sniffed from the bytes, not from this. */
  name?: string;
  metadata?: Metadata;
  /** When the file was first added; now by default. A restored copy (`memex migrate`) keeps the original's. */
  createdAt?: string;
}

/**
 * What `restoreSession` sets of a session: its id and the fields a caller chose or the session
 * was made with. Counts, `lastMessageAt` and the preview are not here: they follow its messages.
 */
/** What a chat turn changes on its session together with the append (one write, one transaction). */
export interface AppendOptions {
  /** A model reply's token usage, added to the session's running totals in `metadata.usage`. */
  usage?: { promptTokens: number; completionTokens: number };
  /** A title for a session its user has not named (it stays `auto`): the model's title of a new chat. */
  autoTitle?: string;
}

/** The session's running token totals, kept in `metadata.usage` by chat turns. */
export const USAGE_KEY = 'usage';

export type RestoredSession = Pick<SessionSummary, 'id' | 'title' | 'titleSource' | 'personaId' | 'origin' | 'createdAt' | 'updatedAt' | 'metadata'> &
  Partial<Pick<SessionSummary, 'forkedFrom' | 'forks' | 'mergedFrom' | 'participants' | 'tags' | 'trashedAt'>>;

/** A message in the trash: taken out of its session (and of search) with its rows, kept to be put back. */
export interface TrashedMessage {
  sessionId: string;
  message: Message;
  trashedAt: string;
}

/**
 * A trashed message with what restoring it needs, in one form both backends share (what backup and
 * migration carry): where it stood and its vector rows, so a copy untrashes it in place, not embedded again.
 */
export interface TrashedMessageCopy extends TrashedMessage {
  /** The message it followed when it was trashed (null: it was the first); untrash puts it back after it. */
  after: string | null;
  /** Its position then: where untrash puts it when `after` is no longer there. */
  index: number;
  /** The summary its removal dropped, given back by untrash when none was made since. */
  summary: Summary | null;
  /** The model of its rows; null when it has none. */
  model: string | null;
  /** Its rows' lines in row order; `vectors` holds their float32 rows, row-major. */
  lines: VectorLine[];
  vectors: Float32Array;
}

/** A tag and how many of the user's sessions (outside the trash) carry it. */
export interface TagCount {
  tag: string;
  sessions: number;
}

export interface PutFileResult {
  file: FileRecord;
  /** False when the same bytes were already in the session: they are stored once. */
  created: boolean;
}

/** Things the store fixed or could not read on its own, reported instead of thrown. */
export type StoreWarning =
  | { kind: 'torn-line-repaired'; path: string; bytes: number; kept: boolean; savedTo: string | null }
  | { kind: 'counts-reconciled'; path: string; messageCount: number }
  | { kind: 'session-index-rebuilt'; userId: string; reason: string }
  | { kind: 'unreadable'; path: string; code: MemexErrorCode; message: string }
  | ({ kind: 'vectors-reconciled' } & VectorRepair)
  | { kind: 'corrupt-lines-skipped'; path: string; sessionId: string; lines: number[]; reason: string };

/** What `Store.repair` fixed (`repaired`) or found it must leave to a person (`problem`). */
export interface StoreRepair {
  severity: 'repaired' | 'problem';
  /** A user id, or `<user>/<session>`. */
  where: string;
  what: string;
}

export type ListOptions = SessionListOptions;

/** The turns around one message (`messagesAround`), oldest first on each side. */
export interface MessagesAround {
  before: Message[];
  after: Message[];
}

/** What archiving or unarchiving a session did (README "Archive and retention"). */
export interface ArchiveResult {
  session: SessionSummary;
  /** The archived content before compression, and the archive's size, in bytes (0 when nothing changed). */
  rawBytes: number;
  archiveBytes: number;
  /** False when the session was already in the state asked for: archiving is idempotent. */
  archivedNow: boolean;
}

/** One file of an archived session: its record, bytes and the artifacts ingest derived from it. */
export interface ArchivedFile {
  record: FileRecord;
  bytes: Buffer;
  artifacts: Partial<Record<FileArtifactName, Buffer>>;
}

/**
 * An archived session's content decoded from its backend's archive into one form both backends
 * share (what backup and migration carry across backends). Held in memory whole: archives are of
 * old, finished sessions, and one is read at a time.
 */
export interface ArchivedSessionContent {
  /** As listed, `archivedAt` set. */
  session: SessionSummary;
  /** Oldest first. */
  messages: Message[];
  /** Every row from 0, as `readVectors` gives them on a live session. */
  vectors: SessionVectorData;
  /** In the order `listFiles` gives them. */
  files: ArchivedFile[];
  summary: Summary | null;
  /** Its message trash, as `readTrashedMessages` gives a live session's. */
  trashedMessages: TrashedMessageCopy[];
}

/**
 * Everything Memex keeps, behind one contract that each backend (flat files, Postgres) passes the
 * same conformance suite for. Ids arrive as plain strings and are validated here, before they reach
 * a path or a query; errors are MemexErrors with stable codes.
 */
export interface Store {
  close(): Promise<void>;

  createUser(input: NewUser): Promise<Profile>;
  getUser(userId: string): Promise<Profile>;
  listUsers(): Promise<Profile[]>;
  updateUser(userId: string, patch: ProfilePatch): Promise<Profile>;
  /** Deletes the user and everything under them. */
  deleteUser(userId: string): Promise<void>;

  createSession(userId: string, input?: NewSession): Promise<SessionSummary>;
  getSession(userId: string, sessionId: string): Promise<SessionSummary>;
  listSessions(userId: string, options?: ListOptions): Promise<SessionPage>;
  /** Rename (`title`), attach or detach a persona (`personaId`), replace `metadata` or a panel's `participants`, add and remove tags, record a fork (`addFork`). */
  updateSession(userId: string, sessionId: string, patch: SessionUpdate): Promise<SessionSummary>;
  /** Removes the session and everything in it for good (the facade's delete moves it to the trash first: `trashSession`). */
  deleteSession(userId: string, sessionId: string): Promise<void>;
  /**
   * Moves the session to the trash (`trashedAt`, `at` or now): it stays whole (messages, files,
   * rows, summary) but leaves listings (unless asked for), tag counts and search at once, and takes
   * no new messages or files (MEMEX_SESSION_TRASHED). Trashing a trashed session changes nothing.
   */
  trashSession(userId: string, sessionId: string, options?: { at?: string }): Promise<SessionSummary>;
  /** Takes the session out of the trash exactly as it was; MEMEX_NOT_IN_TRASH when it is not in it. */
  untrashSession(userId: string, sessionId: string): Promise<SessionSummary>;
  /** The user's tags on sessions outside the trash, with counts; most used first, then by name. */
  listTags(userId: string): Promise<TagCount[]>;
  /**
   * Compresses the session's messages, files, vector rows and summary out of the hot data: it stays
   * listed (`archivedAt` set) but leaves search, and reading or writing its content is
   * MEMEX_SESSION_ARCHIVED until `unarchiveSession` puts everything back exactly. All or nothing.
   */
  archiveSession(userId: string, sessionId: string, options?: { now?: Date }): Promise<ArchiveResult>;
  unarchiveSession(userId: string, sessionId: string): Promise<ArchiveResult>;
  /**
   * Reads an archived session's content out of its archive without unarchiving it or changing
   * anything stored; MEMEX_SESSION_NOT_ARCHIVED for a live session, MEMEX_SESSION_NOT_FOUND.
   */
  readArchivedSession(userId: string, sessionId: string): Promise<ArchivedSessionContent>;

  /** Appends in order, all or nothing; resolves once durable under the fsync policy. */
  appendMessages(userId: string, sessionId: string, messages: readonly NewMessage[], options?: AppendOptions): Promise<Message[]>;
  listMessages(userId: string, sessionId: string, page?: PageOptions): Promise<MessagePage>;
  /** The whole history, oldest first, read in chunks: for histories too long to hold in memory. */
  streamMessages(userId: string, sessionId: string, options?: { signal?: AbortSignal }): AsyncIterable<Message>;
  getMessage(userId: string, sessionId: string, messageId: string): Promise<Message>;
  /**
   * The turns just before and after each of `messageIds` in the session (up to `counts.before` and
   * `counts.after`, oldest first on each side), read at once: what `listMessages` with a `before`
   * and a `cursor` page per id gives, in one read of the session. Ids the session does not hold
   * (any more) are not in the map.
   */
  messagesAround(userId: string, sessionId: string, messageIds: readonly string[], counts: { before: number; after: number }): Promise<Map<string, MessagesAround>>;
  /**
   * A token that stays the same while the session's messages only grow at the end, and changes
   * when one is taken out or put back (so a reader may keep the messages it read and read on from
   * the end); null when the store cannot tell, and every reader reads afresh.
   */
  messageLogStamp(userId: string, sessionId: string): Promise<string | null>;

  createPersona(userId: string, input: NewPersona): Promise<Persona>;
  getPersona(userId: string, personaId: string): Promise<Persona>;
  listPersonas(userId: string): Promise<Persona[]>;
  updatePersona(userId: string, personaId: string, patch: PersonaPatch): Promise<Persona>;
  /** Sessions that used the persona keep their messages and lose the link. */
  deletePersona(userId: string, personaId: string): Promise<void>;

  // ---- restoring a copy (`memex migrate`, src/store/migrate.ts): records written exactly as given,
  // ids and times included, creating them or replacing what is there. Each is idempotent.

  /** Creates the user with exactly this profile, or replaces the profile of an existing one. */
  restoreUser(profile: Profile): Promise<Profile>;
  /** Creates or replaces the persona (`persona.userId` must be `userId`); MEMEX_PERSONA_EXISTS when another persona has its name. */
  restorePersona(userId: string, persona: Persona): Promise<Persona>;
  /** Creates or replaces the note, keeping its id and times. */
  restoreNote(userId: string, note: Note): Promise<Note>;
  /**
   * Creates the session with this id, or updates an existing one, setting exactly the fields of
   * `RestoredSession` (a whole SessionSummary may be passed; its counts are ignored). Appending
   * messages moves `updatedAt` on, so a copy restores the session again after its messages.
   */
  restoreSession(userId: string, session: RestoredSession): Promise<SessionSummary>;

  putFile(userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult>;
  getFile(userId: string, sessionId: string, fileId: string): Promise<FileRecord>;
  listFiles(userId: string, sessionId: string): Promise<FileRecord[]>;
  readFile(userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>>;
  /** Records what ingest learned from the file (null forgets it, so the next ingest reads it again). */
  setFileContent(userId: string, sessionId: string, fileId: string, content: FileContent | null): Promise<FileRecord>;
  /** Keeps a file derived from a stored one (its extracted text, a thumbnail); replaces it atomically. */
  writeFileArtifact(userId: string, sessionId: string, fileId: string, name: FileArtifactName, data: string | Uint8Array): Promise<void>;
  /** A derived file's bytes; MEMEX_FILE_NOT_FOUND when the file or that derivative is missing. */
  readFileArtifact(userId: string, sessionId: string, fileId: string, name: FileArtifactName): Promise<Buffer>;
  /** Removes temp files of uploads a crash or kill cut off (every session); resolves with how many. */
  sweepStaleUploads(): Promise<number>;
  /** Removes the file, what was derived from it and its vector rows; messages that named it keep the reference. */
  deleteFile(userId: string, sessionId: string, fileId: string): Promise<void>;

  /** Removes the message and its vector rows; the rest of the session is untouched. */
  deleteMessage(userId: string, sessionId: string, messageId: string): Promise<void>;
  /**
   * Moves the message to the session's trash: it leaves the session's messages, counts and search
   * (its rows go with it, kept beside it) and the summary is dropped as by `deleteMessage` (kept
   * with it too). MEMEX_MESSAGE_NOT_FOUND when the session does not hold it.
   */
  trashMessage(userId: string, sessionId: string, messageId: string, options?: { at?: string }): Promise<TrashedMessage>;
  /**
   * Puts a trashed message back where it was (after the message it followed, if that is still
   * there), with its rows, not embedded again; the summary it dropped comes back if none was made
   * since. MEMEX_NOT_IN_TRASH when the message is not in the session's trash.
   */
  untrashMessage(userId: string, sessionId: string, messageId: string): Promise<Message>;
  /** The user's trashed messages (of every session, trashed sessions included), oldest trashed first. */
  listTrashedMessages(userId: string): Promise<TrashedMessage[]>;
  /** Forgets a trashed message for good; MEMEX_NOT_IN_TRASH. */
  purgeTrashedMessage(userId: string, sessionId: string, messageId: string): Promise<void>;
  /** The session's trashed messages with their place and rows (what a copy carries), oldest trashed first. */
  readTrashedMessages(userId: string, sessionId: string): Promise<TrashedMessageCopy[]>;
  /**
   * Puts a copy's trashed message into this session's trash exactly (replacing one with its id), so
   * `untrashMessage` puts it back in its place with its rows. A copy writes the session's messages
   * first, then its trashed ones newest trashed first (each one's `after` is then in place).
   */
  restoreTrashedMessage(userId: string, sessionId: string, item: TrashedMessageCopy): Promise<void>;

  /**
   * Finds what reading skips or hides and repairs it, keeping a copy of anything it replaces: an
   * unreadable profile is replaced by a fresh one; a session whose meta is missing or unreadable
   * gets one rebuilt from its message log (the title, persona and metadata it held are lost);
   * lines of a log that are not messages are moved to a quarantine file beside it. What `memex
   * doctor` runs first. Only this user with `userId`, else every user.
   */
  repair(options?: { userId?: string }): Promise<StoreRepair[]>;

  // ---- context: a session's rolling summary and a user's long-term notes

  /** The session's rolling summary (`summary.json`); null when none is written or it cannot be read (it is rebuilt from the messages). */
  /** Keeps the record of an import (replacing one with the same id). */
  saveImport(userId: string, record: ImportRecord): Promise<void>;
  /** The user's import records, oldest first; an unreadable record is skipped with a warning. */
  listImports(userId: string): Promise<ImportRecord[]>;
  /** Forgets an import's record (its sessions and notes are the caller's to delete); MEMEX_IMPORT_NOT_FOUND. */
  deleteImport(userId: string, importId: string): Promise<void>;
  /**
   * Keeps an import job as it runs (replacing the saved one; a cancel asked for meanwhile is kept,
   * and returned, so the running instance hears it at its next save). Saving a new job forgets the
   * user's jobs that ended more than `IMPORT_JOB_KEEP_MS` ago.
   */
  saveImportJob(userId: string, job: ImportJob): Promise<{ cancelRequested: boolean }>;
  /** The user's import job; another user's is as missing as one that never was (MEMEX_JOB_NOT_FOUND). */
  getImportJob(userId: string, jobId: string): Promise<ImportJob>;
  /** Asks the instance running the job to stop it (`cancelRequested`); MEMEX_JOB_NOT_FOUND. */
  requestImportJobCancel(userId: string, jobId: string): Promise<void>;

  getSummary(userId: string, sessionId: string): Promise<Summary | null>;
  /** Replaces the session's summary atomically; null removes it. Deleting a message removes it too. */
  setSummary(userId: string, sessionId: string, summary: Summary | null): Promise<void>;
  /** The user's notes (`context_history.json`), oldest first. */
  listNotes(userId: string): Promise<Note[]>;
  addNote(userId: string, input: NewNote): Promise<Note>;
  updateNote(userId: string, noteId: string, patch: NotePatch): Promise<Note>;
  deleteNote(userId: string, noteId: string): Promise<void>;

  /**
   * A folder for the user's derived search index (DESIGN.md `users/<id>/index/`), or null where the
   * backend indexes rows itself. Deleting the user deletes it.
   */
  indexDir(userId: string): Promise<string | null>;
  /**
   * A number that changes whenever the user's vector rows change through this store (rows added or
   * rewritten, a session or the user deleted, a repair on open). An index synced at one value is
   * current while it stays the same. The flat-file store can promise that because one process owns
   * a data dir; a backend other processes write to must return a new value on every call.
   */
  vectorEpoch(userId: string): number;

  // ---- vectors: per session, the rows of its chunks (DESIGN.md: vector_index.jsonl + embeddings.npy)

  /** The model the data dir's vectors are made with (memex.json); null before the first is recorded. */
  getEmbeddingModel(): Promise<EmbeddingModel | null>;
  /** Records the model; changing a recorded one needs `replace` (what a finished reindex does). */
  setEmbeddingModel(model: EmbeddingModel, options?: { replace?: boolean }): Promise<void>;
  vectorStatus(userId: string, sessionId: string): Promise<VectorStatus>;
  /**
   * Messages that have no rows yet, oldest first: everything after the last embedded message.
   * Vectors follow the log, so this is what an indexer (or a restart after a crash) catches up on.
   * `after` skips up to a message already looked at (one with no text to embed gets no rows).
   */
  unembeddedMessages(userId: string, sessionId: string, options?: { limit?: number; after?: string }): Promise<Message[]>;
  /**
   * Adds rows after the existing ones. Chunks of messages that already have rows, or that are no
   * longer in the log, are skipped, so a retried or raced batch never duplicates or resurrects.
   */
  appendVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus>;
  /** Replaces all of a session's rows at once (reindex); atomic across both files. */
  replaceVectors(userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus>;
  /** Rows `from` (default 0) to the last, with their lines; at most `limit` rows when given (a reader that walks a long session in windows). */
  readVectors(userId: string, sessionId: string, options?: { from?: number; limit?: number }): Promise<SessionVectorData>;
  /** The rows of these messages with their lines, in row order (what a summarizer ranks sentences with). */
  readMessageVectors(userId: string, sessionId: string, messageIds: readonly string[]): Promise<Omit<SessionVectorData, 'from'>>;
  /** The lines of some rows, without their vectors (what a search result shows). */
  readVectorLines(userId: string, sessionId: string, rows: readonly number[]): Promise<VectorLine[]>;
}
