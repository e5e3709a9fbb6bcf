import { isMemexError, toMemexError, type Config, type MemexError } from '../core/index.js';
import { chunkMessages, chunkingFor } from '../chunking/index.js';
import type { Embedder } from '../embedding/index.js';
import type { Store } from '../store/index.js';

export interface SessionRef {
  userId: string;
  sessionId: string;
}

export interface IndexedCount {
  messages: number;
  chunks: number;
}

export interface MessageIndexerOptions {
  store: Store;
  /** Resolves the embedder (loading it on first use, checking it against the data dir's model). */
  embedder: () => Promise<Embedder>;
  chunking: Config['chunking'];
  /** Called after a session got new rows (the search index takes them in). */
  onIndexed?: (userId: string, sessionId: string) => Promise<void>;
}

/** How long `defer` waits at most: a chat's next turn usually comes sooner and takes the work along. */
const DEFER_MS = 1000;

/** Messages read per round: bounds memory and lets appends to the same session interleave. */
const ROUND = 256;

/**
 * Embeds appended messages in the background. `append` returns once the message is durable;
 * the session is queued here and its new messages are chunked, embedded and written as vector rows
 * shortly after, in batches (one model call covers many messages, which is most of the speed).
 * `flush()` waits until everything queued has rows: search calls it first, so a query always sees
 * the messages appended before it.
 *
 * Nothing is lost if the process dies with work queued: the message log is the truth and the
 * store reports which messages have no rows yet, so the next append, search or `memex reindex`
 * catches up on them.
 */
export class MessageIndexer {
  private readonly queue = new Map<string, SessionRef>();
  private readonly deferred = new Map<string, { ref: SessionRef; timer: NodeJS.Timeout }>();
  private running: Promise<void> | null = null;
  /** The session being embedded now. */
  private current: SessionRef | null = null;
  /** Called each time a session is done (a user's flush waits for its own). */
  private wakers: (() => void)[] = [];
  private failures: { userId: string; error: MemexError }[] = [];

  constructor(private readonly options: MessageIndexerOptions) {}

  schedule(userId: string, sessionId: string): void {
    const key = `${userId}/${sessionId}`;
    this.undefer(key);
    this.queue.set(key, { userId, sessionId });
    this.running ??= this.drain();
  }

  /**
   * Queues the session a little later: after `ms`, or sooner when it is scheduled again, flushed or
   * settled for. A chat turn's reply waits so: the next turn's query goes to the model first, and
   * the reply is embedded beside that turn's model call (or after a moment of quiet).
   */
  defer(userId: string, sessionId: string, ms = DEFER_MS): void {
    const key = `${userId}/${sessionId}`;
    if (this.queue.has(key) || this.deferred.has(key)) return;
    const timer = setTimeout(() => this.schedule(userId, sessionId), ms);
    timer.unref();
    this.deferred.set(key, { ref: { userId, sessionId }, timer });
  }

  private undefer(key: string): void {
    const waiting = this.deferred.get(key);
    if (!waiting) return;
    clearTimeout(waiting.timer);
    this.deferred.delete(key);
  }

  /** Deferred sessions that `pick` takes are queued now. */
  private promote(pick: (ref: SessionRef) => boolean): void {
    for (const { ref } of [...this.deferred.values()]) if (pick(ref)) this.schedule(ref.userId, ref.sessionId);
  }

  /**
   * Resolves when every queued session is embedded, or with `userId` every session of that user
   * (which go to the front of the queue: a user's search waits for its own appends, not for another
   * user's large import). Rejects with the first failure since the last flush (of that user).
   */
  async flush(userId?: string): Promise<void> {
    this.promote((ref) => userId === undefined || ref.userId === userId);
    if (userId === undefined) {
      while (this.running) await this.running;
    } else {
      await this.waitFor(userId, (ref) => ref.userId === userId);
    }
    const index = this.failures.findIndex((failure) => userId === undefined || failure.userId === userId);
    const failure = this.failures[index];
    this.failures = userId === undefined ? [] : this.failures.filter((f) => f.userId !== userId);
    if (failure && index >= 0) throw failure.error;
  }

  /**
   * Resolves once no session of `userId` (other than `exceptSessionId`) waits to be embedded: what
   * a query of that user needs, without queueing behind other users' work (a chat turn's recall
   * waits for the user's earlier turns, not for every user's). Failures are left for `flush`.
   */
  async settleUser(userId: string, exceptSessionId?: string): Promise<void> {
    this.promote((ref) => ref.userId === userId && ref.sessionId !== exceptSessionId);
    await this.waitFor(userId, (ref) => ref.userId === userId && ref.sessionId !== exceptSessionId);
  }

  /** Moves the user's queued sessions to the front, then waits until none that `mine` picks is queued or running. */
  private async waitFor(userId: string, mine: (ref: SessionRef) => boolean): Promise<void> {
    const queued = [...this.queue];
    this.queue.clear();
    for (const [key, ref] of [...queued.filter(([, r]) => r.userId === userId), ...queued.filter(([, r]) => r.userId !== userId)]) this.queue.set(key, ref);
    const pending = (): boolean => (this.current !== null && mine(this.current)) || [...this.queue.values()].some(mine);
    while (this.running && pending()) await new Promise<void>((resolve) => this.wakers.push(resolve));
  }

  /** Embeds everything in the session that has no rows yet, now. */
  async indexSession(ref: SessionRef, signal?: AbortSignal): Promise<IndexedCount> {
    const { store } = this.options;
    const embedder = await this.options.embedder();
    const chunking = chunkingFor(this.options.chunking, embedder);
    const count: IndexedCount = { messages: 0, chunks: 0 };
    let after: string | undefined;
    for (;;) {
      const messages = await store.unembeddedMessages(ref.userId, ref.sessionId, { limit: ROUND, ...(after ? { after } : {}) });
      const last = messages[messages.length - 1];
      if (!last) return count;
      const chunks = await chunkMessages(messages, chunking);
      if (chunks.length > 0) {
        const vectors = await embedder.embed(
          chunks.map((chunk) => chunk.text),
          signal ? { signal } : {},
        );
        await store.appendVectors(ref.userId, ref.sessionId, { model: embedder.modelId, chunks, vectors });
      }
      count.messages += messages.length;
      count.chunks += chunks.length;
      after = last.id;
    }
  }

  private async drain(): Promise<void> {
    try {
      for (let next = this.take(); next; next = this.take()) {
        this.current = next;
        try {
          const count = await this.indexSession(next);
          // An index that cannot take the rows now syncs them (and reports why) on the next search.
          if (count.chunks > 0) await this.options.onIndexed?.(next.userId, next.sessionId).catch(() => undefined);
        } catch (cause) {
          // A session or user deleted while queued has nothing left to embed; an archived one is
          // embedded after it is unarchived (its messages without rows are caught up then).
          if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND') || isMemexError(cause, 'MEMEX_USER_NOT_FOUND') || isMemexError(cause, 'MEMEX_SESSION_ARCHIVED')) continue;
          this.failures.push({ userId: next.userId, error: toMemexError(cause, `cannot embed session ${next.sessionId}`) });
        } finally {
          this.current = null;
          this.wake();
        }
      }
    } finally {
      this.running = null;
      this.wake();
    }
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }

  private take(): SessionRef | undefined {
    const [entry] = this.queue;
    if (!entry) return undefined;
    this.queue.delete(entry[0]);
    return entry[1];
  }
}

