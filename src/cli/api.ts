import type {
  ChatInput,
  FileRecord,
  ImportRecord,
  Message,
  NewMessage,
  NewNote,
  NewPanel,
  PanelTurn,
  NewPersona,
  NewSession,
  NewUser,
  Note,
  PageOptions,
  Persona,
  Profile,
  SearchOptions,
  SessionSearchOptions,
  SessionSummary,
} from '../core/index.js';
import type { SessionSearchReport, TrashListing, TrashPurge } from '../memex.js';
import type { ContextOptions, ContextWindow } from '../context/index.js';
import type { ChatEvent } from '../chat/index.js';
import type { DoctorOptions, DoctorReport } from '../doctor.js';
import type { MaintainOptions, MaintenanceReport } from '../maintain.js';
import type { SearchReport } from '../index/index.js';
import type { IngestFileOptions, IngestResult, ReindexOptions, ReindexResult } from '../ingest/index.js';
import type { ImportOptions, ImportReport } from '../import/index.js';
import type { ArchiveResult, ExportFormat, ForkOptions, ForkResult, ListOptions, MergeOptions, MergeResult, MessagePage, SessionPage, TagCount } from '../store/index.js';

/** What the CLI reports of an ingested file: the library's result, less its per-phase timings (a server does not send them). */
export type IngestSummary = Omit<IngestResult, 'timings' | 'file'> & { file: FileRecord; timings?: IngestResult['timings'] };

/**
 * The slice of the library facade (`Memex`) the CLI uses. Every command is written once against it
 * and runs either on the library (the CLI opens the data dir itself) or over HTTP (`HttpMemex`,
 * when a `memex serve` owns the data dir). `Memex` satisfies it as it is.
 */
export interface MemexApi {
  users: {
    ensure(userId: string): Promise<Profile>;
    get(userId: string): Promise<Profile>;
    create(input: NewUser): Promise<Profile>;
    list(): Promise<Profile[]>;
    delete(userId: string): Promise<void>;
  };
  sessions: {
    create(userId: string, input?: NewSession): Promise<SessionSummary>;
    get(userId: string, sessionId: string): Promise<SessionSummary>;
    list(userId: string, options?: ListOptions): Promise<SessionPage>;
    rename(userId: string, sessionId: string, title: string): Promise<SessionSummary>;
    /** To the trash unless `purge`. */
    delete(userId: string, sessionId: string, options?: { purge?: boolean }): Promise<void>;
    restore(userId: string, sessionId: string): Promise<SessionSummary>;
    tag(userId: string, sessionId: string, tags: readonly string[]): Promise<SessionSummary>;
    untag(userId: string, sessionId: string, tags: readonly string[]): Promise<SessionSummary>;
    tags(userId: string): Promise<TagCount[]>;
    search(userId: string, query: string, options?: SessionSearchOptions): Promise<SessionSearchReport>;
    archive(userId: string, sessionId: string): Promise<ArchiveResult>;
    unarchive(userId: string, sessionId: string): Promise<ArchiveResult>;
    export(userId: string, sessionId: string, format: ExportFormat): AsyncIterable<string>;
    fork(userId: string, sessionId: string, messageId: string, options?: ForkOptions): Promise<ForkResult>;
    merge(userId: string, sessionIds: readonly string[], options?: MergeOptions): Promise<MergeResult>;
  };
  panels: {
    create(userId: string, panel: NewPanel): Promise<SessionSummary>;
    say(userId: string, sessionId: string, turn: PanelTurn): Promise<Message>;
    join(userId: string, sessionId: string, persona: string): Promise<SessionSummary>;
  };
  messages: {
    append(userId: string, sessionId: string, message: NewMessage): Promise<Message>;
    /** To the trash unless `purge`. */
    delete(userId: string, sessionId: string, messageId: string, options?: { purge?: boolean }): Promise<void>;
    restore(userId: string, sessionId: string, messageId: string): Promise<Message>;
    list(userId: string, sessionId: string, page?: PageOptions): Promise<MessagePage>;
  };
  personas: {
    create(userId: string, input: NewPersona): Promise<Persona>;
    list(userId: string): Promise<Persona[]>;
  };
  notes: {
    add(userId: string, note: NewNote): Promise<Note>;
    list(userId: string): Promise<Note[]>;
    delete(userId: string, noteId: string): Promise<void>;
  };
  files: {
    get(userId: string, sessionId: string, fileId: string): Promise<FileRecord>;
    list(userId: string, sessionId: string): Promise<FileRecord[]>;
    delete(userId: string, sessionId: string, fileId: string): Promise<void>;
  };
  /** Stores a file from this machine in a session and makes its text searchable. */
  ingestFile(userId: string, sessionId: string, source: { path: string }, options?: IngestFileOptions): Promise<IngestSummary>;
  search(userId: string, query: string, options?: SearchOptions): Promise<SearchReport>;
  buildContext(userId: string, options: ContextOptions): Promise<ContextWindow>;
  /** One chat turn with the configured model (over HTTP: the server's model), as its events. */
  chat(userId: string, input: ChatInput & { signal?: AbortSignal }): AsyncIterable<ChatEvent>;
  reindex(options?: ReindexOptions): Promise<ReindexResult>;
  doctor(options?: DoctorOptions): Promise<DoctorReport>;
  /** The retention policies of the config (over HTTP: the server's). */
  maintain(options?: Pick<MaintainOptions, 'dryRun' | 'userId'>): Promise<MaintenanceReport>;
  /** Loads the model (a server has it loaded already): a data dir of another model refuses before anything is stored. */
  embedder(): Promise<unknown>;
  index: { prepare(userId: string, options?: { onProgress?: (progress: { done: number; total: number }) => void }): Promise<unknown> };
  /** Chat-export imports (over HTTP: uploaded to the server, its job followed). */
  imports: {
    run(userId: string, paths: readonly string[], options?: ImportOptions): Promise<ImportReport>;
    list(userId: string): Promise<ImportRecord[]>;
    delete(userId: string, importId: string): Promise<ImportRecord>;
  };
  trash: {
    list(userId: string): Promise<TrashListing>;
    empty(userId: string): Promise<TrashPurge>;
  };
  /** Resolves when appended messages are embedded (a server embeds them in the background). */
  flush(): Promise<void>;
  close(): Promise<void>;
}
