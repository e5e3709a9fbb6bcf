import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import { FORMAT_VERSION, MemexError, toMemexError, type Config, type FileRecord } from '../core/index.js';
import { chunkMessages, chunkingFor } from '../chunking/index.js';
import { throwIfAborted, type Embedder } from '../embedding/index.js';
import type { Store } from '../store/index.js';
import { embedChunks } from './embed-chunks.js';
import type { SessionRef } from './message-indexer.js';
import { sessionFileChunks } from './ingest-file.js';

export interface ReindexOptions {
  /** Only this user's sessions; the model must then be the data dir's already (a change re-embeds everyone). */
  userId?: string;
  /** Re-embed every session, not only those with rows of another model or messages without rows. */
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (progress: ReindexProgress) => void;
}

export interface ReindexProgress {
  sessionsDone: number;
  sessionsTotal: number;
  /** The session just finished, or null before the first. */
  session: SessionRef | null;
  messages: number;
  chunks: number;
}

export interface ReindexResult {
  model: string;
  dimension: number;
  sessionsTotal: number;
  /** Sessions re-embedded in this run. */
  sessionsEmbedded: number;
  /** Sessions already current (or done by an interrupted earlier run) and left alone. */
  sessionsSkipped: number;
  messages: number;
  chunks: number;
  /** True when an interrupted `--force` run was picked up where it stopped. */
  resumed: boolean;
}

/**
 * Re-embeds stored content with `embedder`, one session at a time: each session's new rows replace
 * its old ones in one atomic swap, so an interruption leaves every session either fully old or
 * fully new. Running it again resumes: sessions whose rows are already from the target model and
 * complete are skipped; with `force` (where every session is "current"), a journal of finished
 * sessions (`journalPath`) tells them apart. The data dir's recorded model changes only when every
 * session is done.
 */
export async function reindex(
  store: Store,
  embedder: Embedder,
  chunkingConfig: Config['chunking'],
  journalPath: string,
  options: ReindexOptions = {},
): Promise<ReindexResult> {
  const { signal, onProgress } = options;
  const target = { model: embedder.modelId, dimension: embedder.dimension };
  const recorded = await store.getEmbeddingModel();
  const changing = recorded !== null && (recorded.model !== target.model || recorded.dimension !== target.dimension);
  if (changing && options.userId !== undefined) {
    throw new MemexError('MEMEX_INVALID_INPUT', `switching the data dir from ${recorded.model} to ${target.model} re-embeds every user; run \`memex reindex\` without --user`);
  }
  const chunking = chunkingFor(chunkingConfig, embedder);
  const journal = options.force ? await Journal.open(journalPath, `${target.model}|${options.userId ?? '*'}`) : null;

  const sessions: SessionRef[] = [];
  const users = options.userId !== undefined ? [await store.getUser(options.userId)] : await store.listUsers();
  for (const user of users) {
    for (let offset = 0; ; ) {
      // Archived sessions keep the rows they were archived with (README "Archive and retention").
      const page = await store.listSessions(user.id, { offset, limit: 500, archived: 'exclude', trashed: 'include' });
      for (const session of page.sessions) sessions.push({ userId: user.id, sessionId: session.id });
      offset += page.sessions.length;
      if (page.sessions.length === 0 || offset >= page.total) break;
    }
  }

  const result: ReindexResult = { ...target, sessionsTotal: sessions.length, sessionsEmbedded: 0, sessionsSkipped: 0, messages: 0, chunks: 0, resumed: (journal?.done.size ?? 0) > 0 };
  const report = (session: SessionRef | null): void =>
    onProgress?.({ sessionsDone: result.sessionsEmbedded + result.sessionsSkipped, sessionsTotal: sessions.length, session, messages: result.messages, chunks: result.chunks });
  report(null);
  for (const ref of sessions) {
    throwIfAborted(signal);
    if (journal ? journal.done.has(`${ref.userId}/${ref.sessionId}`) : await isCurrent(store, ref, target.model)) {
      result.sessionsSkipped += 1;
      report(ref);
      continue;
    }
    const messages = [];
    for await (const message of store.streamMessages(ref.userId, ref.sessionId, signal ? { signal } : {})) messages.push(message);
    const files = await sessionFileChunks(store, ref.userId, ref.sessionId, chunking);
    const chunks = [...(await chunkMessages(messages, chunking, { countLater: true })), ...files.flatMap((f) => f.chunks)];
    const vectors = await embedChunks(embedder, [chunks], chunking, signal ? { signal } : {});
    throwIfAborted(signal);
    await store.replaceVectors(ref.userId, ref.sessionId, { model: target.model, chunks, vectors });
    // Another model may cut a file's text into another number of chunks.
    for (const { file, chunks: fileChunks } of files) {
      if (file.content && file.content.chunks !== fileChunks.length) await store.setFileContent(ref.userId, ref.sessionId, file.id, { ...file.content, chunks: fileChunks.length });
    }
    await journal?.add(`${ref.userId}/${ref.sessionId}`);
    result.sessionsEmbedded += 1;
    result.messages += messages.length;
    result.chunks += chunks.length;
    report(ref);
  }
  await store.setEmbeddingModel(target, { replace: true });
  await journal?.finish();
  return result;
}

