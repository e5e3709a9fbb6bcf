import { isMemexError, MemexError, type FileRecord, type Message, type SessionSummary, type Summary } from '../core/index.js';
import type { ArchivedSessionContent, FileArtifactName, SessionVectorData, Store, TrashedMessageCopy, VectorStatus } from './store.js';

/**
 * One session's content read the same way whether it is live or archived: what carries sessions
 * from one store to another (backup, `memex migrate`) reads through this, so an archived session
 * travels whole instead of answering MEMEX_SESSION_ARCHIVED. A live session is read from the store
 * as it goes (streams and windows); an archived one is decoded once (`Store.readArchivedSession`,
 * held in memory) and served from that copy, leaving the archive as it was.
 */
export interface SessionReader {
  readonly archived: boolean;
  vectorStatus(): Promise<VectorStatus>;
  readVectors(options?: { from?: number; limit?: number }): Promise<SessionVectorData>;
  /** In creation order, as `Store.listFiles`. */
  listFiles(): Promise<FileRecord[]>;
  readFile(fileId: string): Promise<AsyncIterable<Uint8Array>>;
  /** Null when the file has no such artifact. */
  readFileArtifact(fileId: string, name: FileArtifactName): Promise<Buffer | null>;
  streamMessages(options?: { signal?: AbortSignal }): AsyncIterable<Message>;
  getSummary(): Promise<Summary | null>;
  /** Its message trash (`Store.readTrashedMessages`), oldest trashed first. */
  readTrashedMessages(): Promise<TrashedMessageCopy[]>;
}

export async function sessionReader(store: Store, userId: string, session: Pick<SessionSummary, 'id' | 'archivedAt'>): Promise<SessionReader> {
  if (session.archivedAt !== null) {
    const content = await store.readArchivedSession(userId, session.id).catch((cause: unknown) => {
      // Unarchived since it was listed: it reads as a live session now.
      if (isMemexError(cause, 'MEMEX_SESSION_NOT_ARCHIVED')) return null;
      throw cause;
    });
    if (content) return archivedReader(content);
  }
  return liveReader(store, userId, session.id);
}

function liveReader(store: Store, userId: string, sessionId: string): SessionReader {
  return {
    archived: false,
    vectorStatus: () => store.vectorStatus(userId, sessionId),
    readVectors: (options) => store.readVectors(userId, sessionId, options),
    listFiles: () => store.listFiles(userId, sessionId),
    readFile: (fileId) => store.readFile(userId, sessionId, fileId),
    readFileArtifact: (fileId, name) =>
      store.readFileArtifact(userId, sessionId, fileId, name).catch((cause: unknown) => {
        if (isMemexError(cause, 'MEMEX_FILE_NOT_FOUND')) return null;
        throw cause;
      }),
    streamMessages: (options) => store.streamMessages(userId, sessionId, options),
    getSummary: () => store.getSummary(userId, sessionId),
    readTrashedMessages: () => store.readTrashedMessages(userId, sessionId),
  };
}

function archivedReader(content: ArchivedSessionContent): SessionReader {
  const { vectors, files } = content;
  const { rows, model, dimension, tail } = vectors;
  const fileOf = (fileId: string): (typeof files)[number] => {
    const file = files.find((f) => f.record.id === fileId);
    if (!file) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fileId} is not in session ${content.session.id}`, { details: { sessionId: content.session.id, fileId } });
    return file;
  };
  return {
    archived: true,
    vectorStatus: () => Promise.resolve({ rows, model, dimension, tail }),
    readVectors: (options = {}) => {
      const from = Math.min(options.from ?? 0, rows);
      const to = options.limit === undefined ? rows : Math.min(rows, from + options.limit);
      const d = dimension ?? 0;
      return Promise.resolve({ rows, model, dimension, tail, from, lines: vectors.lines.slice(from, to), vectors: vectors.vectors.subarray(from * d, to * d) });
    },
    listFiles: () => Promise.resolve(files.map((f) => f.record)),
    readFile: (fileId) => Promise.resolve(iterate([fileOf(fileId).bytes])),
    readFileArtifact: (fileId, name) => Promise.resolve(fileOf(fileId).artifacts[name] ?? null),
    streamMessages: (options = {}) => iterate(content.messages, options.signal),
    getSummary: () => Promise.resolve(content.summary),
    readTrashedMessages: () => Promise.resolve(content.trashedMessages),
  };
}

/** Items held in memory as the async iterable a live read gives. */
function iterate<T>(items: readonly T[], signal?: AbortSignal): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]: () => {
      let next = 0;
      return {
        next: () => {
          if (signal?.aborted) return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
          const value = items[next];
          next++;
          return Promise.resolve(value === undefined ? { done: true, value: undefined } : { done: false, value });
        },
      };
    },
  };
}
