import { join } from 'node:path';
import {
  type ImportRecord,
  HASHED_MODEL,
  MemexError,
  PersonaIdSchema,
  samePersonaName,
  isMemexError,
  loadConfig,
  parseInput,
  NewPanelSchema,
  PanelTurnSchema,
  type NewPanel,
  type PanelTurn,
  toMemexError,
  type MemexErrorCode,
  type Config,
  type ConfigInput,
  type FileRecord,
  type Message,
  type NewNote,
  type Note,
  type NotePatch,
  type Summary,
  type NewMessage,
  type NewPersona,
  type NewSession,
  type NewUser,
  type PageOptions,
  type Persona,
  type PersonaPatch,
  type Profile,
  type ProfilePatch,
  type SessionPatch,
  type SessionSummary,
  type SessionSearchOptions,
  SessionSearchOptionsSchema,
  type ChatInput,
} from './core/index.js';
import {
  exportSession,
  openStore,
  PostgresStore,
  openJobQueue,
  openKeyStore,
  type ApiKeyStore,
  type JobQueue,
  type ExportFormat,
  type ListOptions,
  type MessagePage,
  type PutFileInput,
  type PutFileResult,
  type SessionPage,
  type ArchiveResult,
  type Store,
  type StoreWarning,
  type FileArtifactName,
  type FileSource,
  type SessionVectorData,
  type VectorStatus,
  type AppendOptions,
  forkSession,
  mergeSessions,
  MergeOptionsSchema,
  type ForkOptions,
  type ForkResult,
  type MergeOptions,
  type MergeResult,
  type TagCount,
  type TrashedMessage,
} from './store/index.js';
import { describeEmbeddingWarning, loadEmbedder, type Embedder, type EmbeddingWarning } from './embedding/index.js';
import {
  JobRunner,
  MessageIndexer,
  TesseractOcr,
  ingestFile,
  reindex,
  repairFileRows,
  type IngestFileOptions,
  type IngestResult,
  type JobRunnerOptions,
  type OcrEngine,
  type ReindexOptions,
  type ReindexResult,
} from './ingest/index.js';
import { IMPORT_STALE_MS, ImportJobs, runImport, type ImportOptions, type ImportReport } from './import/index.js';
import { restoreBackup, writeBackup, type BackupOptions, type BackupWriter, type RestoreOptions, type RestoreResult } from './backup/index.js';
import { doctor, type DoctorFinding, type DoctorOptions, type DoctorReport } from './doctor.js';
import { maintain, type MaintainOptions, type MaintenanceReport } from './maintain.js';
import { PostgresSearch, Recall, type RecallSearchOptions, type Reranker, type IndexProgress, type IndexStatus, type IndexWarning, type SearchHit, type SearchReport } from './index/index.js';
import { describeWarning as describeStoreWarning } from './store/index.js';
import { ContextManager, ExtractiveSummarizer, modelSummarizer, withFallback, type ContextOptions, type ContextWindow, type Summarizer } from './context/index.js';
import { chatModelFromConfig, summarizeWith, type ChatModel } from './llm/index.js';
import { extractMemories, type Exchange, type ExtractResult } from './memory/index.js';
import { proxyComplete, proxyStream, type ProxyCompletion, type ProxyDeps, type ProxyOptions, type ProxyStream } from './proxy/index.js';
import { chatTurn, runTurn, type ChatDeps, type ChatEvent, type TurnSpec } from './chat/index.js';

/** Everything Memex reports instead of throwing: repairs, unreadable files, a model fallback. */
export type MemexWarning =
  | StoreWarning
  | EmbeddingWarning
  | IndexWarning
  | { kind: 'indexing-failed'; code: MemexErrorCode; message: string }
  | { kind: 'summary-fallback'; sessionId: string | null; code: MemexErrorCode; message: string }
  | { kind: 'summary-not-saved'; sessionId: string; code: MemexErrorCode; message: string }
  | { kind: 'memory-extraction-failed'; sessionId: string; code: MemexErrorCode; message: string };

/** One line saying what a warning means, for logs and the CLI. */
export function describeWarning(warning: MemexWarning): string {
  switch (warning.kind) {
    case 'embedding-fallback':
      return describeEmbeddingWarning(warning);
    case 'index-rebuilt':
      return `rebuilt the search index of user ${warning.userId} from the session files (${warning.reason}${warning.problem ? `: ${warning.problem}` : ''}); ${warning.rows} rows, nothing lost`;
    case 'indexing-failed':
      return `some messages were stored but not embedded (${warning.code}: ${warning.message}); they are embedded on the next append or by \`memex reindex\``;
    case 'summary-fallback':
      return `the chat model could not extend the summary of session ${warning.sessionId ?? '(unknown)'} (${warning.code}: ${warning.message}); its older turns were summarized extractively this time`;
    case 'summary-not-saved':
      return `the extended summary of session ${warning.sessionId} could not be saved (${warning.code}: ${warning.message}); the window was built, and the next one extends the summary again`;
    case 'memory-extraction-failed':
      return `the chat model could not extract memories from the last exchange of session ${warning.sessionId} (${warning.code}: ${warning.message}); the notes are unchanged`;
    default:
      return describeStoreWarning(warning);
  }
}

/** A session found by `sessions.search`: its best chunks, best first; `score` is the first's. */
export interface SessionMatch {
  session: SessionSummary;
  score: number;
  hits: SearchHit[];
}

export interface SessionSearchReport {
  sessions: SessionMatch[];
  mode: SearchReport['mode'];
  /** Chunks the filters let through. */
  matching: number;
}

/** The user's trash: sessions most recently trashed first, messages oldest trashed first. */
export interface TrashListing {
  sessions: SessionSummary[];
  messages: TrashedMessage[];
  retentionDays: number;
}

/** What a purge removed for good. */
export interface TrashPurge {
  sessions: string[];
  messages: { sessionId: string; messageId: string }[];
}

export interface MemexOptions {
  /** Shorthand for `config.dataDir`. */
  dataDir?: string;
  /** Settings that win over the config file and the environment. */
  config?: Partial<ConfigInput>;
  /** A config file to read instead of MEMEX_CONFIG / ./memex.config.json. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Repairs, unreadable files and a model fallback; defaults to process.emitWarning. */
  onWarning?: (warning: MemexWarning) => void;
  /** Use this embedder instead of loading the configured model (say, one shared by several data dirs). */
  embedder?: Embedder;
  /** Use this OCR engine instead of tesseract.js (say, one shared by several data dirs). */
  ocr?: OcrEngine;
  /**
   * How context windows summarize turns that fall out of them: the offline extractive summarizer
   * by default, or a caller's LLM through `modelSummarizer`.
   */
  summarizer?: Summarizer;
  /**
   * The chat model client to use instead of the one the `llm` config describes (say, with other
   * retry or timeout settings, or shared by several data dirs). See `chatModel()`.
   */
  chatModel?: ChatModel;
  /**
   * Open a data dir whose vectors came from another model than the configured one, so that
   * `reindex` can re-embed it. Everything else that needs vectors still refuses with MEMEX_MODEL_MISMATCH.
   */
  allowModelMismatch?: boolean;
  /**
   * Where API keys live. By default the store's kind decides: the data dir's api_keys.json, or the
   * database's table (shared by every service instance) on PostgreSQL.
   */
  keys?: ApiKeyStore;
  /**
   * Where ingest jobs are queued. By default the store's kind decides: the data dir's
   * ingest_jobs.jsonl, or the database's queue (shared by every service instance) on PostgreSQL.
   */
  jobQueue?: JobQueue;
  /**
   * Reorders the best candidates of every search and context window (`search.rerankCandidates` of
   * them) before the first `k` are kept: say, a cross-encoder the caller runs. None by default; a
   * search or window can pass its own, or `reranker: null` for none. See `Reranker`.
   */
  reranker?: Reranker;
}

