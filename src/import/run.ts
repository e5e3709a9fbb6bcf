import { basename } from 'node:path';
import {
  FORMAT_VERSION,
  type AttachmentRef,
  type ConversationOutcome,
  type FileRecord,
  type ImportProgress,
  type ImportRecord,
  type ImportReport,
  type ImportSource,
  type Metadata,
  type NewMessage,
  type Note,
  type NoteId,
  type SessionId,
  type SessionSummary,
  MemexError,
  idProblem,
  importedSessionId,
  isMemexError,
  newImportId,
  toMemexError,
} from '../core/index.js';
import { createHash } from 'node:crypto';
import type { IngestFileOptions, IngestResult } from '../ingest/index.js';
import type { FileSource, Store } from '../store/index.js';
import { FORMAT_SOURCE, type ImportItem, type ImportedAttachment, type ImportedConversation, type ImportedDocument, type ImportedMessage, type ImportedNote } from './model.js';
import { PARSERS } from './parsers.js';
import { openExport, type ExportReader } from './read.js';
import type { ZipLimits } from './zip.js';

export type { ConversationOutcome, ImportProgress, ImportReport };

/** What the importer needs from the library around it. */
export interface ImportDeps {
  store: Store;
  /** Embeds a session's messages that have no vector rows yet, in the background (the facade's indexer). */
  schedule(userId: string, sessionId: string): void;
  /** Resolves when everything scheduled is embedded. */
  flush(): Promise<void>;
  /** Stores a document in a session and makes it searchable (the facade's ingestFile). */
  ingest(userId: string, sessionId: string, source: FileSource, options: IngestFileOptions): Promise<IngestResult>;
}

export interface ImportOptions {
  /** The service the files come from; detected from their content when absent. */
  source?: ImportSource | undefined;
  /** Reads and compares everything, writes nothing: what would be added, changed and skipped. */
  dryRun?: boolean | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: ImportProgress) => void) | undefined;
  limits?: Partial<ZipLimits> | undefined;
  /**
   * What to do with the attachments the export carries. `ingest` (default): make them searchable
   * like uploads (images OCRed, PDFs' text, text files; Claude's extracted text as a document).
   * `store`: keep the files as they came and link them, reading nothing (Claude's extracted text
   * stays in its message's metadata): OCR costs about a second or more per image, so an export
   * with thousands of images imports far faster this way.
   */
  attachments?: 'ingest' | 'store' | undefined;
}

/** How many skipped items a record lists by name; the rest are counted. */
const MAX_LISTED_SKIPS = 1000;
/** How often, at most, a running import saves its record as it goes. */
const RECORD_SAVE_MS = 2000;
/**
 * How often a running import saves its record even when nothing changed (while its vectors are
 * embedded): a running record older than `IMPORT_STALE_MS` belongs to a process that died.
 */
const RECORD_KEEPALIVE_MS = 30_000;
export const IMPORT_STALE_MS = 3 * RECORD_KEEPALIVE_MS;

/** Messages per append: a batch embeds faster than single messages, and a bad message costs only its batch a retry one by one. */
const APPEND_BATCH = 200;

/**
 * Imports chat exports for a user: ChatGPT, Claude, Gemini (Takeout) and Memex session exports, as
 * JSON or in the service's ZIP. Each conversation becomes an imported session (`<source>.<key>`,
 * read-only, apart from native ones), its visible thread as messages with the service's ids and
 * times, its other branches kept beside it (`branches.json`); Claude project documents are ingested
 * into a session per project and memories become notes. Importing again adds only what is new.
 *
 * Files are read twice: once to check that every document parses to the end (a truncated download
 * is refused before anything is written), then to write. Memory stays bounded by one conversation.
 */
