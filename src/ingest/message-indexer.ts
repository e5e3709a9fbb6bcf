import { isMemexError, toMemexError, type Chunk, type Config, type MemexError, type Message } from '../core/index.js';
import { chunkMessages, chunkingFor } from '../chunking/index.js';
import type { Embedder } from '../embedding/index.js';
import type { Store } from '../store/index.js';
import { embedChunks } from './embed-chunks.js';

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
const ROUND = 512;

/** Chunks a round gathers from queued sessions before its model call: small sessions share one. */
const ROUND_CHUNKS = 512;

/** A session's messages read and chunked for one round. */
interface Part {
  ref: SessionRef;
  key: string;
  chunks: Chunk[];
}

/** One model call's worth of one user's work, its embedding under way. */
interface Round {
  parts: Part[];
  vectors: Promise<Float32Array[]>;
}

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
  /** Sessions taken from the queue whose rows are not all written yet (at most two rounds' worth). */
  private readonly active = new Map<string, SessionRef>();
  /** Sessions with more to read, after the message id each round read up to. */
  private readonly cursors = new Map<string, string>();
  /** Parts of each active session read but not yet written. */
  private readonly unwritten = new Map<string, number>();
  /** Active sessions whose rows failed: their later parts are dropped, not written out of order. */
  private readonly failed = new Set<string>();
  /** Called each time a session is done (a user's flush waits for its own). */
  private wakers: (() => void)[] = [];
  private failures: { userId: string; error: MemexError }[] = [];
  /** Messages put back from the trash, by session: embedded at their place when the session's turn comes. */
  private readonly restored = new Map<string, Set<string>>();

  constructor(private readonly options: MessageIndexerOptions) {}

  /**
   * A message came back from the trash. One trashed before it was embedded has no rows, and sits
   * before the session's last embedded message, where the catch-up (which looks after that one)
   * never goes: it is embedded in the session's turn here, its rows put in at its place.
   */
  restore(userId: string, sessionId: string, messageId: string): void {
    const key = `${userId}/${sessionId}`;
    this.restored.set(key, (this.restored.get(key) ?? new Set()).add(messageId));
    this.schedule(userId, sessionId);
  }

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
    const pending = (): boolean => [...this.active.values()].some(mine) || [...this.queue.values()].some(mine);
    while (this.running && pending()) await new Promise<void>((resolve) => this.wakers.push(resolve));
  }

  /** Embeds everything in the session that has no rows yet, now. */
  async indexSession(ref: SessionRef, signal?: AbortSignal): Promise<IndexedCount> {
    const { store } = this.options;
    const embedder = await this.options.embedder();
    const chunking = chunkingFor(this.options.chunking, embedder);
    const count: IndexedCount = { messages: 0, chunks: 0 };
    const key = `${ref.userId}/${ref.sessionId}`;
    const restored = this.restored.get(key);
    this.restored.delete(key);
    if (restored) count.chunks += await this.embedRestored(ref, [...restored], embedder, chunking);
    let after: string | undefined;
    for (;;) {
      const messages = await store.unembeddedMessages(ref.userId, ref.sessionId, { limit: ROUND, ...(after ? { after } : {}) });
      const last = messages[messages.length - 1];
      if (!last) return count;
      const chunks = await chunkMessages(messages, chunking, { countLater: true });
      if (chunks.length > 0) {
        const vectors = await embedChunks(embedder, [chunks], chunking, signal ? { signal } : {});
        await store.appendVectors(ref.userId, ref.sessionId, { model: embedder.modelId, chunks, vectors });
      }
      count.messages += messages.length;
      count.chunks += chunks.length;
      after = last.id;
    }
  }

  /**
   * Embeds restored messages that have no rows and rewrites the session's rows with theirs at their
   * place, so rows stay in the session's order. The session's other work is this indexer's, one
   * session at a time, so nothing appends rows meanwhile. Rare (a restore of a message trashed
   * within a moment of being written), and it costs one pass over the session's rows.
   */
  private async embedRestored(ref: SessionRef, messageIds: string[], embedder: Embedder, chunking: ReturnType<typeof chunkingFor>): Promise<number> {
    const { store } = this.options;
    const { userId, sessionId } = ref;
    const have = new Set((await store.readMessageVectors(userId, sessionId, messageIds)).lines.map((line) => (line.source.kind === 'message' ? line.source.messageId : '')));
    const position = new Map<string, number>();
    const missing: Message[] = [];
    for await (const message of store.streamMessages(userId, sessionId)) {
      position.set(message.id, position.size);
      if (messageIds.includes(message.id) && !have.has(message.id)) missing.push(message);
    }
    const chunks = await chunkMessages(missing, chunking, { countLater: true });
    if (chunks.length === 0) return 0;
    const vectors = await embedChunks(embedder, [chunks], chunking);
    const stored = await store.readVectors(userId, sessionId);
    const dimension = stored.dimension ?? embedder.dimension;
    const rows: { chunk: Chunk; vector: Float32Array; at: number }[] = stored.lines.map((line, i) => {
      const { v: _v, row: _row, model: _model, ...chunk } = line;
      // A file's rows keep their place among the messages' rows: the position of the message before them.
      return { chunk, vector: stored.vectors.subarray(i * dimension, (i + 1) * dimension), at: -1 };
    });
    let last = -1;
    for (const row of rows) {
      if (row.chunk.source.kind === 'message') last = position.get(row.chunk.source.messageId) ?? last;
      row.at = last;
    }
    const added = chunks.map((chunk, i) => ({ chunk, vector: vectors[i] as Float32Array, at: chunk.source.kind === 'message' ? (position.get(chunk.source.messageId) ?? last) : last }));
    // Stable: each new row goes after every row at or before its message's place.
    const merged = [...rows, ...added].map((row, i) => ({ row, i })).sort((a, b) => a.row.at - b.row.at || a.i - b.i).map(({ row }) => row);
    await store.replaceVectors(userId, sessionId, { model: embedder.modelId, chunks: merged.map((row) => row.chunk), vectors: merged.map((row) => row.vector) });
    return chunks.length;
  }

  /**
   * Rounds in a pipeline, so the model never waits for reads and writes. While nobody waits for a
   * user's rows (a bulk import, an ingest), the next round is read, chunked and queued at the model
   * while this one embeds. While someone does, the next round is read only once this one's vectors
   * are back, and from the sessions under way only; other sessions are taken from the queue after
   * the writes, so a user whose search waits (and moved their sessions to the front) goes next,
   * behind at most the round already at the model.
   */
  private async drain(): Promise<void> {
    try {
      let round = await this.startRound(false);
      while (round) {
        let next = this.wakers.length === 0 ? await this.startRound(false) : undefined;
        await round.vectors.catch(() => undefined);
        next ??= await this.startRound(true);
        await this.finishRound(round);
        round = next ?? (await this.startRound(false));
      }
    } finally {
      this.running = null;
      this.wake();
    }
  }

  /**
   * Reads the next messages without rows (sessions under way first, then, unless only `continuing`
   * ones are wanted, queued ones not already in a round) up to ROUND_CHUNKS chunks, and starts their
   * embedding; undefined when none is left.
   */
  private async startRound(continuing: boolean): Promise<Round | undefined> {
    const parts: Part[] = [];
    let chunks = 0;
    let embedder: Embedder | null = null;
    while (chunks < ROUND_CHUNKS) {
      const ref = this.nextSession(parts, continuing);
      if (!ref) break;
      const key = `${ref.userId}/${ref.sessionId}`;
      try {
        embedder ??= await this.options.embedder();
        const part = await this.readPart(ref, key, embedder);
        if (part) {
          parts.push(part);
          this.unwritten.set(key, (this.unwritten.get(key) ?? 0) + 1);
          chunks += part.chunks.length;
        } else {
          this.settle(key);
        }
      } catch (cause) {
        this.fail(ref, key, cause);
        this.settle(key);
      }
    }
    if (parts.length === 0) return undefined;
    const vectors = chunks > 0 && embedder ? embedChunks(embedder, parts.map((part) => part.chunks), chunkingFor(this.options.chunking, embedder)) : Promise.resolve([]);
    // Awaited in finishRound; a failure is handled there.
    vectors.catch(() => undefined);
    return { parts, vectors };
  }

  /**
   * A session under way with more to read, else the first queued one not in a round; one user's
   * sessions to a round, so a round of another user's backlog never holds a user's own rows back.
   */
  private nextSession(taken: readonly Part[], continuing: boolean): SessionRef | undefined {
    const user = taken[0]?.ref.userId;
    for (const [key] of this.cursors) {
      const ref = this.active.get(key);
      if (ref && (user === undefined || ref.userId === user) && !taken.some((part) => part.key === key)) return ref;
    }
    if (continuing) return undefined;
    for (const [key, ref] of this.queue) {
      if (this.active.has(key) || (user !== undefined && ref.userId !== user)) continue;
      this.queue.delete(key);
      this.active.set(key, ref);
      return ref;
    }
    return undefined;
  }

  private async readPart(ref: SessionRef, key: string, embedder: Embedder): Promise<Part | null> {
    const { store } = this.options;
    const chunking = chunkingFor(this.options.chunking, embedder);
    const after = this.cursors.get(key);
    this.cursors.delete(key);
    const restored = after === undefined ? this.restored.get(key) : undefined;
    if (restored) {
      this.restored.delete(key);
      await this.embedRestored(ref, [...restored], embedder, chunking);
    }
    const messages = await store.unembeddedMessages(ref.userId, ref.sessionId, { limit: ROUND, ...(after ? { after } : {}) });
    const last = messages[messages.length - 1];
    if (!last) return null;
    // A full read may leave more: the next round reads on from here.
    if (messages.length >= ROUND) this.cursors.set(key, last.id);
    return { ref, key, chunks: await chunkMessages(messages, chunking, { countLater: true }) };
  }

  /** Writes a round's rows and indexes them, session by session; a session with nothing left to read is then done. */
  private async finishRound(round: Round): Promise<void> {
    let vectors: Float32Array[];
    try {
      vectors = await round.vectors;
    } catch (cause) {
      for (const part of round.parts) {
        this.fail(part.ref, part.key, cause);
        this.written(part.key);
      }
      return;
    }
    const embedder = await this.options.embedder();
    let at = 0;
    for (const part of round.parts) {
      const rows = vectors.slice(at, at + part.chunks.length);
      at += part.chunks.length;
      try {
        if (part.chunks.length > 0 && !this.failed.has(part.key)) {
          await this.options.store.appendVectors(part.ref.userId, part.ref.sessionId, { model: embedder.modelId, chunks: part.chunks, vectors: rows });
          await this.options.onIndexed?.(part.ref.userId, part.ref.sessionId).catch(() => undefined);
        }
      } catch (cause) {
        this.fail(part.ref, part.key, cause);
      }
      this.written(part.key);
    }
  }

  private written(key: string): void {
    const left = (this.unwritten.get(key) ?? 1) - 1;
    if (left > 0) this.unwritten.set(key, left);
    else this.unwritten.delete(key);
    this.settle(key);
  }

  /**
   * A session with nothing left to read or write leaves the active set, and whoever waits for it
   * wakes. Its messages without rows after a failure are caught up by its next append or search.
   */
  private settle(key: string): void {
    if (this.unwritten.has(key) || this.cursors.has(key)) return;
    this.active.delete(key);
    this.failed.delete(key);
    this.wake();
  }

  /**
   * A session or user deleted while queued has nothing left to embed; an archived one is embedded
   * after it is unarchived (its messages without rows are caught up then). Anything else is kept
   * for the user's next flush. Either way the session's later parts are dropped.
   */
  private fail(ref: SessionRef, key: string, cause: unknown): void {
    this.failed.add(key);
    this.cursors.delete(key);
    if (isMemexError(cause, 'MEMEX_SESSION_NOT_FOUND') || isMemexError(cause, 'MEMEX_USER_NOT_FOUND') || isMemexError(cause, 'MEMEX_SESSION_ARCHIVED')) return;
    this.failures.push({ userId: ref.userId, error: toMemexError(cause, `cannot embed session ${ref.sessionId}`) });
  }

  private wake(): void {
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }

}
