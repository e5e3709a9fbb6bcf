import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import yazl from 'yazl';
import { MemexError, memexVersion, type EmbeddingModel, type SessionId, type SessionSummary } from '../core/index.js';
import { FILE_ARTIFACTS, sessionReader, type Store } from '../store/index.js';
import {
  artifactEntry,
  BACKUP_FORMAT,
  BACKUP_FORMAT_VERSION,
  fileEntry,
  MANIFEST_ENTRY,
  MANIFEST_SHA_ENTRY,
  messagesEntry,
  sessionEntry,
  trashedEntry,
  userEntry,
  vectorsEntry,
  zeroCounts,
  type BackupCounts,
  type BackupManifest,
  type ManifestEntry,
  type SessionRecord,
  type TrashedRow,
  type UserRecord,
  type VectorRow,
} from './format.js';

/** Vector rows per read (512-d rows: 2 KB each, so about 2 MB a window). */
const VECTOR_WINDOW = 1000;
const SESSION_PAGE = 200;

export interface BackupOptions {
  /** Only this user (default: every user of the store). */
  userId?: string;
  signal?: AbortSignal;
  onProgress?: (progress: BackupProgress) => void;
}

export interface BackupProgress {
  sessionsDone: number;
  sessionsTotal: number;
  messages: number;
  vectorRows: number;
  /** Uncompressed bytes written into the ZIP so far. */
  bytes: number;
}

export interface BackupWriter {
  /** The ZIP as it is made: pipe it to a file or a response. Read it, or the backup waits. */
  stream: Readable;
  /** The manifest, once the last entry is written (rejects, and the stream errors, on a failure). */
  manifest: Promise<BackupManifest>;
}

/**
 * Writes a store's data (one user's or everyone's) as a backup ZIP, streamed: entries are made one
 * after another from the store's own streams (messages, file bytes, vector windows), each hashed as
 * it passes into the ZIP, so neither a session nor a file is ever held in memory whole. The manifest,
 * with every entry's sha256 and the counts, goes in last. Works over any Store, so a backup of flat
 * files restores into PostgreSQL and back.
 */
export function writeBackup(store: Store, options: BackupOptions = {}): BackupWriter {
  const zip = new yazl.ZipFile();
  const writer = new Writer(store, zip, options);
  const manifest = writer.run();
  const stream = zip.outputStream as unknown as Readable;
  manifest.catch((cause: unknown) => stream.destroy(cause instanceof Error ? cause : new Error(String(cause))));
  return { stream, manifest };
}

class Writer {
  private readonly entries: ManifestEntry[] = [];
  private readonly counts = zeroCounts();
  private readonly mtime = new Date();
  private sessionsDone = 0;
  private sessionsTotal = 0;
  private bytes = 0;
  /** Set when the reader of the ZIP went away: nothing would ever read the next entry. */
  private gone: Error | null = null;

  constructor(
    private readonly store: Store,
    private readonly zip: yazl.ZipFile,
    private readonly options: BackupOptions,
  ) {
    (zip.outputStream as unknown as Readable).once('close', () => {
      this.gone ??= new MemexError('MEMEX_ABORTED', 'the backup was cancelled: its reader went away');
    });
  }