export async function runImport(deps: ImportDeps, userId: string, paths: readonly string[], options: ImportOptions = {}): Promise<ImportReport> {
  if (paths.length === 0) throw new MemexError('MEMEX_INVALID_INPUT', 'name at least one export file');
  const { store } = deps;
  await store.getUser(userId);
  const readers: ExportReader[] = [];
  try {
    for (const path of paths) readers.push(await openExport(path, { source: options.source, limits: options.limits, signal: options.signal }));
    const scan = await scanExports(readers, options);
    const startedAt = new Date().toISOString();
    const id = newImportId();
    const changed = (): boolean => !options.dryRun && (importer.touched.size > 0 || importer.notes.size > 0);
    const record = (state: ImportRecord['state']): ImportRecord => ({
      v: FORMAT_VERSION,
      id,
      source: scan.source,
      files: readers.map((reader) => ({ name: basename(reader.path), sha256: reader.sha256, bytes: reader.size })),
      startedAt,
      finishedAt: new Date().toISOString(),
      state,
      account: importer.account,
      counts: importer.counts,
      sessions: [...importer.touched],
      notes: [...importer.notes],
      skipped: importer.skipped.slice(0, MAX_LISTED_SKIPS),
      skippedTotal: importer.skipped.length,
    });
    // The record is saved as the import writes, so a process that dies part-way leaves listed (and
    // deletable) what it wrote, up to the last few seconds; saves are queued, never concurrent.
    let saving: Promise<void> = Promise.resolve();
    let savedAt = 0;
    const save = (state: ImportRecord['state']): Promise<void> => {
      savedAt = Date.now();
      const snapshot = record(state);
      saving = saving.catch(() => undefined).then(() => store.saveImport(userId, snapshot));
      return saving;
    };
    const importer = new Importer(deps, userId, scan.source, readers, options, scan.total, async () => {
      if (changed() && Date.now() - savedAt >= RECORD_SAVE_MS) await save('running');
    });
    const keepAlive = setInterval(() => {
      if (changed()) save('running').catch(() => undefined);
    }, RECORD_KEEPALIVE_MS).unref();
    try {
      await importer.run();
    } catch (cause) {
      clearInterval(keepAlive);
      // Stopped part-way (cancelled, the disk, the database): what was written is listed, so it can be deleted.
      if (changed()) await save(isMemexError(cause, 'MEMEX_ABORTED') ? 'cancelled' : 'failed').catch(() => undefined);
      throw cause;
    }
    clearInterval(keepAlive);
    const done = record('done');
    if (changed()) await save('done');
    return { dryRun: options.dryRun === true, record: done, saved: changed(), conversations: importer.outcomes };
  } finally {
    await Promise.all(readers.map((reader) => reader.close().catch(() => undefined)));
  }
}

/** The first pass: every document parses to its end, all from one service; how many items there are. */
async function scanExports(readers: readonly ExportReader[], options: ImportOptions): Promise<{ source: ImportSource; total: number }> {
  const sources = new Set<ImportSource>();
  let total = 0;
  let messages = 0;
  for (const reader of readers) {
    for await (const document of reader.documents()) {
      sources.add(FORMAT_SOURCE[document.format]);
      for await (const item of PARSERS[document.format](document.values, { zipEntries: reader.zipEntries })) {
        if (item.kind === 'conversation' || item.kind === 'document' || item.kind === 'note') total++;
        if (item.kind === 'conversation') messages += item.messages.length;
        options.onProgress?.({ phase: 'scan', done: total, total: null, messages });
      }
    }
  }
  if (sources.size > 1) {
    throw new MemexError('MEMEX_INVALID_INPUT', `these files are exports of ${[...sources].join(' and ')}; import one service's export at a time`, { details: { sources: [...sources] } });
  }
  const [source] = sources;
  if (!source) throw new MemexError('MEMEX_IMPORT_FORMAT_UNKNOWN', 'no chat export found in these files');
  return { source, total };
}

