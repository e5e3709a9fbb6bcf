import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { MemexError, parseInput, SessionIdSchema, type FileRecord, type Message, type NewMessage, type SessionSummary } from '../../core/index.js';
import type { Store } from '../store.js';
import { appendCopies, appendRows, copyFiles, copyOf, createCopy, discard, readRows, type CopiedRow } from './copy.js';

/** The metadata key on each merged message naming the sessions it came from. */
export const MERGED_FROM_KEY = 'mergedFrom';

export const MergeOptionsSchema = z.strictObject({
  /** `time`: every message in the order it was written (createdAt), across the sessions; `concat`: each session's messages after the one before. */
  mode: z.enum(['time', 'concat']).default('time'),
  /** The merged session's title; default the first session's. */
  title: z.string().trim().min(1).max(500).optional(),
  /** Delete the sources once the merge is written (default: keep them). */
  deleteSources: z.boolean().default(false),
});
export type MergeOptions = z.input<typeof MergeOptionsSchema>;

export const MergeSessionIdsSchema = z.array(SessionIdSchema).min(2).max(100);

export interface MergeResult {
  /** The new session, with `mergedFrom`. */
  session: SessionSummary;
  messages: number;
  /** Messages that more than one source held (a fork and its source share their turns up to the fork point), kept once. */
  shared: number;
  files: number;
  /** Vector rows copied from the sources (not embedded again). */
  vectorRows: number;
}

/**
 * One new session holding the messages of several, each kept with its id, time, attachments and
 * metadata plus `metadata.mergedFrom` (the sources that held it), the sources' files and their
 * vector rows copied as they are. Message ids are unique within a session, not across sessions:
 * the same id in two sources is one message when its role, content and time agree (the shared
 * turns of a fork and its source), and MEMEX_MERGE_CONFLICT when they do not. The sources are
 * kept (the facade deletes them with `deleteSources`, after this returns). The merged session has
 * no summary: its first window summarizes the older turns. On failure the half-made session is removed.
 */
export async function mergeSessions(store: Store, userId: string, sessionIds: readonly string[], options: MergeOptions = {}): Promise<MergeResult> {
  const ids = parseInput(MergeSessionIdsSchema, sessionIds, 'sessions to merge');
  const { mode, title } = parseInput(MergeOptionsSchema, options, 'merge options');
  if (new Set(ids).size !== ids.length) throw new MemexError('MEMEX_INVALID_INPUT', 'a session is named twice in the merge');
  const sources = await Promise.all(ids.map((id) => store.getSession(userId, id)));
  const logs: Message[][] = [];
  for (const source of sources) {
    const log: Message[] = [];
    for await (const message of store.streamMessages(userId, source.id)) log.push(message);
    logs.push(log);
  }
  const picked = order(logs, mode);
  const { messages, shared } = dedupe(picked, sources);
  const first = sources[0] as SessionSummary;
  const merged = await createCopy(
    store,
    userId,
    {
      title: title ?? first.title,
      personaId: sources.find((s) => s.personaId !== null)?.personaId ?? null,
      metadata: first.metadata,
      participants: [...new Set(sources.flatMap((s) => s.participants))],
    },
    { forkedFrom: null, mergedFrom: ids },
  );
  try {
    // Files are content-addressed: the same bytes in two sources are one file.
    const files = new Map<string, { from: string; file: FileRecord }>();
    for (const source of sources) for (const file of await store.listFiles(userId, source.id)) if (!files.has(file.id)) files.set(file.id, { from: source.id, file });
    for (const { from, file } of files.values()) await copyFiles(store, userId, from, merged.id, [file]);
    await appendCopies(store, userId, merged.id, messages);
    const chunkIds = new Set<string>();
    const rows: CopiedRow[] = [];
    for (const source of sources) {
      // A shared message's rows are the same in every source that holds it: kept once.
      for (const row of await readRows(store, userId, source.id, (chunk) => !chunkIds.has(chunk.chunkId))) {
        chunkIds.add(row.chunk.chunkId);
        rows.push(row);
      }
    }
    const vectorRows = await appendRows(store, userId, merged.id, rows, new Map(messages.map((m, i) => [m.id as string, i])));
    return { session: await store.getSession(userId, merged.id), messages: messages.length, shared, files: files.size, vectorRows };
  } catch (cause) {
    await discard(store, userId, merged.id);
    throw cause;
  }
}

interface Picked {
  message: Message;
  source: number;
}

/** The sources' messages in merge order: by time (stable: equal times keep the sources' order), or one source after another. */
function order(logs: readonly Message[][], mode: 'time' | 'concat'): Picked[] {
  const all = logs.flatMap((log, source) => log.map((message) => ({ message, source })));
  if (mode === 'concat') return all;
  return all.sort((a, b) => Date.parse(a.message.createdAt) - Date.parse(b.message.createdAt));
}

/** Each message once, at its first place, naming every source that held it. */
function dedupe(picked: readonly Picked[], sources: readonly SessionSummary[]): { messages: NewMessage[]; shared: number } {
  const byId = new Map<string, { message: Message; from: string[] }>();
  const kept: { message: Message; from: string[] }[] = [];
  for (const { message, source } of picked) {
    const sessionId = (sources[source] as SessionSummary).id;
    const seen = byId.get(message.id);
    if (!seen) {
      const entry = { message, from: [sessionId] };
      byId.set(message.id, entry);
      kept.push(entry);
      continue;
    }
    if (!sameMessage(seen.message, message)) {
      throw new MemexError('MEMEX_MERGE_CONFLICT', `sessions ${seen.from[0] ?? '?'} and ${sessionId} both hold a message ${message.id}, with different content`, {
        details: { messageId: message.id, sessionIds: [seen.from[0], sessionId] },
      });
    }
    if (!seen.from.includes(sessionId)) seen.from.push(sessionId);
  }
  return {
    messages: kept.map(({ message, from }) => {
      const copy = copyOf(message);
      return { ...copy, metadata: { ...message.metadata, [MERGED_FROM_KEY]: from } };
    }),
    shared: picked.length - kept.length,
  };
}

function sameMessage(a: Message, b: Message): boolean {
  return a.role === b.role && a.content === b.content && a.createdAt === b.createdAt && isDeepStrictEqual(a.parts, b.parts) && isDeepStrictEqual(a.attachments, b.attachments);
}
