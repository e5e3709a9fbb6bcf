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

/**
 * `messagesAround` from the messages' positions (`found`, in a session of `total` messages): the
 * positions around them (not theirs), as ranges of consecutive positions, read at once (`read`
 * gives the message at each position of the [start, end) ranges, in log order).
 */
export async function aroundFromRanges(
  found: readonly { id: string; at: number }[],
  total: number,
  counts: { before: number; after: number },
  read: (ranges: readonly { start: number; end: number }[]) => Promise<Map<number, Message>>,
): Promise<Map<string, MessagesAround>> {
  const out = new Map<string, MessagesAround>();
  if (found.length === 0) return out;
  const side = (at: number): { before: number[]; after: number[] } => ({
    before: Array.from({ length: Math.min(at, counts.before) }, (_, i) => at - Math.min(at, counts.before) + i),
    after: Array.from({ length: Math.max(0, Math.min(total - at - 1, counts.after)) }, (_, i) => at + 1 + i),
  });
  const sides = new Map(found.map(({ at }) => [at, side(at)]));
  const positions = [...new Set([...sides.values()].flatMap(({ before, after }) => [...before, ...after]))].sort((a, b) => a - b);
  const ranges: { start: number; end: number }[] = [];
  for (const at of positions) {
    const last = ranges[ranges.length - 1];
    if (last && last.end === at) last.end = at + 1;
    else ranges.push({ start: at, end: at + 1 });
  }
  const byPosition = ranges.length > 0 ? await read(ranges) : new Map<number, Message>();
  const messagesAt = (list: number[]): Message[] => list.flatMap((at) => byPosition.get(at) ?? []);
  for (const { id, at } of found) {
    const { before, after } = sides.get(at) as { before: number[]; after: number[] };
    out.set(id, { before: messagesAt(before), after: messagesAt(after) });
  }
  return out;
}