class Importer {
  readonly counts: ImportRecord['counts'] = {
    conversations: { added: 0, updated: 0, unchanged: 0, skipped: 0 },
    messages: { added: 0, unchanged: 0 },
    documents: { added: 0, unchanged: 0 },
    notes: { added: 0, unchanged: 0 },
    attachments: { stored: 0, ingested: 0, missing: 0 },
  };
  readonly touched = new Set<SessionId>();
  readonly notes = new Set<NoteId>();
  readonly skipped: ImportRecord['skipped'] = [];
  readonly outcomes: ConversationOutcome[] = [];
  account: ImportRecord['account'] = null;
  private done = 0;
  private existingNotes: Map<string, Note> | null = null;
  private readonly dryRun: boolean;

  constructor(
    private readonly deps: ImportDeps,
    private readonly userId: string,
    private readonly source: ImportSource,
    private readonly readers: readonly ExportReader[],
    private readonly options: ImportOptions,
    private readonly total: number,
    /** Called after each item: the import saves its record now and then. */
    private readonly checkpoint: () => Promise<void>,
  ) {
    this.dryRun = options.dryRun === true;
  }

  async run(): Promise<void> {
    let failed = true;
    try {
      for (const reader of this.readers) {
        for await (const document of reader.documents()) {
          for await (const item of PARSERS[document.format](document.values, { zipEntries: reader.zipEntries })) {
            this.checkAborted();
            await this.take(item, reader);
            await this.checkpoint();
          }
        }
      }
      failed = false;
    } finally {
      // What was written is embedded even when the import stops part-way: it is searchable, and listed in the record.
      if (!this.dryRun && this.touched.size > 0) {
        for (const sessionId of this.touched) this.deps.schedule(this.userId, sessionId);
        this.progress('embed');
        // After a failure, that failure is the one to report.
        await this.deps.flush().catch((cause: unknown) => {
          if (!failed) throw cause;
        });
      }
    }
  }

  private async take(item: ImportItem, reader: ExportReader): Promise<void> {
    switch (item.kind) {
      case 'conversation':
        await this.conversation(item, reader);
        break;
      case 'document':
        await this.document(item);
        break;
      case 'note':
        await this.note(item);
        break;
      case 'account':
        this.account = { id: item.accountId.slice(0, 256), name: item.name?.slice(0, 256) ?? null };
        return;
      case 'skip':
        this.skip(item.item, item.reason, item.detail);
        if (item.reason !== 'feedback' && item.reason !== 'not-gemini') this.counts.conversations.skipped++;
        return;
    }
    this.done++;
    this.progress('store');
  }

  private async conversation(conversation: ImportedConversation, reader: ExportReader): Promise<void> {
    const { store } = this.deps;
    const sessionId = importedSessionId(this.source, conversation.conversationId);
    const existing = await this.session(sessionId);
    const title = cleanTitle(conversation.title);
    const known = existing ? await this.messageIds(sessionId) : new Set<string>();
    const wanted = this.messages(conversation);
    const fresh = wanted.filter((message) => !known.has(message.id));
    this.counts.messages.unchanged += wanted.length - fresh.length;
    const titleChanged = existing !== null && title !== null && existing.title !== title;
    const action: ConversationOutcome['action'] = existing === null ? 'added' : fresh.length > 0 || titleChanged ? 'updated' : 'unchanged';
    this.outcomes.push({ sessionId, title: title ?? existing?.title ?? null, action, newMessages: fresh.length, titleChanged });
    this.counts.conversations[action]++;
    if (this.dryRun) {
      this.counts.messages.added += fresh.length;
      return;
    }
    if (action === 'unchanged') return;
    const createdAt = conversation.createdAt ?? fresh[0]?.createdAt ?? new Date().toISOString();
    const hidden = clipHidden(conversation.metadata);
    const metadata = {
      ...(existing?.metadata ?? {}),
      import: { source: this.source, conversationId: conversation.conversationId, ...hidden.metadata },
    };
    if (existing === null || titleChanged) {
      await store.restoreSession(this.userId, {
        id: sessionId,
        title: title ?? existing?.title ?? null,
        titleSource: title !== null ? 'user' : (existing?.titleSource ?? null),
        personaId: null,
        origin: { kind: 'imported', source: this.source, conversationId: conversation.conversationId.slice(0, 256) },
        createdAt: existing?.createdAt ?? createdAt,
        updatedAt: conversation.updatedAt ?? createdAt,
        metadata,
      });
    }
    this.touched.add(sessionId);
    const withFiles = await this.attach(sessionId, fresh, conversation, reader);
    await this.append(sessionId, withFiles);
    if (conversation.branches.length > 0 || hidden.full) await this.keepBranches(sessionId, conversation, hidden.full);
  }