  async run(): Promise<BackupManifest> {
    const users = this.options.userId !== undefined ? [await this.store.getUser(this.options.userId)] : await this.store.listUsers();
    const model: EmbeddingModel | null = await this.store.getEmbeddingModel();
    for (const user of users) this.sessionsTotal += (await this.store.listSessions(user.id, { limit: 1, origin: 'all', trashed: 'include' })).total;
    const listed: BackupManifest['users'] = [];
    for (const user of users) listed.push({ id: user.id, sessions: await this.user(user.id) });
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      v: BACKUP_FORMAT_VERSION,
      memexVersion: memexVersion(),
      createdAt: this.mtime.toISOString(),
      scope: this.options.userId !== undefined && users[0] ? { kind: 'user', userId: users[0].id } : { kind: 'all' },
      model,
      counts: this.counts,
      users: listed,
      entries: this.entries,
    };
    const text = Buffer.from(`${JSON.stringify(manifest, null, 1)}\n`);
    this.zip.addBuffer(text, MANIFEST_ENTRY, { mtime: this.mtime });
    this.zip.addBuffer(Buffer.from(`${sha256(text)}  ${MANIFEST_ENTRY}\n`), MANIFEST_SHA_ENTRY, { mtime: this.mtime });
    this.zip.end();
    return manifest;
  }

  private check(): void {
    if (this.gone) throw this.gone;
    if (this.options.signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'the backup was cancelled; nothing usable was written', { cause: this.options.signal.reason });
  }

  private progress(): void {
    this.options.onProgress?.({ sessionsDone: this.sessionsDone, sessionsTotal: this.sessionsTotal, messages: this.counts.messages, vectorRows: this.counts.vectorRows, bytes: this.bytes });
  }

  private async user(userId: string): Promise<SessionId[]> {
    this.check();
    const record: UserRecord = {
      profile: await this.store.getUser(userId),
      personas: await this.store.listPersonas(userId),
      notes: await this.store.listNotes(userId),
      imports: await this.store.listImports(userId),
    };
    this.counts.users++;
    this.counts.personas += record.personas.length;
    this.counts.notes += record.notes.length;
    this.counts.imports += record.imports.length;
    this.addJson(userEntry(userId), record);
    const ids: SessionId[] = [];
    for await (const session of this.sessionsOf(userId)) {
      await this.session(userId, session);
      ids.push(session.id);
      this.sessionsDone++;
      this.progress();
    }
    return ids;
  }

  private async *sessionsOf(userId: string): AsyncGenerator<SessionSummary> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.store.listSessions(userId, { limit: SESSION_PAGE, origin: 'all', trashed: 'include', ...(cursor !== undefined ? { cursor } : {}) });
      if (page.unreadable.length > 0) {
        const [first] = page.unreadable;
        throw new MemexError('MEMEX_SESSION_CORRUPT', `session ${first?.sessionId} of user ${userId} cannot be read (${first?.code}); run \`memex doctor\` before backing up, so the backup is whole`, {
          details: { userId, unreadable: page.unreadable },
        });
      }
      yield* page.sessions;
      if (page.nextCursor === null) return;
      cursor = page.nextCursor;
    }
  }

  private async session(userId: string, listed: SessionSummary): Promise<void> {
    this.check();
    const sid = listed.id;
    // Read again, not as listed: the server's retention may have archived it since the page was read.
    const session = await this.store.getSession(userId, sid);
    // An archived session is read out of its archive (and stays archived); its record keeps `archivedAt`, so a restore archives it again.
    const reader = await sessionReader(this.store, userId, session);
    const status = await reader.vectorStatus();
    const files: SessionRecord['files'] = [];
    for (const record of await reader.listFiles()) {
      this.check();
      await this.addStream(fileEntry(userId, sid, record.id), await reader.readFile(record.id), !record.mimeType.startsWith('image/'));
      this.counts.files++;
      this.counts.fileBytes += record.size;
      const artifacts: SessionRecord['files'][number]['artifacts'] = [];
      for (const name of FILE_ARTIFACTS) {
        const bytes = await reader.readFileArtifact(record.id, name);
        if (bytes === null) continue;
        this.addBuffer(artifactEntry(userId, sid, record.id, name), bytes, !name.endsWith('.webp'));
        artifacts.push(name);
        this.counts.artifacts++;
      }
      files.push({ record, artifacts });
    }
    const summary = await reader.getSummary();
    if (summary) this.counts.summaries++;
    const { lastMessagePreview: _preview, ...rest } = session;
    const record: SessionRecord = { session: { ...rest, lastMessagePreview: null }, summary, files, vectors: { rows: status.rows, model: status.model, dimension: status.dimension } };
    this.addJson(sessionEntry(userId, sid), record);
    this.counts.sessions++;

    const signal = this.options.signal;
    const counts = this.counts;
    await this.addStream(
      messagesEntry(userId, sid),
      (async function* () {
        for await (const message of reader.streamMessages(signal ? { signal } : {})) {
          counts.messages++;
          yield `${JSON.stringify(message)}\n`;
        }
      })(),
    );
    if (status.rows > 0 && status.dimension !== null) {
      const dimension = status.dimension;
      await this.addStream(
        vectorsEntry(userId, sid),
        (async function* () {
          for (let from = 0; from < status.rows; ) {
            signal?.throwIfAborted();
            const window = await reader.readVectors({ from, limit: VECTOR_WINDOW });
            if (window.lines.length === 0) break;
            let text = '';
            for (const [i, line] of window.lines.entries()) {
              const { v: _v, row: _row, model: _model, ...chunk } = line;
              const vector = window.vectors.subarray(i * dimension, (i + 1) * dimension);
              const row: VectorRow = { ...chunk, vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') };
              text += `${JSON.stringify(row)}\n`;
            }
            counts.vectorRows += window.lines.length;
            from += window.lines.length;
            yield text;
          }
        })(),
      );
    }
    // The session's trash of messages (an archived session's read out of its archive).
    const trashed = await reader.readTrashedMessages();
    if (trashed.length > 0) {
      let text = '';
      for (const item of trashed) {
        const dimension = item.lines.length > 0 ? item.vectors.length / item.lines.length : 0;
        const rows = item.lines.map(({ v: _v, row: _row, model: _model, ...chunk }, i) => {
          const vector = item.vectors.subarray(i * dimension, (i + 1) * dimension);
          return { ...chunk, vector: Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64') };
        });
        const row: TrashedRow = { message: item.message, trashedAt: item.trashedAt, after: item.after, index: item.index, summary: item.summary, model: item.model, rows };
        text += `${JSON.stringify(row)}\n`;
      }
      this.addBuffer(trashedEntry(userId, sid), Buffer.from(text), true);
    }
  }

  private addJson(name: string, value: unknown): void {
    this.addBuffer(name, Buffer.from(`${JSON.stringify(value)}\n`), true);
  }

  private addBuffer(name: string, bytes: Buffer, compress: boolean): void {
    this.entries.push({ name, size: bytes.length, sha256: sha256(bytes) });
    this.bytes += bytes.length;
    this.zip.addBuffer(bytes, name, { mtime: this.mtime, compress });
  }

  /** Adds one entry from a stream and waits until the ZIP has taken all of it (so entries go one at a time). */
  private async addStream(name: string, source: AsyncIterable<Uint8Array | string>, compress = true): Promise<void> {
    this.check();
    const hash = createHash('sha256');
    let size = 0;
    const hashing = (async function* () {
      for await (const piece of source) {
        const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
        hash.update(bytes);
        size += bytes.length;
        yield bytes;
      }
    })();
    const readable = Readable.from(hashing, { objectMode: false });
    await new Promise<void>((resolve, reject) => {
      const onClose = (): void => {
        readable.destroy();
        reject(this.gone ?? new MemexError('MEMEX_ABORTED', 'the backup was cancelled'));
      };
      (this.zip.outputStream as unknown as Readable).once('close', onClose);
      readable.once('error', (error) => {
        (this.zip.outputStream as unknown as Readable).off('close', onClose);
        reject(error);
      });
      readable.once('end', () => {
        (this.zip.outputStream as unknown as Readable).off('close', onClose);
        resolve();
      });
      this.zip.addReadStreamLazy(name, { mtime: this.mtime, compress }, (callback) => callback(null, readable));
    });
    this.entries.push({ name, size, sha256: hash.digest('hex') });
    this.bytes += size;
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** What a backup holds, summed up. */
export type { BackupCounts };
