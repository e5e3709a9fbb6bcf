import { z } from 'zod';
import { FileIdSchema, IMPORT_SOURCES, MessageIdSchema, NoteIdSchema, PersonaIdSchema, SessionIdSchema, UserIdSchema } from './ids.js';

/**
 * Every record Memex saves, as a zod schema with its inferred type, so what is read from disk or
 * the network is checked against the same definition the code is typed with. Each saved record
 * carries `v`, its format version; readers refuse versions newer than they know.
 */
export const FORMAT_VERSION = 1 as const;
const version = z.literal(FORMAT_VERSION);

/** Timestamps are stored as UTC ISO-8601 strings with milliseconds (`2026-11-21T15:30:12.345Z`). */
export const TimestampSchema = z.iso.datetime();
/** Accepts any ISO-8601 date-time with an offset from callers; stored normalised to UTC. */
export const TimestampInputSchema = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());

export const MetadataSchema = z.record(z.string(), z.unknown());
export type Metadata = z.infer<typeof MetadataSchema>;

export const ProfileSchema = z.object({
  v: version,
  id: UserIdSchema,
  name: z.string().min(1).max(200),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  metadata: MetadataSchema,
});
export type Profile = z.infer<typeof ProfileSchema>;

export const SessionOriginSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('native') }),
  z.object({ kind: z.literal('imported'), source: z.enum(IMPORT_SOURCES), conversationId: z.string().min(1).max(256) }),
]);
export type SessionOrigin = z.infer<typeof SessionOriginSchema>;

/** A session tag: trimmed, 1 to 64 characters, no commas (lists of tags are written comma-separated on the CLI and in query strings). */
export const TagSchema = z.string().trim().min(1).max(64).regex(/^[^,\p{Cc}]+$/u, 'a tag has no commas or control characters');

export const TitleSourceSchema = z.enum(['user', 'auto']);

const ForkPointSchema = z.object({ sessionId: SessionIdSchema, messageId: MessageIdSchema });

/** A session's lineage and panel as a restore may give them: each optional (absent keeps the session's own). */
export const SessionLineageInputSchema = z.object({
  forkedFrom: ForkPointSchema.nullable().optional(),
  forks: z.array(SessionIdSchema).optional(),
  mergedFrom: z.array(SessionIdSchema).optional(),
  participants: z.array(PersonaIdSchema).optional(),
});

export const SessionMetaSchema = z.object({
  v: version,
  id: SessionIdSchema,
  userId: UserIdSchema,
  title: z.string().nullable(),
  /** `auto` titles come from the first user message and may be replaced; `user` titles never are. */
  titleSource: TitleSourceSchema.nullable(),
  personaId: PersonaIdSchema.nullable(),
  origin: SessionOriginSchema,
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  lastMessageAt: TimestampSchema.nullable(),
  messageCount: z.number().int().nonnegative(),
  lastMessagePreview: z.string().nullable(),
  /**
   * Size of messages.jsonl when the counts above were taken. When the file's size differs on open
   * (a crash between the append and this file's write), the counts are recomputed from the log.
   */
  messagesBytes: z.number().int().nonnegative(),
  metadata: MetadataSchema,
  /** The session and message this session was forked at (`sessions.fork`); null for one that was not forked. */
  forkedFrom: ForkPointSchema.nullable().default(null),
  /** Sessions forked from this one, oldest first. A deleted fork stays listed here: the link is history. */
  forks: z.array(SessionIdSchema).default([]),
  /** The sessions merged into this one (`sessions.merge`), in merge order; each message also says which (`metadata.mergedFrom`). */
  mergedFrom: z.array(SessionIdSchema).default([]),
  /** A panel's personas: each assistant message names the one that spoke (`personaId`). Empty for a one-persona chat. */
  participants: z.array(PersonaIdSchema).default([]),
  /**
   * When the session was archived (compressed out of the hot data; README "Archive and
   * retention"), null while it is live. Optional so data written before archiving existed reads.
   */
  archivedAt: TimestampSchema.nullable().default(null),
  /** The user's labels, sorted and unique (sessions written before tags read as none). */
  tags: z.array(TagSchema).default([]),
  /** When the session was moved to the trash (null: not in it). A trashed session leaves listings, search and context windows until restored or purged. */
  trashedAt: TimestampSchema.nullable().default(null),
});
export type SessionMeta = z.infer<typeof SessionMetaSchema>;