  /** The conversation's thread as messages to append: ids and times from the service, in order. */
  private messages(conversation: ImportedConversation): (NewMessage & { id: string; createdAt: string; source: ImportedMessage })[] {
    let previous = conversation.createdAt ?? conversation.updatedAt ?? new Date(0).toISOString();
    const seen = new Set<string>();
    const out: (NewMessage & { id: string; createdAt: string; source: ImportedMessage })[] = [];
    for (const message of conversation.messages) {
      const id = messageIdFor(message.sourceId);
      if (seen.has(id)) continue;
      seen.add(id);
      const createdAt = message.createdAt ?? previous;
      previous = createdAt;
      out.push({
        id,
        role: message.role,
        content: message.content,
        createdAt,
        metadata: { ...message.metadata, import: { sourceId: message.sourceId } },
        source: message,
      });
    }
    return out;
  }

  /**
   * Keeps the attachments the export carried (the ZIP's files, the text Claude extracted from a
   * file) as files of the session, made searchable like an upload, and links them to their message;
   * the others are described in the message's metadata.
   */
  private async attach(
    sessionId: string,
    messages: (NewMessage & { id: string; createdAt: string; source: ImportedMessage })[],
    conversation: ImportedConversation,
    reader: ExportReader,
  ): Promise<NewMessage[]> {
    const out: NewMessage[] = [];
    for (const { source, ...message } of messages) {
      const attachments: NonNullable<NewMessage['attachments']> = [];
      const described: Record<string, unknown>[] = [];
      for (const attachment of source.attachments) {
        const linked = await this.keepAttachment(sessionId, attachment, conversation, reader);
        if (linked) {
          // The same bytes twice in one message (a file listed twice) are one file: link it once.
          if (!attachments.some((a) => a.fileId === linked.fileId)) attachments.push(linked);
          continue;
        }
        this.counts.attachments.missing++;
        described.push({ name: attachment.name, mimeType: attachment.mimeType, ref: attachment.ref, ...(attachment.text !== null ? { text: attachment.text } : {}) });
      }
      let content = typeof message.content === 'string' ? message.content : '';
      // A message of only a file that did not come with the export still says what it was.
      if (content.trim() === '' && attachments.length === 0) {
        if (described.length === 0) continue;
        content = described.map((d) => `[attachment: ${String(d.name)}]`).join('\n');
      }
      out.push({
        ...message,
        content,
        ...(attachments.length > 0 ? { attachments } : {}),
        metadata: { ...message.metadata, ...(described.length > 0 ? { attachments: described } : {}) },
      });
    }
    return out;
  }

