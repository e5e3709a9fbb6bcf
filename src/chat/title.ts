import type { ChatModel } from '../llm/index.js';

/** A title call is a nicety: it never holds a turn up longer than this. */
const TITLE_TIMEOUT_MS = 10_000;
const TITLE_CHARS = 60;

const INSTRUCTIONS =
  'Write a title of at most six words for the conversation below: the topic, in the language of the conversation. ' +
  'Reply with the title only: no quotes, no final period, no preamble.';

/** The model's title for a conversation's first exchange; null when it fails or says nothing usable. */
export async function modelTitle(model: ChatModel, user: string, assistant: string, signal?: AbortSignal): Promise<string | null> {
  const timeout = AbortSignal.timeout(TITLE_TIMEOUT_MS);
  try {
    const reply = await model.complete(
      {
        messages: [
          { role: 'system', content: INSTRUCTIONS },
          { role: 'user', content: `User: ${user.slice(0, 2000)}\n\nAssistant: ${assistant.slice(0, 2000)}` },
        ],
      },
      { signal: signal ? AbortSignal.any([signal, timeout]) : timeout },
    );
    return cleanTitle(reply.content ?? '');
  } catch {
    return null;
  }
}

/** The first line, without the quotes, markdown and final period models like to add. */
export function cleanTitle(text: string): string | null {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '') ?? '';
  const title = line
    .replace(/^#+\s*/, '')
    .replace(/^(title|titre)\s*:\s*/i, '')
    .replace(/^["'“”«*_`]+|["'“”»*_`]+$/g, '')
    .replace(/[.。]$/, '')
    .trim();
  if (title === '') return null;
  return title.length <= TITLE_CHARS ? title : `${title.slice(0, TITLE_CHARS - 1).trimEnd()}…`;
}
