import { isMemexError, type Message } from '../core/index.js';
import { messageCursor, type Store } from '../store/index.js';

/** How many turns a recalled turn brings from before and after it. */
export interface NeighbourCounts {
  before: number;
  after: number;
}

/** The turns around one recalled turn, oldest first on each side. */
export interface Around {
  before: Message[];
  after: Message[];
}

/**
 * The turns around each of `turns` (a session and a message id), read with the store's message
 * paging: a `before` page and a `cursor` page of the asked sizes, all at once. A turn deleted since
 * the search (its cursor no longer points anywhere) simply has no neighbours. Keyed by `aroundKey`.
 */
export async function readAround(
  store: Store,
  userId: string,
  turns: readonly { sessionId: string; messageId: string }[],
  counts: NeighbourCounts,
): Promise<Map<string, Around>> {
  const out = new Map<string, Around>();
  const page = async (sessionId: string, options: { before: string } | { cursor: string }, limit: number): Promise<Message[]> => {
    if (limit === 0) return [];
    try {
      return (await store.listMessages(userId, sessionId, { ...options, limit })).messages;
    } catch (cause) {
      if (isMemexError(cause, 'MEMEX_INVALID_CURSOR') || isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND')) return [];
      throw cause;
    }
  };
  await Promise.all(
    turns.map(async ({ sessionId, messageId }) => {
      const key = aroundKey(sessionId, messageId);
      if (out.has(key)) return;
      const entry: Around = { before: [], after: [] };
      out.set(key, entry);
      const cursor = messageCursor(messageId);
      const [before, after] = await Promise.all([page(sessionId, { before: cursor }, counts.before), page(sessionId, { cursor }, counts.after)]);
      entry.before = before;
      entry.after = after;
    }),
  );
  return out;
}

export function aroundKey(sessionId: string, messageId: string): string {
  return `${sessionId}\u0000${messageId}`;
}
