import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { isMemexError } from '../../src/core/index.js';
import { FILE_ARTIFACTS, type Store, type TrashedMessageCopy } from '../../src/store/index.js';

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * Everything a store holds, read through the contract, in a form `toEqual` compares: messages
 * whole (ids, times, roles, content, metadata, attachments), files by their bytes' hash, vector
 * rows as their lines and the hash of each row's float32 bytes. The preview is left out (derived).
 */
export async function snapshot(store: Store): Promise<unknown> {
  const users = [];
  for (const profile of await store.listUsers()) {
    const sessions = [];
    const page = await store.listSessions(profile.id, { limit: 1000, trashed: 'include' });
    for (const summary of [...page.sessions].sort((a, b) => a.id.localeCompare(b.id))) {
      const { lastMessagePreview: _preview, ...session } = summary;
      if (session.archivedAt !== null) {
        sessions.push({ session, ...(await archivedSnapshot(store, profile.id, session.id)) });
        continue;
      }
      const files = [];
      for (const file of await store.listFiles(profile.id, session.id)) {
        const bytes = Buffer.concat(await collect(await store.readFile(profile.id, session.id, file.id)));
        const artifacts: Record<string, string | null> = {};
        for (const name of FILE_ARTIFACTS) {
          artifacts[name] = await store.readFileArtifact(profile.id, session.id, file.id, name).then(sha, (cause: unknown) => {
            if (isMemexError(cause, 'MEMEX_FILE_NOT_FOUND')) return null;
            throw cause;
          });
        }
        files.push({ file, bytes: sha(bytes), artifacts });
      }
      const vectors = await store.readVectors(profile.id, session.id);
      const dimension = vectors.dimension ?? 0;
      const rows = vectors.lines.map((line, i) => ({ line, row: sha(new Uint8Array(vectors.vectors.buffer, vectors.vectors.byteOffset + i * dimension * 4, dimension * 4)) }));
      sessions.push({
        session,
        messages: await collect(store.streamMessages(profile.id, session.id)),
        files,
        vectors: { rows: vectors.rows, model: vectors.model, dimension: vectors.dimension, tail: vectors.tail, lines: rows },
        summary: await store.getSummary(profile.id, session.id),
        trashedMessages: trashedView(await store.readTrashedMessages(profile.id, session.id)),
      });
    }
    users.push({ profile, personas: await store.listPersonas(profile.id), notes: await store.listNotes(profile.id), sessions });
  }
  return { model: await store.getEmbeddingModel(), users };
}

/** A session's message trash with each row by the hash of its bytes. */
function trashedView(items: readonly TrashedMessageCopy[]): unknown {
  return items.map(({ lines, vectors, ...item }) => {
    const width = lines.length > 0 ? vectors.length / lines.length : 0;
    // A row's number is its place in the session when it was trashed: not kept by every backend.
    return { ...item, lines: lines.map(({ row: _row, ...line }, i) => ({ line, row: sha(new Uint8Array(vectors.buffer, vectors.byteOffset + i * width * 4, width * 4)) })) };
  });
}

/** An archived session's content, read from its archive (it stays archived), in the form `snapshot` gives a live one. */
async function archivedSnapshot(store: Store, userId: string, sessionId: string): Promise<Record<string, unknown>> {
  const content = await store.readArchivedSession(userId, sessionId);
  const { vectors } = content;
  const dimension = vectors.dimension ?? 0;
  const rows = vectors.lines.map((line, i) => ({ line, row: sha(new Uint8Array(vectors.vectors.buffer, vectors.vectors.byteOffset + i * dimension * 4, dimension * 4)) }));
  return {
    messages: content.messages,
    files: content.files.map(({ record, bytes, artifacts }) => ({ file: record, bytes: sha(bytes), artifacts: Object.fromEntries(FILE_ARTIFACTS.map((name) => [name, artifacts[name] ? sha(artifacts[name]) : null])) })),
    vectors: { rows: vectors.rows, model: vectors.model, dimension: vectors.dimension, tail: vectors.tail, lines: rows },
    summary: content.summary,
    trashedMessages: trashedView(content.trashedMessages),
  };
}

/** Every file of a data dir with its size and mtime: what "a second run changes nothing" is checked against. */
export async function filesOf(dir: string): Promise<Record<string, { size: number; mtimeMs: number }>> {
  const out: Record<string, { size: number; mtimeMs: number }> = {};
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name !== 'memex.lock') {
        const info = await stat(path);
        out[relative(dir, path)] = { size: info.size, mtimeMs: info.mtimeMs };
      }
    }
  };
  await walk(dir);
  return out;
}
