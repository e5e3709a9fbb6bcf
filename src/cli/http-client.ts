import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  errorCodes,
  type ChatInput,
  MemexError,
  type FileRecord,
  type ImportRecord,
  type IngestWarning,
  type Message,
  type MemexErrorCode,
  type NewMessage,
  type NewNote,
  type NewPanel,
  type PanelTurn,
  type NewPersona,
  type NewSession,
  type NewUser,
  type Note,
  type PageOptions,
  type Persona,
  type Profile,
  type SearchOptions,
  type SessionSearchOptions,
  type SessionSummary,
} from '../core/index.js';
import type { SessionSearchReport, TrashListing, TrashPurge } from '../memex.js';
import type { ContextOptions, ContextWindow } from '../context/index.js';
import type { ChatEvent } from '../chat/index.js';
import { sseData } from '../llm/index.js';
import type { DoctorOptions, DoctorReport } from '../doctor.js';
import type { MaintainOptions, MaintenanceReport } from '../maintain.js';
import type { SearchReport } from '../index/index.js';
import type { IngestFileOptions, IngestProgress, ReindexOptions, ReindexResult } from '../ingest/index.js';
import type { ImportOptions, ImportProgress, ImportReport } from '../import/index.js';
import type { ArchiveResult, ExportFormat, ForkOptions, ForkResult, ListOptions, MergeOptions, MergeResult, MessagePage, SessionPage, TagCount } from '../store/index.js';
import { LOCAL_USER_HEADER, type ServerFile } from '../server/announce.js';
import type { IngestSummary, MemexApi } from './api.js';

/** The most a page of the HTTP API holds: whole lists are read in pages this large. */
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 50;
/** How often an ingest job is looked at while the CLI waits for it. */
const JOB_POLL_MS = 250;

interface ImportJob {
  id: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  finishedAt: string | null;
  progress: ImportProgress | null;
  report: unknown;
  error: { code: string; message: string } | null;
}

interface Job {
  id: string;
  fileId: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  finishedAt: string | null;
  progress: { phase: string; done: number; total: number } | null;
  result: { kind: string; ingested: boolean; pages: number; chunks: number; characters: number; warnings: IngestWarning[] } | null;
  error: { code: string; message: string; hint: string } | null;
}

interface Call {
  /** The user the request acts as (the local secret may act as any); default: the CLI's user. */
  user?: string;
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  form?: FormData;
  accept?: string;
  signal?: AbortSignal;
}

/**
 * The CLI's `MemexApi` over HTTP, for when a `memex serve` owns the data dir: every call goes to
 * that server with the local-admin secret from its server.json, acting as the named user. Errors
 * come back as the same coded MemexErrors the library throws (from the problem+json answers).
 */
export class HttpMemex implements MemexApi {
  constructor(
    private readonly server: Pick<ServerFile, 'url' | 'secret'>,
    /** The user admin calls name (the server needs one on every request). */
    private readonly actingUser: string,
  ) {}

  get url(): string {
    return this.server.url;
  }