  /**
   * One attachment as a file of the session, linked: ingested like an upload (an image OCRed, a PDF's
   * text, a text file), else (a type ingest does not read, an image that cannot be decoded) stored
   * as it came and reported, so it is kept but not searchable. Null when the export has neither its
   * bytes nor its text. A file already in the session (same bytes) is linked, not read again.
   */
  private async keepAttachment(sessionId: string, attachment: ImportedAttachment, conversation: ImportedConversation, reader: ExportReader): Promise<AttachmentRef | null> {
    const entry = attachment.zipEntry !== null && reader.zipEntries.has(attachment.zipEntry) ? attachment.zipEntry : null;
    const text = entry === null && attachment.text !== null && attachment.text.trim() !== '' ? attachment.text : null;
    if (entry === null && text === null) return null;
    const open = async (): Promise<{ source: FileSource; done: () => void }> => {
      if (entry === null) return { source: { bytes: Buffer.from(text ?? '', 'utf8') }, done: () => undefined };
      const stream = await reader.openEntry(entry);
      // A store or ingest that fails before reading to the end leaves the entry's stream open otherwise.
      return { source: { stream }, done: () => stream.destroy() };
    };
    // Claude gives the text of a PDF or a document, not the file: stored as the text it is.
    const name = entry !== null ? attachment.name.slice(0, 255) : textName(attachment.name.slice(0, 250));
    const metadata = { import: { source: this.source, ...(attachment.ref !== null ? { ref: attachment.ref } : {}), ...(text !== null ? { extractedContent: true } : {}) } };
    const item = conversation.title ?? conversation.conversationId;
    if (this.options.attachments === 'store') return entry !== null ? this.storeAttachment(sessionId, attachment, open, name, metadata, item) : null;
    let refused: unknown;
    const first = await open();
    try {
      const result = await this.deps.ingest(this.userId, sessionId, first.source, { name, metadata, ...(this.options.signal ? { signal: this.options.signal } : {}) });
      this.counts.attachments.stored++;
      if (result.ingested) this.counts.attachments.ingested++;
      return linkOf(attachment, result.file);
    } catch (cause) {
      if (!isBadInput(cause)) throw cause;
      refused = cause;
    } finally {
      first.done();
    }
    const why = `${attachment.name}: ${toMemexError(refused).code}: ${toMemexError(refused).message}`;
    // Extracted text ingest refused (too long) stays in the message's metadata, as before.
    const stored = entry !== null ? await this.storeAttachment(sessionId, attachment, open, name, metadata, item) : null;
    // Kept but not searchable, said so; a file the store refused too was reported as unreadable.
    if (stored !== null || entry === null) this.skip(item, 'attachment-not-searchable', why);
    return stored;
  }

  /** An attachment's bytes stored as they came and linked, read by nothing; null (and reported) when the store refuses them. */
  private async storeAttachment(
    sessionId: string,
    attachment: ImportedAttachment,
    open: () => Promise<{ source: FileSource; done: () => void }>,
    name: string,
    metadata: Metadata,
    item: string,
  ): Promise<AttachmentRef | null> {
    const opened = await open();
    try {
      const { file } = await this.deps.store.putFile(this.userId, sessionId, { source: opened.source, name, metadata });
      this.counts.attachments.stored++;
      return linkOf(attachment, file);
    } catch (cause) {
      if (!isBadInput(cause)) throw cause;
      this.skip(item, 'attachment-unreadable', `${attachment.name}: ${toMemexError(cause).code}: ${toMemexError(cause).message}`);
      return null;
    } finally {
      opened.done();
    }
  }

  /** Appends in batches; a batch the store refuses is retried one by one, so a bad message costs only itself. */
  private async append(sessionId: string, messages: NewMessage[]): Promise<void> {
    for (let start = 0; start < messages.length; start += APPEND_BATCH) {
      const batch = messages.slice(start, start + APPEND_BATCH);
      try {
        await this.deps.store.appendMessages(this.userId, sessionId, batch);
        this.counts.messages.added += batch.length;
      } catch (cause) {
        if (!isBadInput(cause)) throw cause;
        for (const message of batch) {
          try {
            await this.deps.store.appendMessages(this.userId, sessionId, [message]);
            this.counts.messages.added++;
          } catch (inner) {
            if (!isBadInput(inner)) throw inner;
            this.skip(`${sessionId}/${message.id ?? ''}`, 'message-refused', `${toMemexError(inner).code}: ${toMemexError(inner).message}`);
          }
        }
      }
    }
  }