/** A session's links to others (fork, merge) and its panel, as a session that has none holds them. */
export type SessionLineage = Pick<SessionMeta, 'forkedFrom' | 'forks' | 'mergedFrom' | 'participants'>;
export function noLineage(): SessionLineage {
  return { forkedFrom: null, forks: [], mergedFrom: [], participants: [] };
}

/** What a listing shows of a session: its meta without the bookkeeping. */
export type SessionSummary = Omit<SessionMeta, 'v' | 'messagesBytes'>;

export const ROLES = ['user', 'assistant', 'system', 'tool'] as const;
export const RoleSchema = z.enum(ROLES);
export type Role = z.infer<typeof RoleSchema>;

export const AttachmentRefSchema = z.object({
  fileId: FileIdSchema,
  name: z.string().max(255).optional(),
  mimeType: z.string().max(255).optional(),
});
export type AttachmentRef = z.infer<typeof AttachmentRefSchema>;

/** One part of an OpenAI-style content array: text, or an image by URL (an `https:` or a `data:` URL). */
export const ContentPartSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('text'), text: z.string() }),
  z.strictObject({
    type: z.literal('image_url'),
    image_url: z.strictObject({ url: z.string().min(1).max(8 * 1024 * 1024), detail: z.enum(['auto', 'low', 'high']).optional() }),
  }),
]);
export type ContentPart = z.infer<typeof ContentPartSchema>;

/** A function call an assistant message asks for, in the OpenAI chat shape; `arguments` is JSON text, kept as given. */
export const ToolCallSchema = z.strictObject({
  id: z.string().min(1).max(256),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string().min(1).max(256), arguments: z.string().max(1_000_000) }),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

/**
 * Message format 2 adds the OpenAI chat fields (`name`, `parts`, `toolCalls`). Only a message that
 * uses one is written as 2, so logs without them stay readable by a Memex that knows only 1, and
 * one that does not know 2 refuses those lines rather than silently dropping their fields.
 */
export const MESSAGE_FORMAT_VERSION = 2 as const;

const messageBase = {
  v: z.union([version, z.literal(MESSAGE_FORMAT_VERSION)]),
  id: MessageIdSchema,
  sessionId: SessionIdSchema,
  /** The text: what is embedded, searched and counted. With `parts`, their text parts joined by a newline. */
  content: z.string(),
  /** The content array as the caller sent it (OpenAI content parts), when it was one. */
  parts: z.array(ContentPartSchema).optional(),
  /** A participant name (OpenAI's `name`). */
  name: z.string().min(1).max(256).optional(),
  createdAt: TimestampSchema,
  metadata: MetadataSchema,
  attachments: z.array(AttachmentRefSchema),
  /** In a panel, the persona that spoke (assistant messages); a window built for another participant labels it with the persona's name. */
  personaId: PersonaIdSchema.optional(),
};

/** Messages come in kinds by `role`; an assistant message may call tools, and a tool message say which call it answers. */
export const MessageSchema = z.discriminatedUnion('role', [
  z.object({ ...messageBase, role: z.literal('user') }),
  z.object({ ...messageBase, role: z.literal('assistant'), toolCalls: z.array(ToolCallSchema).optional() }),
  z.object({ ...messageBase, role: z.literal('system') }),
  z.object({
    ...messageBase,
    role: z.literal('tool'),
    toolCallId: z.string().min(1).max(256).optional(),
    toolName: z.string().min(1).max(256).optional(),
  }),
]);
export type Message = z.infer<typeof MessageSchema>;