  private async request(method: string, path: string, call: Call = {}): Promise<Response> {
    const url = new URL(`/v1${path}`, this.server.url);
    for (const [key, value] of Object.entries(call.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
    const headers: Record<string, string> = { authorization: `Bearer ${this.server.secret}`, [LOCAL_USER_HEADER]: call.user ?? this.actingUser };
    if (call.accept !== undefined) headers.accept = call.accept;
    let body: string | FormData | undefined;
    if (call.form) body = call.form;
    else if (call.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(call.body);
    }
    let response: Response;
    try {
      response = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}), ...(call.signal ? { signal: call.signal } : {}) });
    } catch (cause) {
      if (call.signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'cancelled', { cause });
      throw new MemexError('MEMEX_SHUTTING_DOWN', `the memex server at ${this.server.url} that owns this data dir stopped answering; run the command again`, { cause });
    }
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  /** The server's chat turn, its server-sent events read as they come; aborting `signal` closes the connection, which cancels the turn there. */
  chat(userId: string, input: ChatInput & { signal?: AbortSignal }): AsyncIterable<ChatEvent> {
    const { signal, ...body } = input;
    const request = (): Promise<Response> => this.request('POST', '/chat', { user: userId, body, accept: 'text/event-stream', ...(signal ? { signal } : {}) });
    return (async function* (): AsyncGenerator<ChatEvent> {
      const response = await request();
      if (!response.body) return;
      try {
        for await (const data of sseData(response.body)) yield JSON.parse(data) as ChatEvent;
      } catch (cause) {
        if (signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'cancelled', { cause });
        throw new MemexError('MEMEX_SHUTTING_DOWN', 'the memex server stopped answering in the middle of the reply; run the command again', { cause });
      }
    })();
  }

  /** Every item of a paged list route, following `nextCursor`. */
  private async all<T>(path: string, key: string, user?: string): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.call<Record<string, T[]> & { nextCursor: string | null }>('GET', path, { ...(user !== undefined ? { user } : {}), query: { limit: MAX_PAGE, cursor } });
      items.push(...(page[key] ?? []));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    return items;
  }

  private async call<T>(method: string, path: string, call: Call = {}): Promise<T> {
    const response = await this.request(method, path, call);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  readonly users = {
    ensure: (userId: string): Promise<Profile> => this.call('PUT', `/admin/users/${enc(userId)}`, { user: userId }),
    get: (userId: string): Promise<Profile> => this.call<Profile>('GET', '/me', { user: userId }),
    create: (input: NewUser): Promise<Profile> => this.call('POST', '/users', { body: input }),
    list: (): Promise<Profile[]> => this.all<Profile>('/users', 'users'),
    delete: (userId: string): Promise<void> => this.call('DELETE', `/users/${enc(userId)}`),
  };

  readonly sessions = {
    create: (userId: string, input?: NewSession): Promise<SessionSummary> => this.call('POST', '/sessions', { user: userId, body: input ?? {} }),
    get: (userId: string, sessionId: string): Promise<SessionSummary> => this.call('GET', `/sessions/${enc(sessionId)}`, { user: userId }),
    list: async (userId: string, options: ListOptions = {}): Promise<SessionPage> => {
      const { limit = 20, offset, cursor, title, origin, sort, order, tags, personaId, after, before, trashed, archived } = options;
      // The trash is listed by its own route.
      if (trashed !== undefined && trashed !== 'exclude') throw new MemexError('MEMEX_INVALID_INPUT', 'list the trash with trash.list over HTTP');
      const query = { limit, offset, cursor, title, origin, sort, order, tag: tags?.join(','), personaId, after, before, archived };
      const page: { sessions: SessionSummary[]; total: number; nextCursor: string | null } = await this.call('GET', '/sessions', { user: userId, query });
      // The server lists unreadable sessions only in its log; a page reached by cursor does not know its offset.
      return { ...page, offset: offset ?? (cursor === undefined ? 0 : -1), limit, unreadable: [] };
    },
    rename: (userId: string, sessionId: string, title: string): Promise<SessionSummary> => this.call('PATCH', `/sessions/${enc(sessionId)}`, { user: userId, body: { title } }),
    delete: (userId: string, sessionId: string, options: { purge?: boolean } = {}): Promise<void> =>
      this.call('DELETE', `/sessions/${enc(sessionId)}`, { user: userId, query: { purge: options.purge ? 'true' : undefined } }),
    restore: (userId: string, sessionId: string): Promise<SessionSummary> => this.call('POST', `/sessions/${enc(sessionId)}/restore`, { user: userId }),
    tag: async (userId: string, sessionId: string, tags: readonly string[]): Promise<SessionSummary> => {
      let session = await this.sessions.get(userId, sessionId);
      for (const tag of tags) session = await this.call('PUT', `/sessions/${enc(sessionId)}/tags/${enc(tag)}`, { user: userId });
      return session;
    },
    untag: async (userId: string, sessionId: string, tags: readonly string[]): Promise<SessionSummary> => {
      let session = await this.sessions.get(userId, sessionId);
      for (const tag of tags) session = await this.call('DELETE', `/sessions/${enc(sessionId)}/tags/${enc(tag)}`, { user: userId });
      return session;
    },
    tags: async (userId: string): Promise<TagCount[]> => (await this.call<{ tags: TagCount[] }>('GET', '/tags', { user: userId })).tags,
    search: (userId: string, query: string, options: SessionSearchOptions = {}): Promise<SessionSearchReport> =>
      this.call('POST', '/sessions/search', { user: userId, body: { ...options, query } }),
    archive: (userId: string, sessionId: string): Promise<ArchiveResult> => this.call('POST', `/sessions/${enc(sessionId)}/archive`, { user: userId }),
    unarchive: (userId: string, sessionId: string): Promise<ArchiveResult> => this.call('POST', `/sessions/${enc(sessionId)}/unarchive`, { user: userId }),
    export: (userId: string, sessionId: string, format: ExportFormat): AsyncIterable<string> => this.exportSession(userId, sessionId, format),
    fork: (userId: string, sessionId: string, messageId: string, options: ForkOptions = {}): Promise<ForkResult> =>
      this.call('POST', `/sessions/${enc(sessionId)}/fork`, { user: userId, body: { messageId, ...options } }),
    merge: (userId: string, sessionIds: readonly string[], options: MergeOptions = {}): Promise<MergeResult> =>
      this.call('POST', '/sessions/merge', { user: userId, body: { sessionIds, ...options } }),
  };

  readonly panels = {
    create: (userId: string, panel: NewPanel): Promise<SessionSummary> => this.call('POST', '/panels', { user: userId, body: panel }),
    say: (userId: string, sessionId: string, turn: PanelTurn): Promise<Message> => this.call('POST', `/panels/${enc(sessionId)}/turns`, { user: userId, body: turn }),
    join: (userId: string, sessionId: string, persona: string): Promise<SessionSummary> =>
      this.call('POST', `/panels/${enc(sessionId)}/participants`, { user: userId, body: { persona } }),
  };

  private async *exportSession(userId: string, sessionId: string, format: ExportFormat): AsyncGenerator<string> {
    const response = await this.request('GET', `/sessions/${enc(sessionId)}/export`, { user: userId, query: { format } });
    if (!response.body) return;
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) yield decoder.decode(chunk, { stream: true });
    const rest = decoder.decode();
    if (rest) yield rest;
  }

  readonly messages = {
    append: (userId: string, sessionId: string, message: NewMessage): Promise<Message> =>
      this.call('POST', `/sessions/${enc(sessionId)}/messages`, { user: userId, body: message }),
    delete: (userId: string, sessionId: string, messageId: string, options: { purge?: boolean } = {}): Promise<void> =>
      this.call('DELETE', `/sessions/${enc(sessionId)}/messages/${enc(messageId)}`, { user: userId, query: { purge: options.purge ? 'true' : undefined } }),
    restore: (userId: string, sessionId: string, messageId: string): Promise<Message> =>
      this.call('POST', `/sessions/${enc(sessionId)}/messages/${enc(messageId)}/restore`, { user: userId }),
    list: (userId: string, sessionId: string, page: PageOptions = {}): Promise<MessagePage> => this.listMessages(userId, sessionId, page),
  };

  private async listMessages(userId: string, sessionId: string, options: PageOptions): Promise<MessagePage> {
    const { limit = DEFAULT_PAGE, offset, cursor, before, latest } = options;
    const page: Omit<MessagePage, 'offset' | 'limit'> = await this.call('GET', `/sessions/${enc(sessionId)}/messages`, { user: userId, query: { limit, offset, cursor, before, latest } });
    // A cursor page does not know its offset; an offset page, the first page and the latest page do.
    const at = offset ?? (latest ? page.total - page.messages.length : cursor === undefined && before === undefined ? 0 : -1);
    return { ...page, offset: at, limit };
  }

  readonly trash = {
    list: (userId: string): Promise<TrashListing> => this.call('GET', '/trash', { user: userId }),
    empty: (userId: string): Promise<TrashPurge> => this.call('DELETE', '/trash', { user: userId }),
  };

  readonly personas = {
    create: (userId: string, input: NewPersona): Promise<Persona> => this.call('POST', '/personas', { user: userId, body: input }),
    list: (userId: string): Promise<Persona[]> => this.all<Persona>('/personas', 'personas', userId),
  };

  readonly notes = {
    add: (userId: string, note: NewNote): Promise<Note> => this.call('POST', '/notes', { user: userId, body: note }),
    list: (userId: string): Promise<Note[]> => this.all<Note>('/notes', 'notes', userId),
    delete: (userId: string, noteId: string): Promise<void> => this.call('DELETE', `/notes/${enc(noteId)}`, { user: userId }),
  };

  readonly files = {
    get: (userId: string, sessionId: string, fileId: string): Promise<FileRecord> => this.call('GET', `/sessions/${enc(sessionId)}/files/${enc(fileId)}`, { user: userId }),
    list: async (userId: string, sessionId: string): Promise<FileRecord[]> =>
      (await this.call<{ files: FileRecord[] }>('GET', `/sessions/${enc(sessionId)}/files`, { user: userId })).files,
    delete: (userId: string, sessionId: string, fileId: string): Promise<void> => this.call('DELETE', `/sessions/${enc(sessionId)}/files/${enc(fileId)}`, { user: userId }),
  };

  /** Uploads the file (streamed from disk), then follows its ingest job to the end. */
  async ingestFile(userId: string, sessionId: string, source: { path: string }, options: IngestFileOptions = {}): Promise<IngestSummary> {
    const name = options.name ?? basename(source.path);
    const form = new FormData();
    // Fields before the file part: the server reads them with it.
    form.append('name', name);
    if (options.password !== undefined) form.append('password', options.password);
    form.append('file', await openAsBlob(source.path), name);
    const uploaded = await this.call<{ job: Job }>('POST', `/sessions/${enc(sessionId)}/files`, { user: userId, form });
    let job = uploaded.job;
    while (job.finishedAt === null) {
      if (options.signal?.aborted) {
        await this.call('DELETE', `/jobs/${enc(job.id)}`, { user: userId }).catch(() => undefined);
        throw new MemexError('MEMEX_ABORTED', `ingesting ${name} was cancelled`);
      }
      if (job.progress) options.onProgress?.(job.progress as IngestProgress);
      await sleep(JOB_POLL_MS);
      job = await this.call<Job>('GET', `/jobs/${enc(job.id)}`, { user: userId });
    }
    if (job.state === 'cancelled') throw new MemexError('MEMEX_ABORTED', `ingesting ${name} was cancelled`);
    if (job.state !== 'done' || !job.result) {
      throw new MemexError(codeOf(job.error?.code), job.error?.message ?? `ingesting ${name} failed`);
    }
    const file = await this.files.get(userId, sessionId, job.fileId);
    return { ...job.result, kind: job.result.kind as IngestSummary['kind'], file };
  }

  /** Chat-export imports through the server: the files uploaded, the job polled to its end. */
  readonly imports = {
    run: async (userId: string, paths: readonly string[], options: ImportOptions = {}): Promise<ImportReport> => {
      const form = new FormData();
      // Fields before the file parts: the server reads them as they come.
      if (options.source) form.append('source', options.source);
      if (options.dryRun) form.append('dryRun', 'true');
      if (options.attachments) form.append('attachments', options.attachments);
      for (const path of paths) form.append('file', await openAsBlob(path), basename(path));
      let { job } = await this.call<{ job: ImportJob }>('POST', '/imports', { user: userId, form });
      while (job.finishedAt === null) {
        if (options.signal?.aborted) {
          await this.call('DELETE', `/imports/jobs/${enc(job.id)}`, { user: userId }).catch(() => undefined);
          throw new MemexError('MEMEX_ABORTED', 'the import was cancelled; what was imported so far is kept and listed');
        }
        if (job.progress) options.onProgress?.(job.progress);
        await sleep(JOB_POLL_MS);
        job = await this.call<ImportJob>('GET', `/imports/jobs/${enc(job.id)}`, { user: userId });
      }
      if (job.state !== 'done' || !job.report) throw new MemexError(codeOf(job.error?.code), job.error?.message ?? 'the import failed');
      return job.report as ImportReport;
    },
    list: async (userId: string): Promise<ImportRecord[]> => (await this.call<{ imports: ImportRecord[] }>('GET', '/imports', { user: userId })).imports,
    delete: (userId: string, importId: string): Promise<ImportRecord> => this.call('DELETE', `/imports/${enc(importId)}`, { user: userId }),
  };

  search(userId: string, query: string, options: SearchOptions = {}): Promise<SearchReport> {
    return this.call('POST', '/search', { user: userId, body: { ...options, query } });
  }

  buildContext(userId: string, options: ContextOptions): Promise<ContextWindow> {
    const { sessionId, signal: _signal, ...body } = options;
    return this.call('POST', `/sessions/${enc(sessionId)}/context`, { user: userId, body });
  }

  reindex(options: ReindexOptions = {}): Promise<ReindexResult> {
    return this.call('POST', '/admin/reindex', { body: { ...(options.userId ? { userId: options.userId } : {}), ...(options.force ? { force: true } : {}) } });
  }

  /** The server's retention policies; without `userId`, over the whole data dir (the local administrator's call). */
  maintain(options: Pick<MaintainOptions, 'dryRun' | 'userId'> = {}): Promise<MaintenanceReport> {
    return this.call('POST', '/maintain', { body: { ...(options.dryRun ? { dryRun: true } : {}), ...(options.userId !== undefined ? { userId: options.userId } : {}) } });
  }

  doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
    return this.call('POST', '/admin/doctor', { body: { ...(options.userId ? { userId: options.userId } : {}), ...(options.rebuildIndex ? { rebuildIndex: true } : {}) } });
  }

  // The server loaded its model when it started, embeds appends in the background and keeps the indexes.
  embedder(): Promise<unknown> {
    return Promise.resolve(null);
  }

  readonly index = { prepare: (): Promise<unknown> => Promise.resolve(null) };

  flush(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

function codeOf(code: string | undefined): MemexErrorCode {
  return code !== undefined && (errorCodes as readonly string[]).includes(code) ? (code as MemexErrorCode) : 'MEMEX_INTERNAL';
}

/** A problem+json answer as the MemexError the library would have thrown. */
async function problemOf(response: Response): Promise<MemexError> {
  const text = await response.text();
  let problem: { code?: string; detail?: string; details?: Record<string, unknown> } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch {
    // not JSON: the status says what we know
  }
  return new MemexError(codeOf(problem.code), problem.detail ?? `the server answered ${response.status}`, problem.details ? { details: problem.details } : {});
}