  /**
   * The conversation's other branches, as one JSON file beside it (not searched: they are not what
   * the user saw last), with its hidden nodes whole when their text was clipped in the metadata.
   */
  private async keepBranches(sessionId: string, conversation: ImportedConversation, hidden: unknown[] | null): Promise<void> {
    const body = JSON.stringify({ format: 'memex-import-branches', v: 1, conversationId: conversation.conversationId, branches: conversation.branches, ...(hidden ? { hidden } : {}) });
    const { file } = await this.deps.store.putFile(this.userId, sessionId, { source: { bytes: Buffer.from(body) }, name: 'branches.json', metadata: { import: { branches: conversation.branches.length } } });
    const session = await this.deps.store.getSession(this.userId, sessionId);
    const previous = (session.metadata.import as { branchesFileId?: string } | undefined)?.branchesFileId;
    if (previous === file.id) return;
    await this.deps.store.updateSession(this.userId, sessionId, {
      metadata: { ...session.metadata, import: { ...(session.metadata.import as object), branchesFileId: file.id, branches: conversation.branches.length } },
    });
    if (previous) await this.deps.store.deleteFile(this.userId, sessionId, previous).catch(() => undefined);
  }

  /** A document (a Claude project's doc) into its project's session, stored and ingested like an upload. */
  private async document(document: ImportedDocument): Promise<void> {
    const sessionId = importedSessionId(this.source, `project-${document.collectionId}`);
    const existing = await this.session(sessionId);
    const bytes = Buffer.from(document.text, 'utf8');
    const fileId = createHash('sha256').update(bytes).digest('hex');
    const files = existing ? await this.deps.store.listFiles(this.userId, sessionId) : [];
    const present = files.some((file) => file.id === fileId && file.content !== null);
    this.counts.documents[present ? 'unchanged' : 'added']++;
    if (this.dryRun || present) return;
    if (!existing) {
      const createdAt = document.createdAt ?? new Date().toISOString();
      await this.deps.store.restoreSession(this.userId, {
        id: sessionId,
        title: cleanTitle(document.collectionTitle) ?? 'Imported project',
        titleSource: 'user',
        personaId: null,
        origin: { kind: 'imported', source: this.source, conversationId: `project-${document.collectionId}`.slice(0, 256) },
        createdAt,
        updatedAt: createdAt,
        metadata: { import: { source: this.source, kind: 'project', collectionId: document.collectionId } },
      });
    }
    this.touched.add(sessionId);
    try {
      await this.deps.ingest(this.userId, sessionId, { bytes }, { name: document.name, metadata: { import: { source: this.source, documentId: document.documentId, ...document.metadata } }, ...(this.options.signal ? { signal: this.options.signal } : {}) });
    } catch (cause) {
      if (!isBadInput(cause)) throw cause;
      this.skip(document.name, 'document-refused', `${toMemexError(cause).code}: ${toMemexError(cause).message}`);
    }
  }

  /** A memory the service kept about the user, as a note marked imported (replaced when its text changed). */
  private async note(note: ImportedNote): Promise<void> {
    const id = messageIdFor(note.noteId);
    this.existingNotes ??= new Map((await this.deps.store.listNotes(this.userId)).map((n) => [n.id, n]));
    const existing = this.existingNotes.get(id);
    const text = note.text.trim();
    if (text === '') return;
    if (existing && existing.text === text) {
      this.counts.notes.unchanged++;
      return;
    }
    this.counts.notes.added++;
    if (this.dryRun) return;
    const now = new Date().toISOString();
    await this.deps.store.restoreNote(this.userId, {
      id: id as Note['id'],
      kind: 'note',
      text,
      pinned: false,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      metadata: { ...note.metadata, imported: { source: this.source, noteId: note.noteId } },
    });
    this.notes.add(id as NoteId);
  }

  private async session(sessionId: string): Promise<SessionSummary | null> {
    try {
      return await this.deps.store.getSession(this.userId, sessionId);
    } catch (cause) {
      if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND')) return null;
      throw cause;
    }
  }

  private async messageIds(sessionId: string): Promise<Set<string>> {
    const ids = new Set<string>();
    for await (const message of this.deps.store.streamMessages(this.userId, sessionId)) ids.add(message.id);
    return ids;
  }