export const PersonaSchema = z.object({
  v: version,
  id: PersonaIdSchema,
  userId: UserIdSchema,
  name: z.string().min(1).max(200),
  /** The system prompt this persona puts at the top of a context window. */
  instructions: z.string(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  metadata: MetadataSchema,
});
export type Persona = z.infer<typeof PersonaSchema>;

/**
 * What makes two persona names the same: names are unique per user ignoring case (and surrounding
 * space), so `--persona tutor` finds "Tutor" and cannot mean two personas. Accents count.
 */
export function samePersonaName(a: string, b: string): boolean {
  const key = (name: string): string => name.normalize('NFC').trim().toLowerCase();
  return key(a) === key(b);
}

/** Something ingest could not do with part of a file; the rest of the file is kept. */
export const INGEST_WARNING_CODES = [
  'page-unreadable',
  'no-text',
  'ocr-failed',
  'ocr-timeout',
  'ocr-budget-exhausted',
  'ocr-disabled',
  'render-unavailable',
  'image-truncated',
  'frames-skipped',
  'metadata-unreadable',
  'attachments-skipped',
  'json-invalid',
] as const;
export const IngestWarningSchema = z.object({
  code: z.enum(INGEST_WARNING_CODES),
  message: z.string(),
  /** The 1-based page (PDF page, TIFF page) it concerns, when it concerns one. */
  page: z.number().int().positive().optional(),
});
export type IngestWarning = z.infer<typeof IngestWarningSchema>;

export const BoxSchema = z.object({ x0: z.number(), y0: z.number(), x1: z.number(), y1: z.number() });
export type Box = z.infer<typeof BoxSchema>;

/** One line OCR read, with where it is on the page (pixels of the image OCR saw) and in the unit's text. */
export const OcrLineSchema = z.object({
  text: z.string(),
  start: z.number().int().nonnegative(),
  end: z.number().int().nonnegative(),
  bbox: BoxSchema,
  confidence: z.number(),
});
export type OcrLine = z.infer<typeof OcrLineSchema>;

/** The text of one page of a file, and how it was read. Chunk spans of the page index into `text`. */
export const TextUnitSchema = z.object({
  page: z.number().int().positive(),
  text: z.string(),
  /** `text`: a text document's own text (a section of it, for Markdown and HTML). */
  method: z.enum(['text-layer', 'ocr', 'text']),
  /** The headings a section of a text document sits under, outermost first. */
  headings: z.array(z.string()).optional(),
  /** Mean OCR word confidence, 0-100. */
  confidence: z.number().optional(),
  /** OCR lines with bounding boxes. */
  lines: z.array(OcrLineSchema).optional(),
  /** The page was read turned this many degrees (an upside-down scan); boxes are in the turned image. */
  rotation: z.union([z.literal(0), z.literal(180)]).optional(),
  /** Size of the image OCR read (a rendered PDF page, an oriented image), for the boxes. */
  imageSize: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }).optional(),
});
export type TextUnit = z.infer<typeof TextUnitSchema>;

/** `files/<sha256>.text.json`: the text extracted from a file, kept so it is never parsed or OCRed twice. */
export const FileTextSchema = z.object({ v: version, kind: z.literal('memex-file-text'), fileId: FileIdSchema, units: z.array(TextUnitSchema) });
export type FileText = z.infer<typeof FileTextSchema>;

const contentBase = {
  /** Pages (PDF) or pages/frames read (image). */
  pages: z.number().int().nonnegative(),
  chunks: z.number().int().nonnegative(),
  characters: z.number().int().nonnegative(),
  warnings: z.array(IngestWarningSchema),
  ingestedAt: TimestampSchema,
};

