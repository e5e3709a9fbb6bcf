import { z } from 'zod';
import { htmlToText } from '../ingest/html.js';
import type { ExportParser, ImportedConversation, ImportedMessage, ImportItem } from './model.js';
import { issuesOf, isRecord, nonEmpty, skip, str } from './util.js';

/**
 * Google Takeout's "My Activity" JSON: one entry per prompt, for every Google product, newest
 * first, with no conversation ids. Only Gemini Apps entries are taken; the prompt is the entry's
 * title without its "Prompted " prefix (localised), the response is its `safeHtmlItem` HTML
 * reduced to text (scripts and styles dropped, nothing executed).
 *
 * Conversations are rebuilt by time: entries sorted oldest first, a new conversation whenever
 * the gap to the previous entry exceeds CONVERSATION_GAP_MS. The conversation is named after its
 * first entry's time, so a newer export that only adds later entries keeps every older id.
 * Sorting needs every Gemini entry at hand, so they are held until the document ends (prompts
 * and responses only; the other products' entries are counted and dropped as they stream by).
 */

/**
 * 30 minutes: Takeout gives no conversation boundaries, and a pause longer than this is most often
 * a new topic. Longer merges unrelated questions into one conversation; shorter splits one.
 */
export const CONVERSATION_GAP_MS = 30 * 60 * 1000;

const EntrySchema = z.looseObject({
  header: z.string().nullish(),
  title: z.string(),
  time: z.unknown().optional(),
  products: z.array(z.unknown()).nullish(),
  safeHtmlItem: z.array(z.unknown()).nullish(),
  subtitles: z.array(z.unknown()).nullish(),
  attachedFiles: z.array(z.unknown()).nullish(),
});
type Entry = z.infer<typeof EntrySchema>;

/**
 * Title prefixes of a prompt entry. English and German are seen in the samples; the others follow
 * Takeout's wording in those locales as reported by users and are unverified, so a prompt in a
 * locale missing here is reported as a skip (`not-a-prompt`), never guessed at.
 */
const PROMPT_PREFIXES = [
  'Prompted ',
  'Eingegebener Prompt: ',
  'Prompt saisi : ',
  'Prompt saisi: ',
  'Prompt inviato: ',
  'Prompt enviado: ',
  'Petición: ',
  'Prompt ingevoerd: ',
];
/** Feedback entries (a thumbs up, a report): no prompt, no response. */
const FEEDBACK = /^(gave feedback|feedback gegeben|feedback envoyé|avis envoyé|feedback inviato|feedback enviado|comentarios enviados)/i;

function isGemini(entry: Entry): boolean {
  // Localised headers write "Gemini Apps" with a hyphen, a non-breaking hyphen or a space.
  const header = (entry.header ?? '').normalize('NFKC').toLowerCase();
  if (/^(gemini|bard)([\s\-\u2010\u2011\u00a0]|$)/.test(header)) return true;
  return (entry.products ?? []).some((p) => typeof p === 'string' && /\b(gemini|bard)\b/i.test(p));
}

function promptOf(title: string): string | null {
  for (const prefix of PROMPT_PREFIXES) if (title.startsWith(prefix)) return title.slice(prefix.length);
  return null;
}

interface Turn {
  at: number;
  time: string;
  prompt: string;
  response: string | null;
  metadata: Record<string, unknown>;
}

export const parseGemini: ExportParser = async function* (values): AsyncGenerator<ImportItem> {
  const turns: Turn[] = [];
  for await (const { key, value } of values) {
    const parsed = EntrySchema.safeParse(value);
    if (!parsed.success) {
      yield skip('gemini', key, 'invalid', `not a My Activity entry: ${issuesOf(parsed.error)}`);
      continue;
    }
    const entry = parsed.data;
    if (!isGemini(entry)) {
      yield skip('gemini', entry.title, 'not-gemini', `an activity entry of ${JSON.stringify(entry.header ?? 'another product')}`);
      continue;
    }
    const prompt = promptOf(entry.title);
    if (prompt === null) {
      yield FEEDBACK.test(entry.title)
        ? skip('gemini', entry.title, 'feedback', 'a feedback entry has no prompt or response')
        : skip('gemini', entry.title, 'not-a-prompt', 'the title starts with no known prompt prefix');
      continue;
    }
    const at = typeof entry.time === 'string' ? Date.parse(entry.time) : NaN;
    if (!Number.isFinite(at)) {
      yield skip('gemini', entry.title, 'bad-time', `time ${JSON.stringify(entry.time ?? null)} is not a date, so the entry cannot be placed in a conversation`);
      continue;
    }
    turns.push({ at, time: new Date(at).toISOString(), prompt, response: responseOf(entry), metadata: metadataOf(entry) });
  }

  // Stable, so entries at the same instant keep the export's order.
  turns.sort((a, b) => a.at - b.at);
  let group: Turn[] = [];
  for (const turn of turns) {
    const last = group.at(-1);
    if (last && turn.at - last.at > CONVERSATION_GAP_MS) {
      yield conversationOf(group);
      group = [];
    }
    group.push(turn);
  }
  if (group.length > 0) yield conversationOf(group);
};

function responseOf(entry: Entry): string | null {
  const texts: string[] = [];
  for (const item of entry.safeHtmlItem ?? []) {
    const html = isRecord(item) ? str(item.html) : null;
    if (html === null) continue;
    const text = htmlToText(html).text.trim();
    if (text !== '') texts.push(text);
  }
  return texts.length > 0 ? texts.join('\n\n') : null;
}

function metadataOf(entry: Entry): Record<string, unknown> {
  const metadata: Record<string, unknown> = {};
  const header = nonEmpty(entry.header);
  // The locale shows in a translated header; the English one says nothing the source does not.
  if (header && header !== 'Gemini Apps') metadata.header = header;
  const files = (entry.attachedFiles ?? []).filter((f): f is string => typeof f === 'string');
  if (files.length > 0) metadata.attachedFiles = files;
  return metadata;
}

/** `2026-03-10T18:00:00.000Z` -> `20260310T180000000Z`. */
function compactStamp(iso: string): string {
  return iso.replace(/[-:.]/g, '');
}

function conversationOf(turns: readonly Turn[]): ImportedConversation {
  const messages: ImportedMessage[] = [];
  const seen = new Map<string, number>();
  for (const turn of turns) {
    // Two entries at the same instant (a double submit) still get distinct, stable ids.
    const stamp = compactStamp(turn.time);
    const n = seen.get(stamp) ?? 0;
    seen.set(stamp, n + 1);
    const id = `gemini-${stamp}${n > 0 ? `-${n}` : ''}`;
    messages.push({ sourceId: `${id}-prompt`, role: 'user', content: turn.prompt, createdAt: turn.time, metadata: { ...turn.metadata }, attachments: [] });
    if (turn.response !== null) {
      messages.push({ sourceId: `${id}-response`, role: 'assistant', content: turn.response, createdAt: turn.time, metadata: {}, attachments: [] });
    }
  }
  const first = turns[0]!;
  const last = turns.at(-1)!;
  return {
    kind: 'conversation',
    source: 'gemini',
    conversationId: `gemini-${compactStamp(first.time)}`,
    title: null,
    createdAt: first.time,
    updatedAt: last.time,
    messages,
    branches: [],
    metadata: { grouping: 'time-gap', gapMinutes: CONVERSATION_GAP_MS / 60_000 },
  };
}