/**
 * Embeds again the chunks of ingested files whose rows were lost (vector files damaged and
 * reconciled, or deleted): their text stays in the file's `text.json`, so nothing is parsed
 * again. Chunks that still have rows are skipped by the store. What `memex doctor` runs.
 */
export async function repairFileRows(
  store: Store,
  embedder: Embedder,
  chunkingConfig: Config['chunking'],
  ref: SessionRef,
): Promise<{ files: number; chunks: number }> {
  const ingested = await ingestedFiles(store, ref);
  if (ingested.length === 0) return { files: 0, chunks: 0 };
  const { byFile, rows: before } = await fileRows(store, ref);
  const short = ingested.filter((file) => (byFile.get(file.id) ?? 0) < (file.content?.chunks ?? 0));
  if (short.length === 0) return { files: 0, chunks: 0 };
  // Only the short files' text is read and cut again.
  const chunking = chunkingFor(chunkingConfig, embedder);
  const chunks = (await sessionFileChunks(store, ref.userId, ref.sessionId, chunking, short)).flatMap((f) => f.chunks);
  const vectors = await embedder.embed(chunks.map((chunk) => chunk.text));
  const after = (await store.appendVectors(ref.userId, ref.sessionId, { model: embedder.modelId, chunks, vectors })).rows;
  return { files: short.length, chunks: after - before };
}

/** The session's files that ingest made chunks of. */
async function ingestedFiles(store: Store, ref: SessionRef): Promise<FileRecord[]> {
  return (await store.listFiles(ref.userId, ref.sessionId)).filter((file) => (file.content?.chunks ?? 0) > 0);
}

/** The session's rows, and how many of them each file has. */
async function fileRows(store: Store, ref: SessionRef): Promise<{ byFile: Map<string, number>; rows: number }> {
  const { lines } = await store.readVectors(ref.userId, ref.sessionId);
  const byFile = new Map<string, number>();
  for (const line of lines) {
    if (line.source.kind === 'file') byFile.set(line.source.fileId, (byFile.get(line.source.fileId) ?? 0) + 1);
  }
  return { byFile, rows: lines.length };
}

/** Rows all from `model`, and no message with text left without rows (attachment-only ones have none). */
async function isCurrent(store: Store, ref: SessionRef, model: string): Promise<boolean> {
  const status = await store.vectorStatus(ref.userId, ref.sessionId);
  if (status.rows > 0 && status.model !== model) return false;
  const pending = await store.unembeddedMessages(ref.userId, ref.sessionId);
  if (!pending.every((message) => message.content.trim() === '')) return false;
  // Every ingested file has all its rows (a repair on open may have dropped some).
  const files = await ingestedFiles(store, ref);
  if (files.length === 0) return true;
  const { byFile } = await fileRows(store, ref);
  return files.every((file) => byFile.get(file.id) === file.content?.chunks);
}

/** Finished sessions of a forced reindex, one JSON line each, so a rerun resumes. */
class Journal {
  private constructor(
    private readonly path: string,
    readonly done: Set<string>,
  ) {}

  static async open(path: string, scope: string): Promise<Journal> {
    const done = new Set<string>();
    const text = await readFile(path, 'utf8').catch(() => '');
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    const header = safeParse(lines[0]);
    if (header?.scope === scope) {
      for (const line of lines.slice(1)) {
        const entry = safeParse(line);
        if (typeof entry?.session === 'string') done.add(entry.session);
      }
    } else {
      const header = { v: FORMAT_VERSION, kind: 'memex-reindex', scope, startedAt: new Date().toISOString() };
      await writeFile(path, `${JSON.stringify(header)}\n`).catch((cause: unknown) => {
        throw toMemexError(cause, `cannot write ${path}`);
      });
    }
    return new Journal(path, done);
  }

  async add(session: string): Promise<void> {
    this.done.add(session);
    await appendFile(this.path, `${JSON.stringify({ session })}\n`);
  }

  async finish(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

function safeParse(line: string | undefined): Record<string, unknown> | null {
  if (line === undefined) return null;
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null;
  } catch {
    return null; // a torn last line from an interrupted run: that session is simply done again
  }
}
