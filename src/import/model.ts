/**
 * What every export parser produces: the conversations, documents and notes of one export, in one
 * shape whatever the service, so the importer (import/run.ts) stores them the same way. Parsers
 * keep the source's ids and times (re-importing matches on them), never invent content, and put
 * what has no field of its own in `metadata`.
 */

import { IMPORT_SOURCES, type ImportSource } from '../core/index.js';

/** Where an export came from. `memex` is Memex's own session export (`memex export --format json`). */
export const EXPORT_SOURCES = IMPORT_SOURCES;
export type ExportSource = ImportSource;

export type ImportedRole = 'user' | 'assistant' | 'system' | 'tool';

/** A file a message referred to. The bytes are there only when the export carried them (a ZIP entry). */
export interface ImportedAttachment {
  name: string;
  mimeType: string | null;
  /** The entry of the export's ZIP holding the bytes, when it was found there. */
  zipEntry: string | null;
  /** Text the service extracted from the file (Claude's `extracted_content`), when it gave any. */
  text: string | null;
  /** The service's own reference (ChatGPT's `file-service://…` pointer, Claude's file uuid). */
  ref: string | null;
}

export interface ImportedMessage {
  /** The service's id for the message; stable across exports of the same account. */
  sourceId: string;
  role: ImportedRole;
  /** The visible text, cleaned (citation markers removed, HTML reduced to text). */
  content: string;
  /** ISO-8601 UTC, or null when the export has no (valid) time for it. */
  createdAt: string | null;
  /** Model slug, citations, thinking blocks, tool names, content type and the like. */
  metadata: Record<string, unknown>;
  attachments: ImportedAttachment[];
}

/** Another path through a conversation tree (an edited question, a regenerated answer). */
export interface ImportedBranch {
  /** The sourceId of the last message the branch shares with the visible thread; null when it starts at the root. */
  fromSourceId: string | null;
  messages: ImportedMessage[];
}

export interface ImportedConversation {
  kind: 'conversation';
  source: ExportSource;
  /** The service's id for the conversation (derived from content where it has none, as for Gemini). */
  conversationId: string;
  title: string | null;
  createdAt: string | null;
  updatedAt: string | null;
  /** The visible thread, oldest first. */
  messages: ImportedMessage[];
  branches: ImportedBranch[];
  /** Hidden context (custom instructions), the default model, the project it belonged to, … */
  metadata: Record<string, unknown>;
}

/** A document that came with the export (a Claude project's docs). */
export interface ImportedDocument {
  kind: 'document';
  source: ExportSource;
  documentId: string;
  /** What the documents are grouped under (the Claude project), kept as one imported session. */
  collectionId: string;
  collectionTitle: string | null;
  name: string;
  text: string;
  createdAt: string | null;
  metadata: Record<string, unknown>;
}

/** Something the service remembered about the user (Claude's memories). Becomes a note, marked imported. */
export interface ImportedNote {
  kind: 'note';
  source: ExportSource;
  noteId: string;
  text: string;
  metadata: Record<string, unknown>;
}

/** The account the export belongs to (Claude's users.json), kept in the import's manifest. */
export interface ImportedAccount {
  kind: 'account';
  source: ExportSource;
  accountId: string;
  name: string | null;
}

/** Something left out, and why: a conversation with no mapping, a cycle, a broken time, a feedback entry. */
export interface ImportSkip {
  kind: 'skip';
  source: ExportSource;
  /** The conversation or entry it concerns, when it has an id or title. */
  item: string | null;
  /** A stable reason code for tests and scripts: `no-mapping`, `cycle`, `missing-parent`, `bad-time`, `not-gemini`, `feedback`, `invalid`, … */
  reason: string;
  detail: string;
}

export type ImportItem = ImportedConversation | ImportedDocument | ImportedNote | ImportedAccount | ImportSkip;

/** Which parser reads a JSON document, decided from its content (detect.ts), never from its name. */
export type ExportFormat =
  | 'chatgpt-conversations'
  | 'claude-conversations'
  | 'claude-projects'
  | 'claude-memories'
  | 'claude-users'
  | 'gemini-activity'
  | 'memex-session';

export const FORMAT_SOURCE: Record<ExportFormat, ExportSource> = {
  'chatgpt-conversations': 'chatgpt',
  'claude-conversations': 'claude',
  'claude-projects': 'claude',
  'claude-memories': 'claude',
  'claude-users': 'claude',
  'gemini-activity': 'gemini',
  'memex-session': 'memex',
};

/**
 * A parser: the top-level values of one JSON document (the elements of its array, or the values of
 * an object keyed by name, as the edge-case collections are), streamed one at a time so a 500 MB
 * export never sits in memory whole, in, items out. One bad value yields a `skip`, never a throw;
 * only the reader (a truncated document) throws.
 */
export type ExportParser = (values: AsyncIterable<{ key: string | null; value: unknown }>, context: ParseContext) => AsyncIterable<ImportItem>;

export interface ParseContext {
  /** Entry names of the ZIP the document came from (to find attachments' bytes); empty for a plain file. */
  zipEntries: ReadonlySet<string>;
}
