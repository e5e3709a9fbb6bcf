import { FORMAT_VERSION, MemexError, type Message, type Persona, type SessionSummary } from '../core/index.js';
import type { Store } from './store.js';

export const EXPORT_FORMATS = ['json', 'md'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * A session as a document, streamed in pieces so a long history never sits in memory whole.
 * `json` is the portable form (`format: "memex-session"`, versioned) with every field kept;
 * `md` is for people: a title, the facts, then each turn under its speaker and time.
 * Works over any Store.
 */
export async function* exportSession(store: Store, userId: string, sessionId: string, format: ExportFormat, options: { signal?: AbortSignal } = {}): AsyncGenerator<string> {
  if (!EXPORT_FORMATS.includes(format)) {
    throw new MemexError('MEMEX_INVALID_INPUT', `unknown export format ${JSON.stringify(format)}; use ${EXPORT_FORMATS.join(' or ')}`);
  }
  const session = await store.getSession(userId, sessionId);
  const persona = session.personaId ? await store.getPersona(userId, session.personaId).catch(() => null) : null;
  const files = await store.listFiles(userId, sessionId);
  const messages = store.streamMessages(userId, sessionId, options.signal ? { signal: options.signal } : {});
  if (format === 'json') {
    yield* exportJson(session, persona, files, messages);
  } else {
    yield* exportMarkdown(session, persona, files, messages);
  }
}

async function* exportJson(session: SessionSummary, persona: Persona | null, files: unknown[], messages: AsyncIterable<Message>): AsyncGenerator<string> {
  const head = { v: FORMAT_VERSION, format: 'memex-session', exportedAt: new Date().toISOString(), session, persona, files };
  yield `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "messages": [`;
  let first = true;
  for await (const message of messages) {
    yield `${first ? '' : ','}\n    ${JSON.stringify(message)}`;
    first = false;
  }
  yield `${first ? '' : '\n  '}]\n}\n`;
}

const SPEAKERS: Record<Message['role'], string> = { user: 'User', assistant: 'Assistant', system: 'System', tool: 'Tool' };

async function* exportMarkdown(
  session: SessionSummary,
  persona: Persona | null,
  files: { id: string; name: string; mimeType: string; size: number }[],
  messages: AsyncIterable<Message>,
): AsyncGenerator<string> {
  const lines = [`# ${session.title ?? 'Untitled session'}`, '', `- Session: \`${session.id}\``, `- Created: ${session.createdAt}`];
  if (session.lastMessageAt) lines.push(`- Last message: ${session.lastMessageAt}`);
  lines.push(`- Messages: ${session.messageCount}`);
  if (persona) lines.push(`- Persona: ${persona.name} (\`${persona.id}\`)`);
  if (session.origin.kind === 'imported') lines.push(`- Imported from: ${session.origin.source} (${session.origin.conversationId})`);
  yield `${lines.join('\n')}\n`;
  const fileNames = new Map(files.map((f) => [f.id, f.name || f.id.slice(0, 12)]));
  for await (const message of messages) {
    const speaker = message.role === 'tool' && message.toolName ? `Tool (${message.toolName})` : SPEAKERS[message.role];
    let block = `\n## ${speaker} · ${message.createdAt}\n\n${message.content}\n`;
    for (const attachment of message.attachments) {
      block += `\n> Attachment: ${attachment.name ?? fileNames.get(attachment.fileId) ?? attachment.fileId} (\`${attachment.fileId.slice(0, 12)}…\`)\n`;
    }
    yield block;
  }
}

/** The whole export as one string, for callers that want it in memory. */
export async function exportSessionToString(store: Store, userId: string, sessionId: string, format: ExportFormat): Promise<string> {
  let out = '';
  for await (const piece of exportSession(store, userId, sessionId, format)) out += piece;
  return out;
}
