import { MemexError, parseId, type Message, type SessionSummary } from '../../core/index.js';
import type { Store } from '../store.js';
import { appendCopies, appendRows, copyFiles, copyOf, createCopy, discard, readRows } from './copy.js';

export interface ForkOptions {
  /** The fork's title; default the source's. */
  title?: string;
}

export interface ForkResult {
  /** The new session, with `forkedFrom`. */
  session: SessionSummary;
  messages: number;
  files: number;
  /** Vector rows copied from the source (not embedded again). */
  vectorRows: number;
}

/**
 * A new session holding the source's turns up to and including `messageId`: the same messages
 * (ids, times, metadata, attachments), the files they attach, and the source's vector rows of
 * those messages and files, copied as they are, so nothing is embedded again. Message ids are
 * unique within a session only (the store's key is user, session, message), so the fork keeps
 * them: a merge of the fork with its source recognises the shared turns by id.
 *
 * The fork has no summary: the first window built for it summarizes its older turns afresh (the
 * source's summary may cover turns after the fork point). The source lists the fork in `forks`;
 * the fork names the source and message in `forkedFrom`. A fork of an imported conversation is a
 * native session, so the conversation can go on there. On failure the half-made fork is removed.
 */
export async function forkSession(store: Store, userId: string, sessionId: string, messageId: string, options: ForkOptions = {}): Promise<ForkResult> {
  const source = await store.getSession(userId, sessionId);
  const at = await store.getMessage(userId, sessionId, parseId('message', messageId));
  const kept: Message[] = [];
  for await (const message of store.streamMessages(userId, sessionId)) {
    kept.push(message);
    if (message.id === at.id) break;
  }
  const title = options.title !== undefined ? options.title.trim() : source.title;
  if (title === '') throw new MemexError('MEMEX_INVALID_INPUT', 'a fork title must not be empty');
  const fork = await createCopy(store, userId, { ...source, title }, { forkedFrom: { sessionId: source.id, messageId: at.id }, mergedFrom: [] });
  try {
    const keptIds = new Set(kept.map((m) => m.id));
    const attached = new Set(kept.flatMap((m) => m.attachments.map((a) => a.fileId)));
    const files = (await store.listFiles(userId, sessionId)).filter((file) => attached.has(file.id));
    await copyFiles(store, userId, sessionId, fork.id, files);
    await appendCopies(store, userId, fork.id, kept.map(copyOf));
    const rows = await readRows(store, userId, sessionId, (chunk) => (chunk.source.kind === 'message' ? keptIds.has(chunk.source.messageId) : attached.has(chunk.source.fileId)));
    const vectorRows = await appendRows(store, userId, fork.id, rows, new Map(kept.map((m, i) => [m.id, i])));
    await store.updateSession(userId, sessionId, { addFork: fork.id });
    return { session: await store.getSession(userId, fork.id), messages: kept.length, files: files.length, vectorRows };
  } catch (cause) {
    await discard(store, userId, fork.id);
    throw cause;
  }
}
