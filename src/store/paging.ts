import { MemexError, PageOptionsSchema, parseInput, type Message, type PageOptions } from '../core/index.js';
import { messageCursor, readMessageCursor } from './cursor.js';
import type { MessagePage, MessagesAround } from './store.js';

export const DEFAULT_PAGE = 50;

/**
 * Where a page of a session's messages starts and ends (positions, oldest first), by the same rules
 * on every backend: `offset`, after a `cursor`, before a `before` cursor, or the `latest` page.
 * `positionOf` gives a message's position, undefined when the session has no such message.
 */
export async function messageWindow(
  page: PageOptions,
  total: number,
  positionOf: (messageId: string) => Promise<number | undefined>,
): Promise<{ start: number; end: number; limit: number }> {
  const { limit = DEFAULT_PAGE, offset, cursor, before, latest } = parseInput(PageOptionsSchema, page, 'page options');
  const starts = [offset !== undefined, cursor !== undefined, before !== undefined, latest === true].filter(Boolean).length;
  if (starts > 1) throw new MemexError('MEMEX_INVALID_INPUT', 'pass one of offset, cursor, before or latest');
  const at = async (encoded: string): Promise<number> => {
    const position = await positionOf(readMessageCursor(encoded));
    if (position === undefined) throw new MemexError('MEMEX_INVALID_CURSOR', 'the cursor does not point at a message of this session');
    return position;
  };
  let start = offset ?? 0;
  let end = start + limit;
  if (cursor !== undefined) {
    start = (await at(cursor)) + 1;
    end = start + limit;
  }
  if (before !== undefined) {
    const position = await at(before);
    start = Math.max(0, position - limit);
    end = Math.min(start + limit, position);
  }
  if (latest) {
    start = Math.max(0, total - limit);
    end = start + limit;
  }
  return { start, end, limit };
}

/** The answer for a page of messages read from `start`, with its cursors. */
export function messagePage(messages: Message[], total: number, start: number, limit: number): MessagePage {
  const first = messages[0];
  const last = messages[messages.length - 1];
  return {
    messages,
    total,
    offset: start,
    limit,
    nextCursor: last && start + messages.length < total ? messageCursor(last.id) : null,
    prevCursor: first && start > 0 ? messageCursor(first.id) : null,
  };
}

/** Ranges this close (in turns) are read as one: a read costs more than a few extra lines in it. */
const MERGE_GAP = 8;

/**
 * `messagesAround` from the messages' positions (`found`, in a session of `total` messages): the
 * ranges around them merged, and read at once (`read` gives the message at each position of the
 * [start, end) ranges, in log order).
 */
export async function aroundFromRanges(
  found: readonly { id: string; at: number }[],
  total: number,
  counts: { before: number; after: number },
  read: (ranges: readonly { start: number; end: number }[]) => Promise<Map<number, Message>>,
): Promise<Map<string, MessagesAround>> {
  const out = new Map<string, MessagesAround>();
  if (found.length === 0) return out;
  const wanted = found.map(({ at }) => ({ start: Math.max(0, at - counts.before), end: Math.min(total, at + counts.after + 1) })).sort((a, b) => a.start - b.start);
  const merged: { start: number; end: number }[] = [];
  for (const range of wanted) {
    const last = merged[merged.length - 1];
    if (last && range.start <= last.end + MERGE_GAP) last.end = Math.max(last.end, range.end);
    else merged.push({ ...range });
  }
  const byPosition = await read(merged);
  const slice = (from: number, to: number): Message[] => {
    const messages: Message[] = [];
    for (let at = Math.max(0, from); at < to; at++) {
      const message = byPosition.get(at);
      if (message) messages.push(message);
    }
    return messages;
  };
  for (const { id, at } of found) out.set(id, { before: slice(at - counts.before, at), after: slice(at + 1, Math.min(total, at + 1 + counts.after)) });
  return out;
}