/**
 * The library facade: one object per data dir, grouped the way callers think (users, sessions,
 * messages, personas, files). The HTTP server and the CLI are thin shells over this class.
 *
 * ```ts
 * const memex = await Memex.open({ dataDir: './memex-data' });
 * await memex.users.ensure('alice');
 * const session = await memex.sessions.create('alice', { title: 'Trip planning' });
 * await memex.messages.append('alice', session.id, { role: 'user', content: 'Book Lisbon for May' });
 * await memex.close();
 * ```
 */
export class Memex {
  private readonly indexer: MessageIndexer;
  private readonly recall: Recall;
  private readonly contexts: ContextManager;
  private embedderLoad: Promise<Embedder> | null = null;
  /** Users whose sessions were checked, since open, for messages a crash left without rows. */
  private readonly caughtUp = new Map<string, Promise<void>>();
  private ocrEngine: OcrEngine | null = null;
  /**
   * The API keys (the data dir's `api_keys.json`, or the database's table when the store is
   * PostgreSQL, unless `options.keys` names others), one instance: a server built on this Memex
   * checks keys with it, so a key revoked here (deleting a user) is refused at once.
   */
  readonly keys: ApiKeyStore;

  /**
   * Imports running in the background (what the HTTP service does with uploaded exports), kept in
   * the store so that any instance can report, follow and cancel them.
   */
  readonly importJobs: ImportJobs;

  private constructor(
    readonly config: Config,
    private readonly store: Store,
    private readonly options: MemexOptions,
    private readonly warn: (warning: MemexWarning) => void,
    /** Extra listeners for warnings, while `doctor` runs. */
    private readonly taps: Set<(warning: MemexWarning) => void>,
  ) {
    this.keys = options.keys ?? openKeyStore(store, config);
    this.importJobs = new ImportJobs({ store, run: (userId, paths, importOptions) => this.imports.run(userId, paths, importOptions) });
    // On PostgreSQL the database searches its own rows (pgvector HNSW + full-text); on flat files an
    // in-memory index per user, kept in the data dir.
    const backend = store instanceof PostgresStore ? new PostgresSearch({ pool: store.database.pool, config }) : undefined;
    this.recall = new Recall({ store, embedder: () => this.embedder(), config, onWarning: warn, ...(backend ? { backend } : {}), ...(options.reranker ? { reranker: options.reranker } : {}) });
    this.contexts = new ContextManager({
      store,
      config,
      summarizer: options.summarizer ?? new ExtractiveSummarizer(),
      embedder: () => this.embedder(),
      search: (userId, query, searchOptions) => this.recall.search(userId, query, searchOptions),
      onSaveFailed: (sessionId, cause) => {
        const error = toMemexError(cause);
        this.warn({ kind: 'summary-not-saved', sessionId, code: error.code, message: error.message });
      },
    });
    this.indexer = new MessageIndexer({
      store,
      embedder: () => this.embedder(),
      chunking: config.chunking,
      onIndexed: (userId, sessionId) => this.recall.noteIndexed(userId, sessionId),
    });
  }

