import { FORMAT_VERSION, MemexError, type Message, type Persona, type SessionSummary } from '../core/index.js';
import type { Store } from './store.js';

export const EXPORT_FORMATS = ['json', 'md', 'html'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/**
 * A session as a document, streamed in pieces so a long history never sits in memory whole.
 * `json` is the portable form (`format: "memex-session"`, versioned) with every field kept;
 * `md` is for people: a title, the facts, then each turn under its speaker and time;
 * `html` is the same for a browser: one self-contained, styled page (see `exportHtml`).
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
  } else if (format === 'html') {
    yield* exportHtml(session, persona, files, messages);
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

/**
 * Every character that could end a text node or an attribute value, so user content is only ever
 * text. Quotes are escaped too: the same function fills attribute values.
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * No script may run and nothing may load: the page is a record, opened from a disk or a mail, where
 * the messages (anyone's text) are the risk. The CSP repeats the escaping's promise in the browser.
 */
const HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

const HTML_STYLE = `
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fafafa; --muted: #6e6e73; --card: #fff; --line: #e0e0e5; --user: #e8f0fe; --assistant: #fff; --system: #fff8e1; --tool: #f1f3f4; }
@media (prefers-color-scheme: dark) { :root { --fg: #e8e8ed; --bg: #161618; --muted: #9a9aa0; --card: #1f1f22; --line: #333338; --user: #1c2a44; --assistant: #1f1f22; --system: #3a3320; --tool: #26282b; } }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; }
main { max-width: 52rem; margin: 0 auto; padding: 2rem 1rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .5rem; overflow-wrap: anywhere; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; color: var(--muted); font-size: .9rem; margin: 0 0 2rem; }
dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
article { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: .75rem 1rem; margin: 0 0 .9rem; }
article.user { background: var(--user); } article.assistant { background: var(--assistant); } article.system { background: var(--system); } article.tool { background: var(--tool); }
article header { display: flex; justify-content: space-between; gap: 1rem; font-size: .82rem; color: var(--muted); margin-bottom: .35rem; }
article header b { color: var(--fg); }
.content { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font: inherit; }
ul.attachments { margin: .5rem 0 0; padding-left: 1.2rem; font-size: .85rem; color: var(--muted); }
footer { margin-top: 2rem; font-size: .8rem; color: var(--muted); }
`;

/**
 * One page for people: the facts, then each turn in a card under its speaker and time. Self-contained
 * (inline CSS, no scripts, no links out, a CSP forbidding both) and every piece of user content
 * passes through `escapeHtml` as text, so a message holding `<script>` shows those characters.
 */
async function* exportHtml(
  session: SessionSummary,
  persona: Persona | null,
  files: { id: string; name: string; mimeType: string; size: number }[],
  messages: AsyncIterable<Message>,
): AsyncGenerator<string> {
  const e = escapeHtml;
  const title = session.title ?? 'Untitled session';
  const facts: [string, string][] = [
    ['Session', session.id],
    ['Created', session.createdAt],
  ];
  if (session.lastMessageAt) facts.push(['Last message', session.lastMessageAt]);
  facts.push(['Messages', String(session.messageCount)]);
  if (persona) facts.push(['Persona', `${persona.name} (${persona.id})`]);
  if (session.origin.kind === 'imported') facts.push(['Imported from', `${session.origin.source} (${session.origin.conversationId})`]);
  if (Object.keys(session.metadata).length > 0) facts.push(['Metadata', JSON.stringify(session.metadata)]);
  yield [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${e(HTML_CSP)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${e(title)}</title>`,
    `<style>${HTML_STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    `<h1>${e(title)}</h1>`,
    `<dl class="facts">${facts.map(([k, v]) => `<dt>${e(k)}</dt><dd>${e(v)}</dd>`).join('')}</dl>`,
    '',
  ].join('\n');
  const fileNames = new Map(files.map((f) => [f.id, f.name || f.id.slice(0, 12)]));
  for await (const message of messages) {
    const speaker = message.role === 'tool' && message.toolName ? `Tool (${message.toolName})` : SPEAKERS[message.role];
    const who = message.name !== undefined ? `${speaker} · ${message.name}` : speaker;
    let block = `<article class="${message.role}" id="m-${e(message.id)}"><header><b>${e(who)}</b><time datetime="${e(message.createdAt)}">${e(message.createdAt)}</time></header>`;
    block += `<pre class="content">${e(message.content)}</pre>`;
    if (message.role === 'assistant' && message.toolCalls && message.toolCalls.length > 0) {
      block += `<pre class="content">${e(message.toolCalls.map((call) => `${call.function.name}(${call.function.arguments})`).join('\n'))}</pre>`;
    }
    if (message.attachments.length > 0) {
      const items = message.attachments.map((a) => `<li>${e(a.name ?? fileNames.get(a.fileId) ?? a.fileId)} <code>${e(a.fileId.slice(0, 12))}…</code></li>`);
      block += `<ul class="attachments">${items.join('')}</ul>`;
    }
    yield `${block}</article>\n`;
  }
  yield `<footer>Exported by Memex on ${e(new Date().toISOString())}.</footer>\n</main>\n</body>\n</html>\n`;
}

/** The whole export as one string, for callers that want it in memory. */
export async function exportSessionToString(store: Store, userId: string, sessionId: string, format: ExportFormat): Promise<string> {
  let out = '';
  for await (const piece of exportSession(store, userId, sessionId, format)) out += piece;
  return out;
}