/** What ingest learned from a file, by kind; absent until the file is ingested. */
export const FileContentSchema = z.discriminatedUnion('kind', [
  z.object({
    ...contentBase,
    kind: z.literal('pdf'),
    title: z.string().nullable(),
    author: z.string().nullable(),
    subject: z.string().nullable(),
    creator: z.string().nullable(),
    producer: z.string().nullable(),
    /** The document's creation date as the PDF states it, ISO-8601 when it parses. */
    createdAt: z.string().nullable(),
    encrypted: z.boolean(),
    /** Pages read by OCR (no text layer). */
    ocrPages: z.array(z.number().int().positive()),
  }),
  z.object({
    ...contentBase,
    kind: z.literal('image'),
    format: z.string(),
    /** After EXIF orientation is applied. */
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    /** Pages (TIFF) or frames (animation) in the file; `pages` above is how many were read. */
    pagesInFile: z.number().int().positive(),
    animated: z.boolean(),
    /** EXIF orientation tag (1-8) the image carried, applied to the derivative and before OCR. */
    orientation: z.number().int().min(1).max(8).nullable(),
    /** Mean OCR confidence over the pages read, 0-100; null when OCR did not run. */
    ocrConfidence: z.number().nullable(),
    thumbnail: z.object({ width: z.number().int().positive(), height: z.number().int().positive() }),
  }),
  z.object({
    ...contentBase,
    kind: z.literal('text'),
    /** How the document was read: as is, by its Markdown headings, HTML reduced to its visible text, JSON rendered as lines. */
    format: z.enum(['plain', 'markdown', 'html', 'json', 'csv']),
    /** The HTML `<title>`, or the first heading of a Markdown document. */
    title: z.string().nullable(),
  }),
]);
export type FileContent = z.infer<typeof FileContentSchema>;

export const FileRecordSchema = z.object({
  v: version,
  id: FileIdSchema,
  sessionId: SessionIdSchema,
  sha256: FileIdSchema,
  /** The name the file was first added under; the stored copy is named by its hash. */
  name: z.string().max(255),
  mimeType: z.string(),
  ext: z.string().regex(/^[a-z0-9]{1,10}$/),
  size: z.number().int().nonnegative(),
  createdAt: TimestampSchema,
  metadata: MetadataSchema,
  /** Set once the file is ingested (text extracted, chunks embedded). */
  content: FileContentSchema.optional(),
});
export type FileRecord = z.infer<typeof FileRecordSchema>;

/** One sentence an extractive summary keeps, with the message it came from. */
export const SummaryItemSchema = z.object({
  messageId: MessageIdSchema,
  role: RoleSchema,
  createdAt: TimestampSchema,
  text: z.string().min(1),
  /** How central the sentence is to what the summary covers (cosine to the centroid, length-weighted). */
  score: z.number(),
  /** The embedding it was ranked with (base64 little-endian float32), so re-ranking reads nothing else. */
  vector: z.string(),
});
export type SummaryItem = z.infer<typeof SummaryItemSchema>;

/**
 * A rolling summary of a session's older turns (`summary.json`, written by the context manager).
 * It covers the session's messages from the first through `coversThroughMessageId` and is only
 * ever extended: a window whose recent turns start earlier hides the sentences of turns it shows.
 */
export const SummarySchema = z.object({
  v: version,
  sessionId: SessionIdSchema,
  /** The whole summary as a window shows it when none of its turns are in the window. */
  text: z.string(),
  /** The last message the summary covers; later messages are not in it. */
  coversThroughMessageId: MessageIdSchema.nullable(),
  coveredMessages: z.number().int().nonnegative(),
  /** `extractive`: sentences of the turns (the offline default); `model`: written by a caller's summarizer. */
  method: z.enum(['extractive', 'model']),
  /** The summarizer's model (an LLM), or the embedding model the extractive ranking used. */
  model: z.string().optional(),
  /** `text`'s length in `encoding` tokens. */
  tokens: z.number().int().nonnegative(),
  encoding: z.string().optional(),
  updatedAt: TimestampSchema,
  /** Extractive summaries: the kept sentences in conversation order. */
  items: z.array(SummaryItemSchema).optional(),
  /** Extractive summaries: the sum of the covered chunks' vectors (base64 float32) and their count. */
  centroid: z.object({ sum: z.string(), count: z.number().int().nonnegative() }).optional(),
});
export type Summary = z.infer<typeof SummarySchema>;