  static async open(options: MemexOptions = {}): Promise<Memex> {
    const config = loadConfig({
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.configFile ? { file: options.configFile } : {}),
      overrides: { ...options.config, ...(options.dataDir ? { dataDir: options.dataDir } : {}) },
    });
    const report = options.onWarning ?? ((warning: MemexWarning) => process.emitWarning(describeWarning(warning), { code: 'MEMEX' }));
    const taps = new Set<(warning: MemexWarning) => void>();
    const warn = (warning: MemexWarning): void => {
      for (const tap of taps) tap(warning);
      report(warning);
    };
    // Made before the store opens: a `model` summarizer without a model fails here, holding nothing.
    const chatModel = options.chatModel ?? (config.llm.baseUrl === null ? undefined : chatModelFromConfig(config.llm));
    const summarizer = options.summarizer ?? configuredSummarizer(config, chatModel, warn);
    const store = await openStore(config, warn);
    // A model named in the config that differs from the recorded one is a mismatch known without
    // loading anything. (A data dir on the hashed fallback is checked once the model loads: when
    // the configured model is still unavailable, the fallback is used again and matches.)
    const recorded = await store.getEmbeddingModel();
    const configured = options.embedder?.modelId ?? config.embedding.model;
    const mayFallBack = options.embedder === undefined && configured !== HASHED_MODEL;
    if (recorded && recorded.model !== configured && !(recorded.model === HASHED_MODEL && mayFallBack) && !options.allowModelMismatch) {
      await store.close();
      throw mismatch(recorded.model, configured);
    }
    return new Memex(config, store, { ...options, summarizer, ...(chatModel ? { chatModel } : {}) }, warn, taps);
  }

  /**
   * Waits for appended messages to be embedded, then releases the data dir for other processes.
   * An embedding failure is reported as a warning here (the messages are kept and embedded on a
   * later run); call `flush()` first to get it as an error.
   */
  async close(): Promise<void> {
    await this.importJobs.stop();
    await Promise.all(this.extracting);
    await this.indexer.flush().catch((cause: unknown) => {
      const error = toMemexError(cause);
      this.warn({ kind: 'indexing-failed', code: error.code, message: error.message });
    });
    await this.contexts.saved();
    await this.recall.close();
    if (!this.options.ocr) await this.ocrEngine?.close();
    await this.store.close();
  }

  /**
   * The chat model client: `options.chatModel`, else the one the `llm` config describes. Nothing
   * is called until a caller uses it. MEMEX_LLM_NOT_CONFIGURED (its hint says how) when there is none.
   */
  chatModel(): ChatModel {
    if (!this.options.chatModel) throw new MemexError('MEMEX_LLM_NOT_CONFIGURED', 'no chat model is configured (llm.baseUrl is not set)');
    return this.options.chatModel;
  }

  /** Resolves when every appended message has its vector rows; rejects if embedding failed. */
  flush(): Promise<void> {
    return this.indexer.flush();
  }

  /**
   * The embedder, loaded on first use and shared: the configured model, the hashed fallback (with a
   * warning) when none loads and the data dir has no real model yet, checked against the model the
   * data dir records (recorded by the store with the first vectors).
   */
  embedder(): Promise<Embedder> {
    if (!this.embedderLoad) {
      const loading = this.loadEmbedder();
      this.embedderLoad = loading;
      // A failed load is retried next time (the model may have become available).
      loading.catch(() => {
        if (this.embedderLoad === loading) this.embedderLoad = null;
      });
    }
    return this.embedderLoad;
  }

  private async loadEmbedder(): Promise<Embedder> {
    const recorded = await this.store.getEmbeddingModel();
    const embedder =
      this.options.embedder ??
      (await loadEmbedder(this.config.embedding, {
        recorded,
        onWarning: (warning) => this.warn(warning),
      }));
    if (this.options.allowModelMismatch) return embedder;
    if (recorded && (recorded.model !== embedder.modelId || recorded.dimension !== embedder.dimension)) {
      throw mismatch(recorded.model, embedder.modelId);
    }
    // Not recorded here: the store records the model with the first vectors it is given.
    return embedder;
  }

  /**
   * Re-embeds stored messages with the configured model: after switching models (the data dir's
   * recorded model changes once every session is done), or to catch up on messages without rows.
   * Resumable: run it again after an interruption. Open with `allowModelMismatch` to switch models.
   */
  async reindex(options: ReindexOptions = {}): Promise<ReindexResult> {
    // `recorded` keeps a failed load from falling back to hashed vectors over a real model's rows.
    const recorded = await this.store.getEmbeddingModel();
    const embedder = this.options.embedder ?? (await loadEmbedder(this.config.embedding, { recorded, onWarning: (warning) => this.warn(warning) }));
    await this.indexer.flush().catch(() => undefined);
    const result = await reindex(this.store, embedder, this.config.chunking, join(this.config.dataDir, 'memex.reindex.jsonl'), options);
    this.embedderLoad = Promise.resolve(embedder);
    // Saved indexes name the old rows (or model): each is synced, or rebuilt, on its next use.
    await this.recall.close();
    return result;
  }

  /**
   * Stores a PDF or an image (a path, bytes or a stream; the type is read from the bytes) in a
   * session and makes its text searchable: the text layer of each PDF page, OCR for scanned pages
   * and images. The same bytes are stored, parsed and embedded once per session; a second call
   * returns the first result with `ingested: false`. Cancel with `signal`: no rows are kept.
   *
   * ```ts
   * const result = await memex.ingestFile('alice', session.id, { path: 'paper.pdf' }, { onProgress: console.log });
   * console.log(result.pages, result.chunks, result.warnings);
   * ```
   */
  /**
   * Starts running ingest jobs (what the HTTP service does with uploads): from the data dir's
   * journal, or the database's queue shared with every instance when the store is PostgreSQL, or
   * `options.jobQueue`. Stop the runner before closing the Memex.
   */
  async openJobRunner(options: JobRunnerOptions = {}): Promise<JobRunner> {
    const queue = this.options.jobQueue ?? (await openJobQueue(this.store, this.config));
    return new JobRunner(
      queue,
      {
        ingest: async (job, run) =>
          this.ingestFile(job.userId, job.sessionId, { stream: await this.files.read(job.userId, job.sessionId, job.fileId) }, {
            name: job.name,
            signal: run.signal,
            onProgress: run.onProgress,
            ...(run.password !== undefined ? { password: run.password } : {}),
          }),
        discard: (job) => this.files.delete(job.userId, job.sessionId, job.fileId),
      },
      options,
    );
  }

  async ingestFile(userId: string, sessionId: string, source: FileSource, options: IngestFileOptions = {}): Promise<IngestResult> {
    await this.writable(userId, sessionId);
    await this.notTrashed(userId, sessionId);
    return this.ingestInto(userId, sessionId, source, options);
  }

  /** Ingest without the read-only check: imports add documents to their own sessions. */
  private ingestInto(userId: string, sessionId: string, source: FileSource, options: IngestFileOptions): Promise<IngestResult> {
    return ingestFile(
      {
        store: this.store,
        embedder: () => this.embedder(),
        ocr: () => (this.ocrEngine ??= this.options.ocr ?? new TesseractOcr()),
        config: this.config,
        onIndexed: (user, session) => this.recall.noteIndexed(user, session),
      },
      userId,
      sessionId,
      source,
      options,
    );
  }

  /**
   * The chunks of all the user's sessions most relevant to `query`, best first: hybrid (vector and
   * lexical ranks fused) by default, narrowed by filters, optionally diversified (MMR) and weighted
   * to recent ones. Messages appended before the call are included. Only this user's chunks can appear.
   *
   * ```ts
   * const { hits } = await memex.search('alice', 'when is the Lisbon trip?', { k: 5 });
   * for (const hit of hits) console.log(hit.score.toFixed(3), hit.sessionId, hit.text);
   * ```
   */
  async search(userId: string, query: string, options: RecallSearchOptions = {}): Promise<SearchReport> {
    await this.settle(userId);
    return this.recall.search(userId, query, options);
  }

  /**
   * The messages to send to a model for the session's next turn, fitted to `budget` tokens (the
   * model's context length) with `reserve` kept for the reply: the system prompt and persona, the
   * user's notes, memories recalled from earlier conversations (for `query`, else the latest user
   * turn), a summary of turns that no longer fit, and as many recent turns as fit. The report says
   * what each part cost, what was left out and why, and where each memory came from.
   *
   * ```ts
   * const { messages, report } = await memex.buildContext('alice', { sessionId, budget: 8192 });
   * const reply = await openai.chat.completions.create({ model: 'gpt-4o', messages });
   * ```
   */
  async buildContext(userId: string, options: ContextOptions): Promise<ContextWindow> {
    await this.settle(userId);
    return this.contexts.build(userId, options);
  }

  /**
   * The memory proxy: an OpenAI Chat Completions request (as any OpenAI SDK sends it) answered
   * through Memex. Its new turns are stored in the session (created when none is given), the
   * model gets the session's context window instead of the client's messages, and the reply is
   * stored with its model and usage. `stream` passes the upstream's chunks on unchanged.
   */
  readonly proxy = {
    complete: async (userId: string, request: unknown, options: Partial<ProxyOptions> = {}): Promise<ProxyCompletion> => {
      const result = await proxyComplete(this.proxyDeps(), userId, request, { budget: this.config.llm.contextTokens, ...options });
      this.remember(userId, result.sessionId, result.turns, result.stored);
      return result;
    },
    stream: async (userId: string, request: unknown, options: Partial<ProxyOptions> = {}): Promise<ProxyStream> => {
      const result = await proxyStream(this.proxyDeps(), userId, request, { budget: this.config.llm.contextTokens, ...options });
      void result.stored.then((reply) => reply && this.remember(userId, result.sessionId, result.turns, reply));
      return result;
    },
  };

  /** Extraction runs after an exchange (with `memory.extract`), in the background: the reply never waits for it. */
  private readonly extracting = new Set<Promise<unknown>>();

  private remember(userId: string, sessionId: string, turns: readonly Message[], reply: Message): void {
    if (!this.config.memory.extract || reply.metadata.incomplete === true) return;
    const user = [...turns].reverse().find((turn) => turn.role === 'user');
    if (!user) return;
    const work = this.memory.extract(userId, { sessionId, user: { id: user.id, text: user.content }, assistant: { id: reply.id, text: reply.content } }).catch((cause: unknown) => {
      const error = toMemexError(cause);
      this.warn({ kind: 'memory-extraction-failed', sessionId, code: error.code, message: error.message });
    });
    this.extracting.add(work);
    void work.finally(() => this.extracting.delete(work));
  }

  private proxyDeps(): ProxyDeps {
    return {
      model: () => this.chatModel(),
      getSession: (userId, sessionId) => this.sessions.get(userId, sessionId),
      createSession: (userId) => this.sessions.create(userId),
      append: async (userId, sessionId, messages) => {
        await this.writable(userId, sessionId);
        return this.store.appendMessages(userId, sessionId, messages);
      },
      appendReply: async (userId, sessionId, message, options) => {
        const reply = await this.appendWith(userId, sessionId, message, options);
        // Shortly: a next request right after has its query embedded first (MessageIndexer.defer).
        this.indexer.defer(userId, sessionId);
        return reply;
      },
      warmQuery: (query) => this.recall.warm(query),
      settle: (userId, sessionId) => this.settleExcept(userId, sessionId),
      embed: (userId, sessionId) => this.indexer.schedule(userId, sessionId),
      buildContext: (userId, options) => this.contexts.build(userId, options),
    };
  }

  /** Memory the model keeps about a user (config `memory`). */
  readonly memory = {
    /**
     * Asks the configured model what to remember from an exchange and applies it to the user's
     * notes: adds, and updates that keep the earlier text in `metadata.memory.history`; never
     * deletes. MEMEX_LLM_NOT_CONFIGURED without a model. Chat runs it after each exchange when
     * `memory.extract` is on.
     */
    extract: async (userId: string, exchange: Exchange, options: { signal?: AbortSignal } = {}): Promise<ExtractResult> =>
      extractMemories(
        {
          model: this.chatModel(),
          listNotes: (user) => this.store.listNotes(user),
          addNote: (user, note) => this.store.addNote(user, note),
          updateNote: (user, noteId, patch) => this.store.updateNote(user, noteId, patch),
        },
        userId,
        exchange,
        options,
      ),
  };

  /**
   * One retrieval-augmented chat turn with the configured model (`llm`): the user's `text` is
   * stored in `sessionId` (a new session when absent), the window is built for it (`budget`, default
   * `llm.contextTokens`) with memories recalled from all the user's sessions, and the reply streams
   * back and is stored with its model, token usage and timings (the session keeps usage totals in
   * `metadata.usage`). Events: `session`, `context`, `delta`..., then `done` or a coded `error`.
   * Refusals before anything is stored (MEMEX_LLM_NOT_CONFIGURED, MEMEX_SESSION_NOT_FOUND,
   * MEMEX_SESSION_READ_ONLY, bad input) are thrown by the first `next()`. Aborting `signal`, or
   * leaving the loop, cancels the model call; the partial reply is stored marked incomplete.
   *
   * ```ts
   * for await (const event of memex.chat('alice', { text: 'Where did we say we would stay in Lisbon?' })) {
   *   if (event.type === 'delta') process.stdout.write(event.text);
   *   if (event.type === 'done') console.log('\n', event.usage, event.session.id);
   * }
   * ```
   */
  chat(userId: string, input: ChatInput & { signal?: AbortSignal }): AsyncIterable<ChatEvent> {
    const { signal, ...turn } = input;
    return this.remembering(userId, chatTurn(this.chatDeps(), userId, turn, signal ? { signal } : {}));
  }

  /** Passes a turn's events on, and starts memory extraction (`memory.extract`) once it is done. */
  private async *remembering(userId: string, events: AsyncIterable<ChatEvent>): AsyncGenerator<ChatEvent> {
    let user: Message | null = null;
    for await (const event of events) {
      if (event.type === 'session') user = event.userMessage;
      if (event.type === 'done' && user) this.remember(userId, event.session.id, [user], event.message);
      yield event;
    }
  }

  /**
   * The turn `chat` runs, for a caller with its own wire format (the OpenAI-compatible memory
   * proxy): the user's message as stored (content parts), the upstream request made from the
   * window (tools, sampling settings), and each raw chunk as it arrives. Same events and guarantees.
   */
  runTurn(userId: string, spec: TurnSpec): AsyncIterable<ChatEvent> {
    return this.remembering(userId, runTurn(this.chatDeps(), userId, spec));
  }

  private chatDeps(): ChatDeps {
    return {
      model: () => this.chatModel(),
      settings: { contextTokens: this.config.llm.contextTokens, titles: this.config.llm.titles },
      getSession: (user, sessionId) => this.store.getSession(user, sessionId),
      createSession: (user, session) => this.sessions.create(user, session),
      requirePersona: async (user, personaId) => void (await this.store.getPersona(user, personaId)),
      append: (user, sessionId, message, options) => this.appendWith(user, sessionId, message, options),
      embed: (user, sessionId, later) => (later ? this.indexer.defer(user, sessionId) : this.indexer.schedule(user, sessionId)),
      warmQuery: (query) => this.recall.warm(query),
      settle: (user, sessionId) => this.settleExcept(user, sessionId),
      buildContext: (user, options) => this.contexts.build(user, options),
    };
  }

  /**
   * Before a chat turn's window: the user's earlier messages become searchable (catching up after a
   * restart), except those of `sessionId`, whose latest turns the window shows verbatim.
   */
  private async settleExcept(userId: string, sessionId: string): Promise<void> {
    await this.catchUp(userId);
    await this.indexer.settleUser(userId, sessionId);
  }

  /** `messages.append` with what a chat turn changes on the session in the same write; the caller queues the embedding. */
  private async appendWith(userId: string, sessionId: string, message: NewMessage, options?: AppendOptions): Promise<Message> {
    await this.writable(userId, sessionId);
    const [written] = await this.store.appendMessages(userId, sessionId, [message], options);
    return written as Message;
  }

  /** Long-term notes about a user (`context_history.json`) that windows include when they fit. */
  readonly notes = {
    add: (userId: string, note: NewNote): Promise<Note> => this.store.addNote(userId, note),
    list: (userId: string): Promise<Note[]> => this.store.listNotes(userId),
    update: (userId: string, noteId: string, patch: NotePatch): Promise<Note> => this.store.updateNote(userId, noteId, patch),
    delete: (userId: string, noteId: string): Promise<void> => this.store.deleteNote(userId, noteId),
  };

  /** Each session's rolling summary (`summary.json`), as context windows extend it. */
  readonly summaries = {
    get: async (userId: string, sessionId: string): Promise<Summary | null> => {
      await this.contexts.saved(userId, sessionId);
      return this.store.getSummary(userId, sessionId);
    },
    /** Forgets the summary; the next window summarizes the older turns again. */
    clear: async (userId: string, sessionId: string): Promise<void> => {
      await this.contexts.saved(userId, sessionId);
      await this.store.setSummary(userId, sessionId, null);
    },
  };

  /**
   * Checks the data dir and repairs what is derived: vector rows missing for stored messages, vector
   * files that disagree, and each user's search index. What needs a person is reported, not changed.
   * Open with `allowModelMismatch` to get a report (rather than an error) for a data dir of another model.
   */
  async doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
    await this.settle();
    const report = await doctor(
      {
        store: this.store,
        recall: this.recall,
        indexer: this.indexer,
        repairFiles: async (ref) => repairFileRows(this.store, await this.embedder(), this.config.chunking, ref),
        tap: async (listener, work) => {
          const severity = (warning: MemexWarning): DoctorFinding['severity'] =>
            warning.kind === 'indexing-failed' || warning.kind === 'unreadable' || warning.kind === 'corrupt-lines-skipped'
              ? 'problem'
              : warning.kind === 'embedding-fallback'
                ? 'note'
                : 'repaired';
          const tap = (warning: MemexWarning): void => listener({ severity: severity(warning), where: 'data dir', what: describeWarning(warning) });
          this.taps.add(tap);
          try {
            return await work();
          } finally {
            this.taps.delete(tap);
          }
        },
      },
      options,
    );
    // The API key file is the server's, but a bad one locks every client out: reported, never changed.
    await this.keys.check().catch((cause: unknown) => {
      const error = toMemexError(cause);
      report.findings.push({ severity: 'problem', where: 'data dir', what: `${error.code}: ${error.message}; ${error.hint}` });
      report.ok = false;
    });
    return report;
  }

  /**
   * Waits for appended messages to be embedded; a failure is a warning (search goes on with what
   * has rows). With a user, first queues (once per open) every session of theirs holding messages
   * a crash left without rows, so a search after a restart sees every acknowledged message.
   */
  private async settle(userId?: string): Promise<void> {
    if (userId !== undefined) await this.catchUp(userId);
    await this.indexer.flush(userId).catch((cause: unknown) => {
      const error = toMemexError(cause);
      this.warn({ kind: 'indexing-failed', code: error.code, message: error.message });
    });
  }

  private catchUp(userId: string): Promise<void> {
    let done = this.caughtUp.get(userId);
    if (!done) {
      done = this.queueUnembedded(userId).catch((cause: unknown) => {
        // Not remembered: the next call tries again (an unknown user is the caller's error, reported there).
        this.caughtUp.delete(userId);
        if (!isMemexError(cause, 'MEMEX_USER_NOT_FOUND') && !isMemexError(cause, 'MEMEX_INVALID_ID')) {
          const error = toMemexError(cause);
          this.warn({ kind: 'indexing-failed', code: error.code, message: error.message });
        }
      });
      this.caughtUp.set(userId, done);
    }
    return done;
  }

  private async queueUnembedded(userId: string): Promise<void> {
    for (let offset = 0; ; ) {
      const page = await this.store.listSessions(userId, { limit: 500, offset, archived: 'exclude', trashed: 'include' });
      for (const session of page.sessions) {
        // One unreadable session costs only itself: search goes on over the others.
        const pending = await this.store.unembeddedMessages(userId, session.id, { limit: 1 }).catch(() => []);
        if (pending.length > 0) this.indexer.schedule(userId, session.id);
      }
      offset += page.sessions.length;
      if (page.sessions.length === 0 || offset >= page.total) return;
    }
  }

  /** The per-user search index (a cache of the session files under `users/<id>/index/`). */
  readonly index = {
    /** Loads (or builds) and syncs the user's index now, instead of on the first search. */
    prepare: async (userId: string, options?: { onProgress?: (progress: IndexProgress) => void }): Promise<IndexStatus> => {
      await this.settle(userId);
      return this.recall.prepare(userId, options);
    },
    /** Builds the user's index again from the session files. */
    rebuild: async (userId: string, options?: { onProgress?: (progress: IndexProgress) => void }): Promise<IndexStatus> => {
      await this.settle(userId);
      return this.recall.rebuild(userId, options);
    },
  };

  readonly users = {
    create: (input: NewUser): Promise<Profile> => this.store.createUser(input),
    get: (userId: string): Promise<Profile> => this.store.getUser(userId),
    /** The user, created with defaults if missing: what a single-user app wants. */
    ensure: async (userId: string): Promise<Profile> => {
      try {
        return await this.store.getUser(userId);
      } catch (cause) {
        if (!isMemexError(cause, 'MEMEX_USER_NOT_FOUND')) throw cause;
        return this.store.createUser({ id: userId }).catch(async (inner: unknown) => {
          if (isMemexError(inner, 'MEMEX_USER_EXISTS')) return this.store.getUser(userId);
          throw inner;
        });
      }
    },
    list: (): Promise<Profile[]> => this.store.listUsers(),
    update: (userId: string, patch: ProfilePatch): Promise<Profile> => this.store.updateUser(userId, patch),
    /**
     * Deletes the user with everything they own, and revokes their API keys first: a key that
     * outlived its user would otherwise bring the user back, empty, on its next request.
     */
    delete: async (userId: string): Promise<void> => {
      // A missing user is a 404 before any key changes; an unreadable profile must not block the delete.
      await this.store.getUser(userId).catch((cause: unknown) => {
        if (isMemexError(cause, 'MEMEX_USER_NOT_FOUND') || isMemexError(cause, 'MEMEX_INVALID_ID')) throw cause;
      });
      await this.keys.revokeUser(userId);
      await this.store.deleteUser(userId);
      this.recall.forget(userId);
      this.caughtUp.delete(userId);
    },
  };

  /**
   * Imported chat exports (ChatGPT, Claude, Gemini, Memex session exports; JSON or the service's
   * ZIP): each conversation an imported session, read-only and apart from native ones, searchable;
   * importing again adds only what is new. One import per user at a time.
   */
  readonly imports = {
    run: (userId: string, paths: string | readonly string[], options?: ImportOptions): Promise<ImportReport> =>
      this.importTurn(userId, () =>
        runImport(
          {
            store: this.store,
            schedule: (user, session) => this.indexer.schedule(user, session),
            flush: () => this.indexer.flush(),
            ingest: (user, session, source, ingestOptions) => this.ingestInto(user, session, source, ingestOptions),
          },
          userId,
          typeof paths === 'string' ? [paths] : paths,
          options,
        ),
      ),
    /** The user's imports, oldest first; one whose process died while it ran is `interrupted`. */
    list: async (userId: string): Promise<ImportRecord[]> => {
      const stale = Date.now() - IMPORT_STALE_MS;
      return (await this.store.listImports(userId)).map((record) => (record.state === 'running' && Date.parse(record.finishedAt) < stale ? { ...record, state: 'interrupted' } : record));
    },
    /** Deletes what the import added or changed (its sessions and notes), then its record. */
    delete: (userId: string, importId: string): Promise<ImportRecord> =>
      this.importTurn(userId, async () => {
        const record = (await this.store.listImports(userId)).find((r) => r.id === importId);
        if (!record) throw new MemexError('MEMEX_IMPORT_NOT_FOUND', `user ${userId} has no import ${JSON.stringify(importId.slice(0, 40))}; see \`memex import list\``, { details: { importId } });
        const gone = (cause: unknown, code: MemexErrorCode): void => {
          if (!isMemexError(cause, code)) throw cause;
        };
        for (const sessionId of record.sessions) await this.store.deleteSession(userId, sessionId).catch((cause: unknown) => gone(cause, 'MEMEX_SESSION_NOT_FOUND'));
        for (const noteId of record.notes) await this.store.deleteNote(userId, noteId).catch((cause: unknown) => gone(cause, 'MEMEX_NOTE_NOT_FOUND'));
        await this.store.deleteImport(userId, importId);
        return record;
      }),
  };

  /**
   * Backups (`backup/`): one user's data or the whole store as one ZIP with a manifest of checksums
   * and counts, streamed as it is made; a restore verifies every entry before it writes anything,
   * into either backend, and refuses to replace a user's data unless told to (`replace`).
   */
  readonly backups = {
    write: (options?: BackupOptions): BackupWriter => writeBackup(this.store, options),
    restore: async (path: string, options?: RestoreOptions): Promise<RestoreResult> => {
      const result = await restoreBackup(this.store, path, options);
      // Messages the backup had no rows for yet are embedded like any others.
      for (const { userId, sessionId } of result.sessions) this.indexer.schedule(userId, sessionId);
      return result;
    },
  };

  private readonly importing = new Map<string, Promise<unknown>>();

  /** Runs `work` after the user's previous import or import delete has finished. */
  private importTurn<T>(userId: string, work: () => Promise<T>): Promise<T> {
    const previous = this.importing.get(userId) ?? Promise.resolve();
    const turn = previous.catch(() => undefined).then(work);
    const settled = turn.catch(() => undefined);
    this.importing.set(userId, settled);
    void settled.then(() => {
      if (this.importing.get(userId) === settled) this.importing.delete(userId);
    });
    return turn;
  }

  /** Whether each session seen is imported: a session's origin never changes, so one read each. */
  private readonly origins = new Map<string, boolean>();

  /** MEMEX_SESSION_READ_ONLY for an imported session: its messages, title and files are the export's. */
  private async writable(userId: string, sessionId: string): Promise<void> {
    const key = `${userId}\u0000${sessionId}`;
    let imported = this.origins.get(key);
    if (imported === undefined) {
      imported = (await this.store.getSession(userId, sessionId)).origin.kind === 'imported';
      if (this.origins.size >= 10_000) this.origins.clear();
      this.origins.set(key, imported);
    }
    if (imported) {
      throw new MemexError('MEMEX_SESSION_READ_ONLY', `session ${sessionId} is an imported conversation and cannot be changed; start a new session to go on from it`, { details: { sessionId } });
    }
  }

  /** MEMEX_SESSION_TRASHED for a session in the trash (messages are refused by the store itself). */
  private async notTrashed(userId: string, sessionId: string): Promise<void> {
    if ((await this.store.getSession(userId, sessionId)).trashedAt !== null) {
      throw new MemexError('MEMEX_SESSION_TRASHED', `session ${sessionId} is in the trash; restore it first`, { details: { sessionId } });
    }
  }

  /**
   * The trash: sessions and messages deleted without `purge`. They stay whole (messages, files,
   * vector rows, summary) and restorable (`sessions.restore`, `messages.restore`) for
   * `trash.retentionDays` (config, default 30), after which `purgeExpired` removes them; listing a
   * user's trash runs it for that user first.
   */
  readonly trash = {
    list: async (userId: string, options: { now?: Date } = {}): Promise<TrashListing> => {
      await this.trash.purgeExpired(userId, options);
      const sessions = await this.trashedSessions(userId);
      const messages = await this.store.listTrashedMessages(userId);
      return { sessions, messages, retentionDays: this.config.trash.retentionDays };
    },
    /** Deletes everything in the user's trash for good. */
    empty: async (userId: string): Promise<TrashPurge> => this.purgeTrash(userId, null),
    /**
     * Deletes what has been in the trash longer than `trash.retentionDays` at `now` (default the
     * clock): of one user, or of every user. What the retention job calls.
     */
    purgeExpired: async (userId?: string, options: { now?: Date | string } = {}): Promise<TrashPurge> => {
      const now = options.now === undefined ? Date.now() : new Date(options.now).getTime();
      if (!Number.isFinite(now)) throw new MemexError('MEMEX_INVALID_INPUT', `now must be a time, not ${String(options.now)}`);
      const cutoff = new Date(now - this.config.trash.retentionDays * 86_400_000).toISOString();
      const users = userId === undefined ? (await this.store.listUsers()).map((user) => user.id) : [userId];
      const total: TrashPurge = { sessions: [], messages: [] };
      for (const user of users) {
        const purged = await this.purgeTrash(user, cutoff);
        total.sessions.push(...purged.sessions);
        total.messages.push(...purged.messages);
      }
      return total;
    },
  };

  private async trashedSessions(userId: string): Promise<SessionSummary[]> {
    const sessions: SessionSummary[] = [];
    for (let cursor: string | null | undefined; cursor !== null; ) {
      const page = await this.store.listSessions(userId, { trashed: 'only', limit: 1000, ...(cursor ? { cursor } : {}) });
      sessions.push(...page.sessions);
      cursor = page.nextCursor;
    }
    return sessions.sort((a, b) => ((a.trashedAt ?? '') < (b.trashedAt ?? '') ? 1 : -1));
  }

  /** Deletes the user's trashed sessions and messages trashed before `cutoff` (all of them with null). */
  private async purgeTrash(userId: string, cutoff: string | null): Promise<TrashPurge> {
    const purged: TrashPurge = { sessions: [], messages: [] };
    const expired = (trashedAt: string | null): boolean => trashedAt !== null && (cutoff === null || trashedAt < cutoff);
    for (const session of await this.trashedSessions(userId)) {
      if (!expired(session.trashedAt)) continue;
      await this.store.deleteSession(userId, session.id).catch((cause: unknown) => gone(cause, 'MEMEX_SESSION_NOT_FOUND'));
      purged.sessions.push(session.id);
    }
    for (const item of await this.store.listTrashedMessages(userId)) {
      if (!expired(item.trashedAt) || purged.sessions.includes(item.sessionId)) continue;
      await this.store.purgeTrashedMessage(userId, item.sessionId, item.message.id).catch((cause: unknown) => gone(cause, 'MEMEX_NOT_IN_TRASH'));
      purged.messages.push({ sessionId: item.sessionId, messageId: item.message.id });
    }
    return purged;
  }

  readonly sessions = {
    /** A native session; imported ones come from `imports.run`. */
    create: async (userId: string, input?: NewSession): Promise<SessionSummary> => {
      if (input?.origin?.kind === 'imported') throw new MemexError('MEMEX_INVALID_INPUT', 'imported sessions are made by importing an export (`memex import`), not created');
      return this.store.createSession(userId, input);
    },
    get: (userId: string, sessionId: string): Promise<SessionSummary> => this.store.getSession(userId, sessionId),
    /** Native sessions unless `origin` asks for imported conversations (or `all`). */
    list: (userId: string, options?: ListOptions): Promise<SessionPage> => this.store.listSessions(userId, { origin: 'native', ...options }),
    rename: async (userId: string, sessionId: string, title: string): Promise<SessionSummary> => {
      await this.writable(userId, sessionId);
      return this.store.updateSession(userId, sessionId, { title });
    },
    update: async (userId: string, sessionId: string, patch: SessionPatch): Promise<SessionSummary> => {
      await this.writable(userId, sessionId);
      return this.store.updateSession(userId, sessionId, patch);
    },
    /**
     * Moves the session to the trash: out of listings, tag counts, search and context windows at
     * once, restorable unchanged (`restore`) until `trash.retentionDays` have passed and
     * `trash.purgeExpired` removes it. `purge` deletes it for good at once (one in the trash too).
     */
    delete: async (userId: string, sessionId: string, options: { purge?: boolean } = {}): Promise<void> => {
      if (options.purge) return this.store.deleteSession(userId, sessionId);
      await this.store.trashSession(userId, sessionId);
    },
    /** Takes the session out of the trash exactly as it was (its rows are searched again, not embedded again). */
    restore: async (userId: string, sessionId: string): Promise<SessionSummary> => {
      const session = await this.store.untrashSession(userId, sessionId);
      this.indexer.schedule(userId, sessionId);
      return session;
    },
    /** Adds tags (imported sessions too: tags are the user's, not the conversation's). */
    tag: (userId: string, sessionId: string, tags: readonly string[]): Promise<SessionSummary> => this.store.updateSession(userId, sessionId, { addTags: [...tags] }),
    untag: (userId: string, sessionId: string, tags: readonly string[]): Promise<SessionSummary> => this.store.updateSession(userId, sessionId, { removeTags: [...tags] }),
    /** The user's tags with how many sessions (outside the trash) carry each, most used first. */
    tags: (userId: string): Promise<TagCount[]> => this.store.listTags(userId),
    /**
     * The sessions best matching `query`: the chunk search (`search`, same filters) grouped by
     * session, ranked by each session's best chunk, with its best chunks as `hits`.
     */
    search: async (userId: string, query: string, options: SessionSearchOptions = {}): Promise<SessionSearchReport> => {
      const { limit, hits: perSession, ...chunkOptions } = parseInput(SessionSearchOptionsSchema, options, 'session search options');
      // Enough chunks that `limit` sessions are usually found even when one session holds many of the best.
      const report = await this.search(userId, query, { ...chunkOptions, k: Math.min(1000, limit * 20) });
      const grouped = new Map<string, SearchHit[]>();
      for (const hit of report.hits) {
        const group = grouped.get(hit.sessionId);
        if (group) {
          if (group.length < perSession) group.push(hit);
        } else if (grouped.size < limit) {
          grouped.set(hit.sessionId, [hit]);
        }
      }
      const sessions: SessionMatch[] = [];
      for (const [sessionId, hits] of grouped) {
        // A session deleted since the search ran is simply not reported.
        const session = await this.store.getSession(userId, sessionId).catch((cause: unknown) => gone(cause, 'MEMEX_SESSION_NOT_FOUND'));
        if (session && session.trashedAt === null) sessions.push({ session, score: (hits[0] as SearchHit).score, hits });
      }
      return { sessions, mode: report.mode, matching: report.matching };
    },
    /**
     * Compresses the session out of the hot data (README "Archive and retention"): still listed,
     * with `archivedAt`; out of search; its messages, files and context window answer
     * MEMEX_SESSION_ARCHIVED, and appending to it too, until it is unarchived. Idempotent.
     */
    archive: async (userId: string, sessionId: string, options?: { now?: Date }): Promise<ArchiveResult> => {
      // Rows still being embedded go into the archive with their messages.
      await this.indexer.flush(userId);
      return this.store.archiveSession(userId, sessionId, options);
    },
    /** Puts back exactly what was archived (messages, files, vector rows, summary; nothing re-embedded). */
    unarchive: (userId: string, sessionId: string): Promise<ArchiveResult> => this.store.unarchiveSession(userId, sessionId),
    /** The session as a JSON or Markdown document, in pieces. */
    export: (userId: string, sessionId: string, format: ExportFormat, options?: { signal?: AbortSignal }): AsyncIterable<string> =>
      exportSession(this.store, userId, sessionId, format, options),
    /**
     * A new session with the turns of `sessionId` up to and including `messageId`, their files and
     * their vector rows (copied, not embedded again), linked both ways (`forkedFrom`, `forks`).
     * Imported conversations can be forked: the fork is a native session. See `forkSession`.
     */
    fork: async (userId: string, sessionId: string, messageId: string, options?: ForkOptions): Promise<ForkResult> => {
      // The source's rows complete first, so the fork copies them rather than embedding again.
      await this.settle(userId);
      const result = await forkSession(this.store, userId, sessionId, messageId, options);
      await this.afterCopy(userId, result.session.id);
      return result;
    },
    /**
     * One new session with the messages of `sessionIds` (`mode` `time`: interleaved by time, the
     * default; `concat`: one after the other), their files and vector rows, each message naming its
     * sources in `metadata.mergedFrom` and the session in `mergedFrom`. The sources are kept unless
     * `deleteSources`. See `mergeSessions`.
     */
    merge: async (userId: string, sessionIds: readonly string[], options: MergeOptions = {}): Promise<MergeResult> => {
      const { deleteSources } = parseInput(MergeOptionsSchema, options, 'merge options');
      await this.settle(userId);
      const result = await mergeSessions(this.store, userId, sessionIds, options);
      await this.afterCopy(userId, result.session.id);
      if (deleteSources) for (const sessionId of sessionIds) await this.sessions.delete(userId, sessionId);
      return result;
    },
  };

  /** A fork's or merge's copied rows reach the search index now; anything the sources lacked rows for is embedded. */
  private async afterCopy(userId: string, sessionId: string): Promise<void> {
    await this.recall.noteIndexed(userId, sessionId).catch(() => undefined);
    this.indexer.schedule(userId, sessionId);
  }

  /**
   * Panels: one session, several personas (`participants`). Each persona's turn is an assistant
   * message naming it (`personaId`); the user's turns are ordinary user messages. A window built
   * for one participant (`buildContext(..., { participant })`) gives it its own instructions and
   * notes, and shows the others' turns labelled with their names.
   */
  readonly panels = {
    /** A new session with these personas (ids or names) as participants. */
    create: async (userId: string, panel: NewPanel): Promise<SessionSummary> => {
      const input = parseInput(NewPanelSchema, panel, 'panel');
      const participants = [];
      for (const persona of input.personas) participants.push((await this.personas.get(userId, persona)).id);
      return this.store.createSession(userId, { participants, ...(input.title !== undefined ? { title: input.title } : {}), ...(input.metadata ? { metadata: input.metadata } : {}) });
    },
    /** A participant's turn: an assistant message spoken by `persona` (id or name), which must be one of the session's participants. */
    say: async (userId: string, sessionId: string, turn: PanelTurn): Promise<Message> => {
      const input = parseInput(PanelTurnSchema, turn, 'panel turn');
      const session = await this.store.getSession(userId, sessionId);
      const persona = await this.personas.get(userId, input.persona);
      if (!session.participants.includes(persona.id)) {
        throw new MemexError('MEMEX_INVALID_INPUT', `persona ${persona.name} is not a participant of session ${sessionId}`, { details: { personaId: persona.id, participants: session.participants } });
      }
      return this.messages.append(userId, sessionId, { role: 'assistant', content: input.content, personaId: persona.id, ...(input.metadata ? { metadata: input.metadata } : {}) });
    },
    /** Adds a persona (id or name) to the session's participants. */
    join: async (userId: string, sessionId: string, persona: string): Promise<SessionSummary> => {
      const session = await this.store.getSession(userId, sessionId);
      const { id } = await this.personas.get(userId, persona);
      if (session.participants.includes(id)) return session;
      return this.sessions.update(userId, sessionId, { participants: [...session.participants, id] });
    },
  };

  /**
   * Applies the config's retention policies (`retention`) to every user, or to `userId`; with
   * `dryRun`, only reports what they would do. `memex serve` runs it every `retention.intervalMs`.
   */
  maintain(options: MaintainOptions = {}): Promise<MaintenanceReport> {
    return maintain(
      {
        retention: this.config.retention,
        listUsers: () => this.store.listUsers(),
        listSessions: (userId, page) => this.sessions.list(userId, page),
        listMessages: (userId, sessionId, page) => this.store.listMessages(userId, sessionId, page),
        archive: (userId, sessionId, now) => this.sessions.archive(userId, sessionId, { now }),
        trashSession: (userId, sessionId) => this.sessions.delete(userId, sessionId),
        trashMessage: (userId, sessionId, messageId) => this.messages.delete(userId, sessionId, messageId),
        purgeExpiredTrash: (userId, now) => this.trash.purgeExpired(userId, { now }),
      },
      options,
    );
  }

  readonly messages = {
    /** Resolves once the message is durable; it is embedded in the background (see `flush`). */
    append: async (userId: string, sessionId: string, message: NewMessage): Promise<Message> => {
      const [written] = await this.messages.appendMany(userId, sessionId, [message]);
      return written as Message;
    },
    /** All or nothing, in order; one batch embeds faster than the same messages one by one. */
    appendMany: async (userId: string, sessionId: string, messages: readonly NewMessage[]): Promise<Message[]> => {
      await this.writable(userId, sessionId);
      // A message's persona must exist (the stores keep the id as given).
      const speakers = new Set<string>();
      for (const message of Array.isArray(messages) ? (messages as readonly unknown[]) : []) {
        const personaId = typeof message === 'object' && message !== null ? (message as { personaId?: unknown }).personaId : undefined;
        if (typeof personaId === 'string') speakers.add(personaId);
      }
      for (const personaId of speakers) await this.store.getPersona(userId, personaId);
      const written = await this.store.appendMessages(userId, sessionId, messages);
      this.indexer.schedule(userId, sessionId);
      return written;
    },
    /**
     * Moves the message to the trash with its vector rows (out of the session, search and context
     * windows), restorable with `restore` until `trash.retentionDays` pass; `purge` removes it at once.
     */
    delete: async (userId: string, sessionId: string, messageId: string, options: { purge?: boolean } = {}): Promise<void> => {
      await this.writable(userId, sessionId);
      if (options.purge) return this.store.deleteMessage(userId, sessionId, messageId);
      await this.store.trashMessage(userId, sessionId, messageId);
    },
    /** Puts a trashed message back where it was, with its rows (not embedded again). */
    restore: async (userId: string, sessionId: string, messageId: string): Promise<Message> => {
      const message = await this.store.untrashMessage(userId, sessionId, messageId);
      // Rows the message had come back with it; one trashed before it was embedded is embedded now.
      this.indexer.restore(userId, sessionId, message.id);
      return message;
    },
    list: (userId: string, sessionId: string, page?: PageOptions): Promise<MessagePage> => this.store.listMessages(userId, sessionId, page),
    get: (userId: string, sessionId: string, messageId: string): Promise<Message> => this.store.getMessage(userId, sessionId, messageId),
    stream: (userId: string, sessionId: string, options?: { signal?: AbortSignal }): AsyncIterable<Message> =>
      this.store.streamMessages(userId, sessionId, options),
  };

  /** Each session's vector rows (vector_index.jsonl + embeddings.npy), as stored. */
  readonly vectors = {
    status: (userId: string, sessionId: string): Promise<VectorStatus> => this.store.vectorStatus(userId, sessionId),
    read: (userId: string, sessionId: string): Promise<SessionVectorData> => this.store.readVectors(userId, sessionId),
  };

  readonly personas = {
    create: (userId: string, input: NewPersona): Promise<Persona> => this.store.createPersona(userId, input),
    /** A persona by id, or else by name (ignoring case): what `--persona <id or name>` takes. */
    get: async (userId: string, idOrName: string): Promise<Persona> => {
      if (PersonaIdSchema.safeParse(idOrName).success) {
        try {
          return await this.store.getPersona(userId, idOrName);
        } catch (cause) {
          if (!isMemexError(cause, 'MEMEX_PERSONA_NOT_FOUND')) throw cause;
        }
      }
      const named = await this.personas.findByName(userId, idOrName);
      if (!named) throw new MemexError('MEMEX_PERSONA_NOT_FOUND', `user ${userId} has no persona with the id or name ${JSON.stringify(idOrName.slice(0, 200))}`);
      return named;
    },
    /** The user's persona with this name (ignoring case), or null. */
    findByName: async (userId: string, name: string): Promise<Persona | null> => {
      const matches = (await this.store.listPersonas(userId)).filter((persona) => samePersonaName(persona.name, name));
      if (matches.length > 1) {
        // Only data written before names were unique can hold two.
        throw new MemexError('MEMEX_INVALID_INPUT', `user ${userId} has ${matches.length} personas named ${JSON.stringify(name)}; pick one by id`, { details: { personaIds: matches.map((p) => p.id) } });
      }
      return matches[0] ?? null;
    },
    list: (userId: string): Promise<Persona[]> => this.store.listPersonas(userId),
    update: (userId: string, personaId: string, patch: PersonaPatch): Promise<Persona> => this.store.updatePersona(userId, personaId, patch),
    delete: (userId: string, personaId: string): Promise<void> => this.store.deletePersona(userId, personaId),
  };

  readonly files = {
    put: async (userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> => {
      await this.writable(userId, sessionId);
      await this.notTrashed(userId, sessionId);
      return this.store.putFile(userId, sessionId, input);
    },
    get: (userId: string, sessionId: string, fileId: string): Promise<FileRecord> => this.store.getFile(userId, sessionId, fileId),
    list: (userId: string, sessionId: string): Promise<FileRecord[]> => this.store.listFiles(userId, sessionId),
    read: (userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> => this.store.readFile(userId, sessionId, fileId),
    /** Stores and makes searchable; see `ingestFile`. */
    ingest: (userId: string, sessionId: string, source: FileSource, options?: IngestFileOptions): Promise<IngestResult> => this.ingestFile(userId, sessionId, source, options),
    /** What ingest derived from the file: `text.json` (its pages' text), `thumb.webp`, `display.webp` (images). */
    artifact: (userId: string, sessionId: string, fileId: string, name: FileArtifactName): Promise<Buffer> => this.store.readFileArtifact(userId, sessionId, fileId, name),
    /** Removes what uploads cut off by a crash or kill left behind (the server does it on start). */
    sweepStaleUploads: (): Promise<number> => this.store.sweepStaleUploads(),
    /** Removes the file, what was derived from it and its rows from search. */
    delete: async (userId: string, sessionId: string, fileId: string): Promise<void> => {
      await this.writable(userId, sessionId);
      return this.store.deleteFile(userId, sessionId, fileId);
    },
  };
}

function mismatch(recorded: string, configured: string): MemexError {
  return new MemexError('MEMEX_MODEL_MISMATCH', `this data dir's vectors were made with ${recorded}, but the configured model is ${configured}; run \`memex reindex\` to re-embed with ${configured}`, {
    details: { recorded, configured },
  });
}

/**
 * The summarizer `context.summarizer` names: the offline extractive one, or the configured chat
 * model (`llm`) with the extractive one as its fallback when a call fails (a warning says so).
 * MEMEX_LLM_NOT_CONFIGURED when `model` is asked for without an `llm.baseUrl` and `llm.model`.
 */
function configuredSummarizer(config: Config, chatModel: ChatModel | undefined, warn: (warning: MemexWarning) => void): Summarizer {
  const extractive = new ExtractiveSummarizer();
  if (config.context.summarizer === 'extractive') return extractive;
  const model = chatModel ?? chatModelFromConfig(config.llm);
  const name = model.model;
  if (name === null) throw new MemexError('MEMEX_LLM_NOT_CONFIGURED', 'context.summarizer "model" needs llm.model (or MEMEX_LLM_MODEL): the model to summarize with');
  return withFallback(modelSummarizer(name, (request) => summarizeWith(model, request)), extractive, (cause, sessionId) => {
    const error = toMemexError(cause, 'summarizing with the chat model failed');
    warn({ kind: 'summary-fallback', sessionId, code: error.code, message: error.message });
  });
}

/** Undefined for an error with `code` (something already gone), else rethrows. */
function gone(cause: unknown, code: MemexErrorCode): undefined {
  if (!isMemexError(cause, code)) throw cause;
  return undefined;
}
