import type { Message } from '../core/index.js';
import type { Store } from '../store/index.js';

/** Sessions whose newest messages are kept. */
const SESSIONS = 64;
/** Messages kept per session between windows (the oldest go first); a window may read further. */
const KEPT = 2048;
/** Messages read per step when walking back from the newest. */
const PAGE = 64;
/** At most this many messages appended since a session's last window are read on; more, and it is read afresh. */
const GROWN = 256;

/** Messages `from` to `from + messages.length` of one session's log, oldest first. */
export interface MessageRun {
  from: number;
  messages: Message[];
}

/**
 * The newest messages of the sessions windows were built for lately. A window reads the turns the
 * one before it read, and what was appended since: only that is read again. A message never changes,
 * and the store's stamp (`Store.messageLogStamp`) says whether the log only grew since the run was
 * read; a store that cannot tell gets every window's turns read afresh.
 */
export class RecentMessages {
  private readonly runs = new Map<string, MessageRun & { stamp: string }>();

  /** The session's message count and its newest messages kept (possibly none yet: see `older`). */
  async newest(store: Store, userId: string, sessionId: string): Promise<{ total: number; run: MessageRun }> {
    const key = `${userId}\u0000${sessionId}`;
    const stamp = await store.messageLogStamp(userId, sessionId);
    const kept = this.runs.get(key);
    this.runs.delete(key);
    let found: { total: number; run: MessageRun } | null = null;
    const last = kept?.messages.at(-1);
    if (kept && last && kept.stamp === stamp) {
      const lastAt = kept.from + kept.messages.length - 1;
      const page = await store.listMessages(userId, sessionId, { offset: lastAt, limit: GROWN });
      if (page.messages[0]?.id === last.id && lastAt + page.messages.length === page.total) {
        kept.messages.push(...page.messages.slice(1));
        const extra = kept.messages.length - KEPT;
        if (extra > 0) {
          kept.messages.splice(0, extra);
          kept.from += extra;
        }
        found = { total: page.total, run: kept };
      }
    }
    if (!found) {
      const { total } = await store.listMessages(userId, sessionId, { limit: 1 });
      found = { total, run: { from: total, messages: [] } };
    }
    if (stamp !== null) {
      this.runs.set(key, Object.assign(found.run, { stamp }));
      if (this.runs.size > SESSIONS) this.runs.delete(this.runs.keys().next().value as string);
    }
    return found;
  }

  /** Reads the page before `run` into it; false when there is nothing before it. */
  async older(store: Store, userId: string, sessionId: string, run: MessageRun): Promise<boolean> {
    if (run.from === 0) return false;
    const start = Math.max(0, run.from - PAGE);
    const { messages } = await store.listMessages(userId, sessionId, { offset: start, limit: run.from - start });
    // Fewer than asked: the log lost messages meanwhile, and the positions no longer line up.
    if (messages.length !== run.from - start) return false;
    run.messages.unshift(...messages);
    run.from -= messages.length;
    return true;
  }
}