export const NOTE_KINDS = ['fact', 'preference', 'instruction', 'note'] as const;

/** A long-term note about a user that windows include when they fit (pinned ones first). */
export const NoteSchema = z.object({
  id: NoteIdSchema,
  kind: z.enum(NOTE_KINDS),
  text: z.string().min(1),
  /** Pinned notes are offered to every window before the others; a window drops unpinned ones first. */
  pinned: z.boolean(),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  metadata: MetadataSchema,
});
export type Note = z.infer<typeof NoteSchema>;

/** `context_history.json`: a user's long-term, cross-session notes. */
export const ContextHistorySchema = z.object({ v: version, userId: UserIdSchema, notes: z.array(NoteSchema) });
export type ContextHistory = z.infer<typeof ContextHistorySchema>;

/** Which model made a data dir's vectors: rows of two models never mix. */
export const EmbeddingModelSchema = z.object({ model: z.string().min(1), dimension: z.number().int().positive() });
export type EmbeddingModel = z.infer<typeof EmbeddingModelSchema>;

/** `memex.json` at the root of a data dir. */
export const DataDirManifestSchema = z.object({
  v: version,
  kind: z.literal('memex-data'),
  createdAt: TimestampSchema,
  embedding: EmbeddingModelSchema.nullable(),
});
export type DataDirManifest = z.infer<typeof DataDirManifestSchema>;

/**
 * Where a chunk's text came from. `span` is a character range (UTF-16 code units, like
 * `String.prototype.slice`) into the source text: the message content, or the text of a file's page.
 */
export const ChunkSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('message'), messageId: MessageIdSchema, role: RoleSchema, createdAt: TimestampSchema }),
  z.object({ kind: z.literal('file'), fileId: FileIdSchema, page: z.number().int().positive().optional(), messageId: MessageIdSchema.optional(), headings: z.array(z.string()).optional() }),
]);
export type ChunkSource = z.infer<typeof ChunkSourceSchema>;

export const SpanSchema = z.object({ start: z.number().int().nonnegative(), end: z.number().int().nonnegative() });
export type Span = z.infer<typeof SpanSchema>;

/** A piece of text small enough for the embedding model, with where it came from. */
export const ChunkSchema = z.object({
  /** `<messageId or fileId>[:<page>]:<index>`: stable, so re-embedding the same source gives the same ids. */
  chunkId: z.string().min(1),
  source: ChunkSourceSchema,
  /** This chunk's place among the chunks of its source (a message or a page). */
  part: z.object({ index: z.number().int().nonnegative(), count: z.number().int().positive() }),
  span: SpanSchema,
  text: z.string(),
  /** Length in the embedding model's own tokens, special tokens included. */
  tokens: z.number().int().nonnegative(),
});
export type Chunk = z.infer<typeof ChunkSchema>;

/** One line of `vector_index.jsonl`: the chunk stored at row `row` of `embeddings.npy`. */
export const VectorLineSchema = ChunkSchema.extend({
  v: version,
  row: z.number().int().nonnegative(),
  model: z.string().min(1),
});
export type VectorLine = z.infer<typeof VectorLineSchema>;

/**
 * What one import did (`memex import`), kept per user so imports can be listed and undone: the
 * files it read, what it added, changed and skipped, and which sessions and notes are its.
 */
