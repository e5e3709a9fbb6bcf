import { z } from 'zod';
import { FORMAT_VERSION } from '../core/index.js';
import type { ExportParser, ImportedAttachment, ImportedMessage, ImportedRole, ImportItem } from './model.js';
import { issuesOf, isoFromString, isRecord, nonEmpty, skip, str } from './util.js';

/**
 * Memex's own session export (`memex export --format json`, store/export.ts): one JSON object,
 * `{ v, format: "memex-session", exportedAt, session, persona, files, messages: [...] }`, arriving
 * here as its top-level properties by name. It becomes one conversation keeping the session's id,
 * its messages' ids, roles, contents, times and metadata, so a round trip loses nothing the
 * export carried.
 */

const SessionSchema = z.looseObject({
  id: z.string().min(1),
  title: z.string().nullish(),
  titleSource: z.string().nullish(),
  personaId: z.string().nullish(),
  origin: z.unknown().optional(),
  createdAt: z.unknown().optional(),
  updatedAt: z.unknown().optional(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});

const MessageSchema = z.looseObject({
  id: z.string().min(1),
  role: z.enum(['user', 'assistant', 'system', 'tool']),
  content: z.string(),
  parts: z.array(z.unknown()).nullish(),
  createdAt: z.unknown().optional(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
  attachments: z.array(z.looseObject({ fileId: z.string(), name: z.string().nullish(), mimeType: z.string().nullish() })).nullish(),
  name: z.string().nullish(),
  toolCalls: z.array(z.unknown()).nullish(),
  toolCallId: z.string().nullish(),
  toolName: z.string().nullish(),
});

export const parseMemexSession: ExportParser = async function* (values): AsyncGenerator<ImportItem> {
  const head: Record<string, unknown> = {};
  let rawMessages: unknown = undefined;
  for await (const { key, value } of values) {
    if (key === 'messages') rawMessages = value;
    else if (key !== null) head[key] = value;
  }
  if (head.format !== 'memex-session') {
    yield skip('memex', null, 'invalid', `not a Memex session export (format ${JSON.stringify(head.format ?? null)})`);
    return;
  }
  if (typeof head.v === 'number' && head.v > FORMAT_VERSION) {
    yield skip('memex', null, 'unsupported-version', `export format version ${head.v} is newer than this Memex reads (${FORMAT_VERSION})`);
    return;
  }
  const session = SessionSchema.safeParse(head.session);
  if (!session.success) {
    yield skip('memex', null, 'invalid', `the export's session: ${issuesOf(session.error)}`);
    return;
  }
  const messages: ImportedMessage[] = [];
  for (const [index, raw] of (Array.isArray(rawMessages) ? rawMessages : []).entries()) {
    const parsed = MessageSchema.safeParse(raw);
    if (!parsed.success) {
      yield skip('memex', isRecord(raw) ? (nonEmpty(raw.id) ?? `#${index}`) : `#${index}`, 'invalid', `message ${index}: ${issuesOf(parsed.error)}`);
      continue;
    }
    messages.push(toMessage(parsed.data));
  }
  const s = session.data;
  const metadata: Record<string, unknown> = { ...(s.metadata ?? {}) };
  const extras: Record<string, unknown> = { titleSource: s.titleSource, personaId: s.personaId, origin: s.origin, persona: head.persona, files: head.files, exportedAt: head.exportedAt };
  for (const [name, value] of Object.entries(extras)) if (value !== null && value !== undefined) metadata[name] = value;
  yield {
    kind: 'conversation',
    source: 'memex',
    conversationId: s.id,
    title: s.title ?? null,
    createdAt: isoFromString(s.createdAt),
    updatedAt: isoFromString(s.updatedAt),
    messages,
    branches: [],
    metadata,
  };
};

function toMessage(m: z.infer<typeof MessageSchema>): ImportedMessage {
  // Memex writes `content` as the parts' text already; flatten the parts only when it did not.
  let content = m.content;
  if (content === '' && m.parts) {
    content = m.parts
      .map((p) => (isRecord(p) && p.type === 'text' ? (str(p.text) ?? '') : ''))
      .filter((t) => t !== '')
      .join('\n');
  }
  const metadata: Record<string, unknown> = { ...(m.metadata ?? {}) };
  const extras: Record<string, unknown> = { name: m.name, toolCalls: m.toolCalls, toolCallId: m.toolCallId, toolName: m.toolName };
  // Image parts carry URLs the text does not; kept so nothing of the message is lost.
  if (m.parts?.some((p) => isRecord(p) && p.type !== 'text')) extras.parts = m.parts;
  for (const [name, value] of Object.entries(extras)) if (value !== null && value !== undefined) metadata[name] = value;
  const attachments: ImportedAttachment[] = (m.attachments ?? []).map((a) => ({
    name: a.name ?? a.fileId,
    mimeType: a.mimeType ?? null,
    zipEntry: null,
    text: null,
    ref: a.fileId,
  }));
  return { sourceId: m.id, role: m.role satisfies ImportedRole, content, createdAt: isoFromString(m.createdAt), metadata, attachments };
}
