import { isMemexError } from '../core/index.js';
import type { MessagesAround, Store } from '../store/index.js';

/** How many turns a recalled turn brings from before and after it. */
export interface NeighbourCounts {
  before: number;
  after: number;
}

/** The turns around one recalled turn, oldest first on each side: what the store reads. */
export type Around = MessagesAround;

/**
 * The turns around each of `turns` (a session and a message id): one read per session that holds
 * any of them (`Store.messagesAround`), the sessions at once. A paged read per turn and side cost
 * about 3 ms a 4k window. A turn deleted since the search, or a session gone, simply has no
 * neighbours. Keyed by `aroundKey`.
 */
export async function readAround(
  store: Store,
  userId: string,
  turns: readonly { sessionId: string; messageId: string }[],
  counts: NeighbourCounts,
): Promise<Map<string, Around>> {
  const out = new Map<string, Around>();
  if (counts.before + counts.after === 0) return out;
  const bySession = new Map<string, string[]>();
  for (const { sessionId, messageId } of turns) {
    const ids = bySession.get(sessionId) ?? [];
    ids.push(messageId);
    bySession.set(sessionId, ids);
  }
  await Promise.all(
    [...bySession].map(async ([sessionId, ids]) => {
      let found: Map<string, Around>;
      try {
        found = await store.messagesAround(userId, sessionId, ids, counts);
      } catch (cause) {
        if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND')) return;
        throw cause;
      }
      for (const [messageId, around] of found) out.set(aroundKey(sessionId, messageId), around);
    }),
  );
  return out;
}

export function aroundKey(sessionId: string, messageId: string): string {
  return `${sessionId}\u0000${messageId}`;
}