export const ImportRecordSchema = z.object({
  v: version,
  id: z.string().regex(/^imp_[0-9a-z]{26}$/),
  source: z.enum(IMPORT_SOURCES),
  files: z.array(z.object({ name: z.string().max(1024), sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() })),
  startedAt: TimestampSchema,
  /** When it ended; while it runs, when the record was last saved (records written before states existed are done). */
  finishedAt: TimestampSchema,
  /**
   * `running` while the import writes (the record is saved as it goes, so an import whose process
   * died still lists, and deletes, what it wrote); then how it ended. Listings report a running
   * record that stopped being saved as `interrupted` (its process died).
   */
  state: z.enum(['running', 'done', 'failed', 'cancelled', 'interrupted']).default('done'),
  /** The account the export belongs to, when it says (Claude's users.json). */
  account: z.object({ id: z.string().max(256), name: z.string().max(256).nullable() }).nullable(),
  counts: z.object({
    conversations: z.object({ added: z.number().int(), updated: z.number().int(), unchanged: z.number().int(), skipped: z.number().int() }),
    messages: z.object({ added: z.number().int(), unchanged: z.number().int() }),
    documents: z.object({ added: z.number().int(), unchanged: z.number().int() }),
    notes: z.object({ added: z.number().int(), unchanged: z.number().int() }),
    /**
     * `stored`: attachments kept in the conversation's session and linked to their message (the
     * ZIP's files, Claude's extracted texts); `ingested`: of those, the ones whose text this import
     * read and made searchable (0 in records written before attachments were ingested); `missing`:
     * only described in the message's metadata (the export did not carry them).
     */
    attachments: z.object({ stored: z.number().int(), ingested: z.number().int().default(0), missing: z.number().int() }),
  }),
  /** The imported sessions this import added to or changed; deleting the import deletes them. */
  sessions: z.array(SessionIdSchema),
  notes: z.array(NoteIdSchema),
  /** What was left out and why (the first thousand; `skippedTotal` counts all). */
  skipped: z.array(z.object({ item: z.string().nullable(), reason: z.string(), detail: z.string() })),
  skippedTotal: z.number().int().nonnegative(),
});
export type ImportRecord = z.infer<typeof ImportRecordSchema>;

/** One conversation's fate in an import (or, on a dry run, what it would be). */
export const ConversationOutcomeSchema = z.object({
  sessionId: z.string(),
  title: z.string().nullable(),
  action: z.enum(['added', 'updated', 'unchanged']),
  newMessages: z.number().int(),
  titleChanged: z.boolean(),
});
export type ConversationOutcome = z.infer<typeof ConversationOutcomeSchema>;

export const ImportReportSchema = z.object({
  dryRun: z.boolean(),
  /** The record kept for the import (not kept on a dry run, or when the import changed nothing). */
  record: ImportRecordSchema,
  saved: z.boolean(),
  conversations: z.array(ConversationOutcomeSchema),
});
export type ImportReport = z.infer<typeof ImportReportSchema>;

export const ImportProgressSchema = z.object({
  /** `scan`: reading and checking the files; `store`: writing; `embed`: waiting for the vectors. */
  phase: z.enum(['scan', 'store', 'embed']),
  /** Conversations (and documents, notes) done in this phase, of `total` (known once scanned). */
  done: z.number(),
  total: z.number().nullable(),
  messages: z.number(),
});
export type ImportProgress = z.infer<typeof ImportProgressSchema>;

/**
 * An import running in the service (`POST /v1/imports`), kept in the store so that any instance can
 * report it, follow it and cancel it, and a restart does not lose it: the instance that runs it
 * saves its progress every second (`updatedAt`); one that stopped saving is reported interrupted.
 */
export const ImportJobSchema = z.object({
  v: version,
  id: z.string().regex(/^ijob_[0-9a-z]{26}$/),
  state: z.enum(['running', 'done', 'failed', 'cancelled']),
  dryRun: z.boolean(),
  files: z.array(z.string().max(255)),
  createdAt: TimestampSchema,
  updatedAt: TimestampSchema,
  finishedAt: TimestampSchema.nullable(),
  progress: ImportProgressSchema.nullable(),
  report: ImportReportSchema.nullable(),
  error: z.object({ code: z.string(), message: z.string(), hint: z.string() }).nullable(),
  /** A cancel asked for (from any instance); the running instance stops at its next save. */
  cancelRequested: z.boolean().default(false),
});
export type ImportJob = z.infer<typeof ImportJobSchema>;
