import type { SessionSummary } from '../../core/index.js';
import { sessionReader } from '../session-reader.js';
import { FILE_ARTIFACTS, type Store } from '../store.js';
import { canonicalJson, Digest } from './canonical.js';

/** What verification compares of one session on both sides: counts, and sha256 over a canonical form. */
export interface SessionDigest {
  /** The session's own fields (ids, title, persona, origin, metadata, times) and its message count. */
  session: string;
  messages: { count: number; sha256: string };
  /** Records, bytes and derived artifacts of its files. */
  files: { count: number; sha256: string };
  /** The lines and the float32 rows, in row order, and the model. */
  vectors: { rows: number; sha256: string };
  summary: string;
}

/** A user's own records: profile, personas and notes. */
export async function digestUser(store: Store, userId: string): Promise<string> {
  const digest = new Digest();
  digest.add(await store.getUser(userId));
  for (const persona of [...(await store.listPersonas(userId))].sort((a, b) => a.id.localeCompare(b.id))) digest.add(persona);
  for (const note of await store.listNotes(userId)) digest.add(note);
  return digest.hex();
}

/** Reads the whole session back (in windows, never all at once; an archived one from its archive, left archived) and sums it up. */
export async function digestSession(store: Store, userId: string, sessionId: string, options: { vectorWindow: number; signal?: AbortSignal }): Promise<SessionDigest> {
  const summary = await store.getSession(userId, sessionId);
  const reader = await sessionReader(store, userId, summary);
  const messages = new Digest();
  for await (const message of reader.streamMessages(options.signal ? { signal: options.signal } : {})) messages.add(message);

  const files = new Digest();
  const records = [...(await reader.listFiles())].sort((a, b) => a.id.localeCompare(b.id));
  for (const record of records) {
    files.add(record);
    for await (const piece of await reader.readFile(record.id)) files.bytes(piece);
    for (const name of FILE_ARTIFACTS) {
      const bytes = await reader.readFileArtifact(record.id, name);
      files.add({ artifact: name, present: bytes !== null });
      if (bytes) files.bytes(bytes);
    }
  }

  const vectors = new Digest();
  const status = await reader.vectorStatus();
  vectors.add({ model: status.model, dimension: status.dimension });
  for (let from = 0; from < status.rows; ) {
    options.signal?.throwIfAborted();
    const window = await reader.readVectors({ from, limit: options.vectorWindow });
    if (window.lines.length === 0) break;
    for (const line of window.lines) vectors.add(line);
    vectors.bytes(new Uint8Array(window.vectors.buffer, window.vectors.byteOffset, window.vectors.byteLength));
    from += window.lines.length;
  }

  return {
    session: canonicalJson(sessionFields(summary)),
    messages: { count: messages.count, sha256: messages.hex() },
    files: { count: records.length, sha256: files.hex() },
    vectors: { rows: status.rows, sha256: vectors.hex() },
    summary: canonicalJson(await reader.getSummary()),
  };
}

/** The fields of a session a copy keeps (the preview is left out: it is made from the last message). */
export function sessionFields(session: SessionSummary): Record<string, unknown> {
  const { id, userId, title, titleSource, personaId, origin, metadata, createdAt, updatedAt, messageCount, lastMessageAt, forkedFrom, forks, mergedFrom, participants, archivedAt } = session;
  return { id, userId, title, titleSource, personaId, origin, metadata, createdAt, updatedAt, messageCount, lastMessageAt, forkedFrom, forks, mergedFrom, participants, archivedAt };
}

/** The parts of two digests of one session that differ. */
export function differences(source: SessionDigest, target: SessionDigest): string[] {
  return (Object.keys(source) as (keyof SessionDigest)[]).filter((part) => canonicalJson(source[part]) !== canonicalJson(target[part]));
}