  private skip(item: string | null, reason: string, detail: string): void {
    this.skipped.push({ item: item === null ? null : item.slice(0, 300), reason, detail: detail.slice(0, 500) });
  }

  private checkAborted(): void {
    if (this.options.signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'the import was cancelled; what was imported so far is kept and listed');
  }

  private progress(phase: ImportProgress['phase']): void {
    this.options.onProgress?.({ phase, done: this.done, total: this.total, messages: this.counts.messages.added });
  }
}

/** A service's id as a Memex id: itself when it is a safe name, else `h` and 40 hex digits of its sha256 (stable across imports). */
export function messageIdFor(sourceId: string): string {
  return idProblem(sourceId) === null && sourceId.length <= 100 ? sourceId : `h${createHash('sha256').update(sourceId).digest('hex').slice(0, 40)}`;
}

/** The link from a message to the file kept for its attachment: the name the export gave, the type read from the bytes. */
function linkOf(attachment: ImportedAttachment, file: FileRecord): AttachmentRef {
  return { fileId: file.id, name: attachment.name.slice(0, 255), mimeType: file.mimeType };
}

/** The name of a file's extracted text: its own when that already says text, else with `.txt` added. */
function textName(name: string): string {
  return /\.(txt|md|markdown|csv)$/i.test(name) ? name : `${name}.txt`;
}

/**
 * Characters of a hidden node's text (custom instructions, tool traffic) kept in its session's
 * metadata. Session metadata is read with every listing and kept in the flat store's cache, so a
 * long hidden text is clipped there and kept whole in the session's `branches.json`.
 */
const HIDDEN_TEXT_CHARS = 4000;

function clipHidden(metadata: Record<string, unknown>): { metadata: Record<string, unknown>; full: unknown[] | null } {
  const hidden = metadata.hidden;
  if (!Array.isArray(hidden)) return { metadata, full: null };
  const long = (node: unknown): node is { text: string } => typeof node === 'object' && node !== null && typeof (node as { text?: unknown }).text === 'string' && (node as { text: string }).text.length > HIDDEN_TEXT_CHARS;
  if (!hidden.some(long)) return { metadata, full: null };
  const clipped = hidden.map((node: unknown) => (long(node) ? { ...node, text: node.text.slice(0, HIDDEN_TEXT_CHARS), clipped: true, chars: node.text.length } : node));
  return { metadata: { ...metadata, hidden: clipped }, full: hidden };
}

function cleanTitle(title: string | null): string | null {
  const trimmed = title?.replace(/\s+/g, ' ').trim() ?? '';
  return trimmed === '' ? null : trimmed.slice(0, 500);
}

/** Errors that belong to one item's data (skipped, reported), as opposed to the machine's (which stop the import). */
function isBadInput(cause: unknown): boolean {
  const { code } = toMemexError(cause);
  return (
    code === 'MEMEX_INVALID_INPUT' ||
    code === 'MEMEX_INVALID_ID' ||
    code === 'MEMEX_MESSAGE_TOO_LARGE' ||
    code === 'MEMEX_FILE_TOO_LARGE' ||
    code === 'MEMEX_MESSAGE_EXISTS' ||
    code === 'MEMEX_FILE_TYPE_UNSUPPORTED' ||
    code === 'MEMEX_TEXT_INVALID' ||
    code === 'MEMEX_TEXT_TOO_LARGE' ||
    code === 'MEMEX_IMPORT_INVALID' ||
    code === 'MEMEX_ARCHIVE_UNSAFE' ||
    code === 'MEMEX_IMAGE_INVALID' ||
    code === 'MEMEX_IMAGE_TOO_LARGE' ||
    code === 'MEMEX_PDF_ENCRYPTED' ||
    code === 'MEMEX_PDF_PASSWORD_INCORRECT' ||
    code === 'MEMEX_PDF_INVALID' ||
    code === 'MEMEX_TOO_MANY_PAGES'
  );
}
