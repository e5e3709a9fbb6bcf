import { isMemexError, type Chunk, type FileRecord, type Message, type NewMessage, type SessionSummary } from '../../core/index.js';
import { toNewMessage } from '../migrate/index.js';
import { FILE_ARTIFACTS, USAGE_KEY, type Store } from '../store.js';

/** Messages per append: one write each, small enough to bound the memory of one batch. */
const MESSAGE_BATCH = 500;
/** Rows read per window of a source's vectors. */
const ROW_WINDOW = 1000;

/** A row to copy: a chunk with its vector, and where it goes in the copy's log (files last). */
export interface CopiedRow {
  chunk: Chunk;
  vector: Float32Array;
  model: string;
}

/**
 * A new native session shaped like `like` (title, persona, metadata without the source's usage
 * totals, participants), then given `lineage` by a restore of its own fields: createSession picks a
 * free id, which a restore alone would overwrite.
 */
export async function createCopy(
  store: Store,
  userId: string,
  like: { title: string | null; personaId: SessionSummary['personaId']; metadata: SessionSummary['metadata']; participants: SessionSummary['participants'] },
  lineage: Pick<SessionSummary, 'forkedFrom' | 'mergedFrom'>,
): Promise<SessionSummary> {
  const { [USAGE_KEY]: _usage, ...metadata } = like.metadata;
  const created = await store.createSession(userId, {
    ...(like.title !== null ? { title: like.title } : {}),
    personaId: like.personaId,
    metadata,
    participants: like.participants,
  });
  return store.restoreSession(userId, { ...created, ...lineage });
}

/** Appends the messages as they are (ids, times, attachments), in batches. */
export async function appendCopies(store: Store, userId: string, sessionId: string, messages: readonly NewMessage[]): Promise<void> {
  for (let i = 0; i < messages.length; i += MESSAGE_BATCH) await store.appendMessages(userId, sessionId, messages.slice(i, i + MESSAGE_BATCH));
}

export function copyOf(message: Message): NewMessage {
  return toNewMessage(message);
}

/** Copies the files (bytes, what ingest learned, derived artifacts) from one session into another; resolves with how many. */
export async function copyFiles(store: Store, userId: string, from: string, to: string, files: readonly FileRecord[]): Promise<number> {
  for (const file of files) {
    await store.putFile(userId, to, { source: { stream: await store.readFile(userId, from, file.id) }, name: file.name, metadata: file.metadata, createdAt: file.createdAt });
    if (file.content) await store.setFileContent(userId, to, file.id, file.content);
    for (const name of FILE_ARTIFACTS) {
      const bytes = await store.readFileArtifact(userId, from, file.id, name).catch((cause: unknown) => {
        if (isMemexError(cause, 'MEMEX_FILE_NOT_FOUND')) return null;
        throw cause;
      });
      if (bytes) await store.writeFileArtifact(userId, to, file.id, name, bytes);
    }
  }
  return files.length;
}

/** The session's rows that `keep` takes, read in windows, with their vectors. */
export async function readRows(store: Store, userId: string, sessionId: string, keep: (chunk: Chunk) => boolean): Promise<CopiedRow[]> {
  const out: CopiedRow[] = [];
  for (let from = 0; ; ) {
    const window = await store.readVectors(userId, sessionId, { from, limit: ROW_WINDOW });
    if (window.lines.length === 0 || window.dimension === null || window.model === null) return out;
    const dimension = window.dimension;
    for (const [i, line] of window.lines.entries()) {
      const { v: _v, row: _row, model, ...chunk } = line;
      // slice, not subarray: the window's buffer is not kept alive by one row.
      if (keep(chunk)) out.push({ chunk, vector: window.vectors.slice(i * dimension, (i + 1) * dimension), model });
    }
    from += window.lines.length;
    if (from >= window.rows) return out;
  }
}

/**
 * Appends copied rows (never re-embedded). The store keeps only rows of messages after the last
 * one with rows, so they go in the copy's log order (`position` of each message; file rows last),
 * in windows. Resolves with the rows the copy holds.
 */
export async function appendRows(store: Store, userId: string, sessionId: string, rows: readonly CopiedRow[], position: ReadonlyMap<string, number>): Promise<number> {
  const place = (row: CopiedRow): number => (row.chunk.source.kind === 'message' ? (position.get(row.chunk.source.messageId) ?? Number.MAX_SAFE_INTEGER) : Number.MAX_SAFE_INTEGER);
  // Stable: a message's rows, and a file's, keep their order.
  const ordered = [...rows].sort((a, b) => place(a) - place(b));
  let status = await store.vectorStatus(userId, sessionId);
  for (let i = 0; i < ordered.length; i += ROW_WINDOW) {
    const window = ordered.slice(i, i + ROW_WINDOW);
    const model = window[0]?.model as string;
    status = await store.appendVectors(userId, sessionId, { model, chunks: window.map((r) => r.chunk), vectors: window.map((r) => r.vector) });
  }
  return status.rows;
}

/** Removes a half-made copy after a failure; the failure is what the caller hears. */
export async function discard(store: Store, userId: string, sessionId: string): Promise<void> {
  await store.deleteSession(userId, sessionId).catch(() => undefined);
}
