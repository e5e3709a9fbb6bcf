import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import {
  FORMAT_VERSION,
  isMemexError,
  MemexError,
  MessageSchema,
  parseId,
  type Chunk,
  type Message,
  type NewMessage,
  type SessionSummary,
  type UserId,
} from '../core/index.js';
import { ZipArchive, type ZipLimits } from '../import/index.js';
import { toNewMessage, type RestoredSession, type Store, type TrashedMessageCopy } from '../store/index.js';
import {
  artifactEntry,
  BACKUP_FORMAT_VERSION,
  BackupManifestSchema,
  fileEntry,
  MANIFEST_ENTRY,
  MANIFEST_SHA_ENTRY,
  messagesEntry,
  sessionEntry,
  trashedEntry,
  TrashedRowSchema,
  SessionRecordSchema,
  userEntry,
  UserRecordSchema,
  vectorsEntry,
  VectorRowSchema,
  zeroCounts,
  type BackupCounts,
  type BackupManifest,
  type SessionRecord,
  type UserRecord,
} from './format.js';

/**
 * Limits for reading a backup ZIP: far more entries than a chat export (five or so per session),
 * the same total and ratio guards against a ZIP bomb. The HTTP route passes tighter ones.
 */
export const BACKUP_ZIP_LIMITS: Readonly<ZipLimits> = Object.freeze({ maxEntries: 2_000_000, maxTotalBytes: 256 * 1024 ** 3, maxRatio: 200, ratioMinBytes: 1024 ** 2 });

/** Largest JSON entry read whole (the manifest, a user's or a session's record). */
const MAX_JSON_BYTES = 256 * 1024 ** 2;
const MESSAGE_BATCH = 500;
const VECTOR_BATCH = 1000;

export interface RestoreOptions {
  /** Restore the backup's one user under this id instead (MEMEX_INVALID_INPUT for a backup of several users). */
  asUser?: string;
  /**
   * What to do when a user the backup restores into already holds sessions, personas, notes or
   * import records: refuse (the default, MEMEX_BACKUP_CONFLICT, nothing written) or, with `replace`,
   * delete those first and restore the backup in their place. The profile is replaced either way.
   */
  replace?: boolean;
  limits?: Partial<ZipLimits>;
  signal?: AbortSignal;
  onProgress?: (progress: RestoreProgress) => void;
}

export interface RestoreProgress {
  /** `verify` reads every entry and checks it before `restore` writes anything. */
  phase: 'verify' | 'restore';
  done: number;
  total: number;
  bytes: number;
}

export interface RestoreResult {
  manifest: BackupManifest;
  /** What was restored (the backup's counts). */
  counts: BackupCounts;
  /** The restored users' ids in the store (the `asUser` id when one was given). */
  users: string[];
  sessions: { userId: string; sessionId: string }[];
  replaced: string[];
  seconds: number;
}

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): MemexError {
  return new MemexError('MEMEX_BACKUP_INVALID', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

/** A damaged or foreign ZIP is a bad backup, not a bad chat export. */
function asBackupError(cause: unknown): unknown {
  if (isMemexError(cause, 'MEMEX_IMPORT_INVALID')) return invalid(`the backup cannot be read: ${cause.message}`, cause.details, cause);
  return cause;
}

interface CheckedSession {
  userId: string;
  record: SessionRecord;
  messages: number;
  vectorRows: number;
}

/**
 * Reads every entry of the backup and checks it against the manifest before anything is written:
 * the manifest's own sha256, every entry's size and sha256, no entry missing or extra, every record
 * valid against its schema, and the counts (per session and in total) equal to what the entries
 * hold. Any difference is MEMEX_BACKUP_INVALID.
 */
export async function verifyBackup(path: string, options: Pick<RestoreOptions, 'limits' | 'signal' | 'onProgress'> = {}): Promise<{ manifest: BackupManifest; users: Map<string, UserRecord>; sessions: Map<string, CheckedSession> }> {
  const archive = await ZipArchive.open(path, { limits: { ...BACKUP_ZIP_LIMITS, ...options.limits }, signal: options.signal }).catch((cause: unknown) => {
    throw asBackupError(cause);
  });
  try {
    return await check(archive, options);
  } catch (cause) {
    throw asBackupError(cause);
  } finally {
    await archive.close();
  }
}

async function readWhole(archive: ZipArchive, name: string, signal: AbortSignal | undefined): Promise<Buffer> {
  const info = archive.entries.get(name);
  if (!info) throw invalid(`the backup has no ${name}`, { entry: name });
  if (info.uncompressedSize > MAX_JSON_BYTES) throw invalid(`${name} is larger than ${MAX_JSON_BYTES} bytes`, { entry: name });
  const pieces: Buffer[] = [];
  for await (const piece of await archive.openEntry(name, { signal })) pieces.push(piece as Buffer);
  return Buffer.concat(pieces);
}

function parseJson<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, text: string, name: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw invalid(`${name} is not JSON`, { entry: name }, cause);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(`${name} does not match its schema (${issue?.path.map(String).join('.')}: ${issue?.message})`, { entry: name });
  }
  return parsed.data;
}

async function check(archive: ZipArchive, options: Pick<RestoreOptions, 'signal' | 'onProgress'>) {
  const signal = options.signal;
  const manifestBytes = await readWhole(archive, MANIFEST_ENTRY, signal);
  const shaLine = (await readWhole(archive, MANIFEST_SHA_ENTRY, signal)).toString('utf8');
  if (shaLine.split(/\s+/)[0] !== createHash('sha256').update(manifestBytes).digest('hex')) {
    throw invalid('the manifest was changed after the backup was made: its sha256 is not the one recorded beside it', { entry: MANIFEST_ENTRY });
  }
  const head = JSON.parse(manifestBytes.toString('utf8')) as { v?: unknown };
  if (typeof head.v === 'number' && head.v > BACKUP_FORMAT_VERSION) {
    throw new MemexError('MEMEX_FORMAT_UNSUPPORTED', `the backup is format ${head.v}, newer than this Memex reads (${BACKUP_FORMAT_VERSION})`, { details: { v: head.v } });
  }
  const manifest = parseJson(BackupManifestSchema, manifestBytes.toString('utf8'), MANIFEST_ENTRY);

  const listed = new Map(manifest.entries.map((entry) => [entry.name, entry]));
  if (listed.size !== manifest.entries.length) throw invalid('the manifest names an entry twice');
  for (const name of listed.keys()) if (!archive.names.has(name)) throw invalid(`the backup is missing ${name}, which its manifest lists`, { entry: name });
  for (const name of archive.names) {
    if (name !== MANIFEST_ENTRY && name !== MANIFEST_SHA_ENTRY && !listed.has(name)) throw invalid(`the backup holds ${name}, which its manifest does not list`, { entry: name });
  }

  const users = new Map<string, UserRecord>();
  const sessions = new Map<string, CheckedSession>();
  const counts = zeroCounts();
  const key = (userId: string, sessionId: string): string => `${userId}/${sessionId}`;
  const expected = new Set<string>();
  for (const user of manifest.users) {
    expected.add(userEntry(user.id));
    for (const sid of user.sessions) {
      expected.add(sessionEntry(user.id, sid));
      expected.add(messagesEntry(user.id, sid));
    }
  }
  for (const name of expected) if (!listed.has(name)) throw invalid(`the manifest lists no ${name}`, { entry: name });
  const owners = new Map<string, { userId: string; sessionId: string }>();
  for (const user of manifest.users) {
    for (const sid of user.sessions) {
      owners.set(messagesEntry(user.id, sid), { userId: user.id, sessionId: sid });
      owners.set(vectorsEntry(user.id, sid), { userId: user.id, sessionId: sid });
      owners.set(trashedEntry(user.id, sid), { userId: user.id, sessionId: sid });
    }
  }

  let done = 0;
  let bytes = 0;
  const lineCounts = new Map<string, number>();
  /** Bytes of the rows of each vectors entry (-1 when they differ), checked against the session's dimension below. */
  const rowBytes = new Map<string, number>();
  for (const entry of manifest.entries) {
    signal?.throwIfAborted();
    const hash = createHash('sha256');
    let size = 0;
    const stream = await archive.openEntry(entry.name, { signal });
    const owner = owners.get(entry.name);
    const json = entry.name.endsWith('/user.json') || entry.name.endsWith('/session.json');
    const pieces: Buffer[] = [];
    if (owner && entry.name.endsWith('.jsonl')) {
      const vectors = entry.name.endsWith('/vectors.jsonl');
      let lines = 0;
      stream.on('data', (piece: Buffer) => {
        hash.update(piece);
        size += piece.length;
      });
      for await (const line of createInterface({ input: stream, crlfDelay: Infinity })) {
        if (line.length === 0) continue;
        lines++;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (cause) {
          throw invalid(`line ${lines} of ${entry.name} is not JSON`, { entry: entry.name, line: lines }, cause);
        }
        const parsed = vectors ? VectorRowSchema.safeParse(value) : entry.name.endsWith('/trashed.jsonl') ? TrashedRowSchema.safeParse(value) : MessageSchema.safeParse(value);
        if (!parsed.success) throw invalid(`line ${lines} of ${entry.name} does not match its schema`, { entry: entry.name, line: lines });
        if (vectors && 'vector' in parsed.data) {
          const length = Buffer.byteLength(parsed.data.vector, 'base64');
          const seen = rowBytes.get(entry.name);
          rowBytes.set(entry.name, seen === undefined || seen === length ? length : -1);
        }
      }
      lineCounts.set(entry.name, lines);
    } else {
      for await (const piece of stream as AsyncIterable<Buffer>) {
        hash.update(piece);
        size += piece.length;
        if (json) pieces.push(piece);
      }
    }
    if (size !== entry.size || hash.digest('hex') !== entry.sha256) {
      throw invalid(`${entry.name} does not match its checksum in the manifest: the backup is damaged or was changed`, { entry: entry.name });
    }
    if (json) {
      const text = Buffer.concat(pieces).toString('utf8');
      const [, userId, , sessionId] = entry.name.split('/');
      if (entry.name.endsWith('/user.json') && userId !== undefined) {
        const record = parseJson(UserRecordSchema, text, entry.name);
        if (record.profile.id !== userId) throw invalid(`${entry.name} holds user ${record.profile.id}`, { entry: entry.name });
        users.set(userId, record);
      } else if (userId !== undefined && sessionId !== undefined) {
        const record = parseJson(SessionRecordSchema, text, entry.name);
        if (record.session.id !== sessionId) throw invalid(`${entry.name} holds session ${record.session.id}`, { entry: entry.name });
        sessions.set(key(userId, sessionId), { userId, record, messages: 0, vectorRows: 0 });
      }
    }
    done++;
    bytes += size;
    options.onProgress?.({ phase: 'verify', done, total: manifest.entries.length, bytes });
  }

  // The records against the entries and the counts.
  for (const user of manifest.users) {
    const record = users.get(user.id);
    if (!record) throw invalid(`the backup has no record of user ${user.id}`);
    counts.users++;
    counts.personas += record.personas.length;
    counts.notes += record.notes.length;
    counts.imports += record.imports.length;
    for (const sid of user.sessions) {
      const checked = sessions.get(key(user.id, sid));
      if (!checked) throw invalid(`the backup has no record of session ${sid} of user ${user.id}`);
      const { record: s } = checked;
      checked.messages = lineCounts.get(messagesEntry(user.id, sid)) ?? 0;
      checked.vectorRows = lineCounts.get(vectorsEntry(user.id, sid)) ?? 0;
      if (checked.messages !== s.session.messageCount) throw invalid(`session ${sid} of user ${user.id} records ${s.session.messageCount} messages but holds ${checked.messages}`);
      if (checked.vectorRows !== s.vectors.rows) throw invalid(`session ${sid} of user ${user.id} records ${s.vectors.rows} vector rows but holds ${checked.vectorRows}`);
      if (s.vectors.rows > 0 && manifest.model !== null && (s.vectors.model !== manifest.model.model || s.vectors.dimension !== manifest.model.dimension)) {
        throw invalid(`session ${sid} of user ${user.id} holds rows of another model than the backup's`);
      }
      if (s.vectors.rows > 0 && rowBytes.get(vectorsEntry(user.id, sid)) !== (s.vectors.dimension ?? 0) * 4) {
        throw invalid(`the vector rows of session ${sid} of user ${user.id} are not ${s.vectors.dimension}-d float32`);
      }
      for (const file of s.files) {
        const entry = listed.get(fileEntry(user.id, sid, file.record.id));
        if (!entry || entry.size !== file.record.size) throw invalid(`file ${file.record.id} of session ${sid} is missing or has another size`);
        for (const artifact of file.artifacts) if (!listed.has(artifactEntry(user.id, sid, file.record.id, artifact))) throw invalid(`artifact ${artifact} of file ${file.record.id} is missing`);
        counts.files++;
        counts.fileBytes += file.record.size;
        counts.artifacts += file.artifacts.length;
      }
      counts.sessions++;
      counts.messages += checked.messages;
      counts.vectorRows += checked.vectorRows;
      if (s.summary) counts.summaries++;
    }
  }
  for (const field of Object.keys(counts) as (keyof BackupCounts)[]) {
    if (counts[field] !== manifest.counts[field]) throw invalid(`the manifest counts ${manifest.counts[field]} ${field} but the backup holds ${counts[field]}`, { field });
  }
  return { manifest, users, sessions };
}

/**
 * Restores a backup into a store: first `verifyBackup` (nothing is written when any check fails),
 * then the target users are checked for existing data (see `replace`) and the model for agreement
 * with the rows inside, then everything is written through the Store contract's restore calls,
 * with ids and times kept and vector rows appended as they are, never embedded again.
 */
export async function restoreBackup(store: Store, path: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const started = performance.now();
  const verified = await verifyBackup(path, options);
  const { manifest } = verified;
  const asUser = options.asUser !== undefined ? parseId('user', options.asUser) : undefined;
  if (asUser !== undefined && manifest.users.length !== 1) {
    throw new MemexError('MEMEX_INVALID_INPUT', `the backup holds ${manifest.users.length} users; restoring under another id takes a backup of one user (\`memex backup --user <id>\`)`, { details: { users: manifest.users.length } });
  }
  const target = (userId: UserId): UserId => asUser ?? userId;

  // Refusals, all before the first write.
  const recorded = await store.getEmbeddingModel();
  if (manifest.model && recorded && (recorded.model !== manifest.model.model || recorded.dimension !== manifest.model.dimension)) {
    throw new MemexError('MEMEX_MODEL_MISMATCH', `the backup's vectors are from ${manifest.model.model} (${manifest.model.dimension}-d) but this store records ${recorded.model} (${recorded.dimension}-d); restore into a store of that model`, {
      details: { backup: manifest.model, store: recorded },
    });
  }
  const occupied: UserId[] = [];
  for (const user of manifest.users) if (await holdsData(store, target(user.id))) occupied.push(target(user.id));
  if (occupied.length > 0 && !options.replace) {
    throw new MemexError('MEMEX_BACKUP_CONFLICT', `user ${occupied.join(', ')} already holds data; restore with --replace to replace it, or under another id with --as-user`, { details: { users: occupied } });
  }

  const writer = new Restorer(store, path, options, verified);
  try {
    if (manifest.model && !recorded) await store.setEmbeddingModel(manifest.model);
    for (const userId of occupied) await clearUser(store, userId);
    await writer.run(target);
  } finally {
    await writer.close();
  }
  return {
    manifest,
    counts: manifest.counts,
    users: manifest.users.map((u) => target(u.id)),
    sessions: writer.restored,
    replaced: occupied,
    seconds: Math.round(performance.now() - started) / 1000,
  };
}

async function holdsData(store: Store, userId: string): Promise<boolean> {
  const exists = await store.getUser(userId).then(
    () => true,
    (cause: unknown) => {
      if (isMemexError(cause, 'MEMEX_USER_NOT_FOUND')) return false;
      throw cause;
    },
  );
  if (!exists) return false;
  const page = await store.listSessions(userId, { limit: 1, origin: 'all' });
  return page.total > 0 || page.unreadable.length > 0 || (await store.listPersonas(userId)).length > 0 || (await store.listNotes(userId)).length > 0 || (await store.listImports(userId)).length > 0;
}

/** `replace`: the user's sessions, personas, notes and import records go; the profile and API keys stay. */
async function clearUser(store: Store, userId: string): Promise<void> {
  for (;;) {
    const page = await store.listSessions(userId, { limit: 200, origin: 'all' });
    if (page.sessions.length === 0) break;
    for (const session of page.sessions) await store.deleteSession(userId, session.id);
  }
  for (const record of await store.listImports(userId)) await store.deleteImport(userId, record.id);
  for (const note of await store.listNotes(userId)) await store.deleteNote(userId, note.id);
  for (const persona of await store.listPersonas(userId)) await store.deletePersona(userId, persona.id);
}

class Restorer {
  readonly restored: { userId: string; sessionId: string }[] = [];
  private archive: ZipArchive | null = null;
  private done = 0;
  private bytes = 0;

  constructor(
    private readonly store: Store,
    private readonly path: string,
    private readonly options: RestoreOptions,
    private readonly verified: Awaited<ReturnType<typeof verifyBackup>>,
  ) {}

  async close(): Promise<void> {
    await this.archive?.close();
  }

  async run(target: (userId: UserId) => UserId): Promise<void> {
    this.archive = await ZipArchive.open(this.path, { limits: { ...BACKUP_ZIP_LIMITS, ...this.options.limits }, signal: this.options.signal });
    const total = this.verified.sessions.size;
    for (const user of this.verified.manifest.users) {
      const uid = target(user.id);
      const record = this.verified.users.get(user.id) as UserRecord;
      await this.store.restoreUser({ ...record.profile, id: uid });
      for (const persona of record.personas) await this.store.restorePersona(uid, { ...persona, userId: uid });
      for (const note of record.notes) await this.store.restoreNote(uid, note);
      for (const sid of user.sessions) {
        this.check();
        await this.session(user.id, uid, this.verified.sessions.get(`${user.id}/${sid}`) as CheckedSession);
        this.restored.push({ userId: uid, sessionId: sid });
        this.done++;
        this.options.onProgress?.({ phase: 'restore', done: this.done, total, bytes: this.bytes });
      }
      for (const imported of record.imports) await this.store.saveImport(uid, imported);
    }
  }

  private check(): void {
    if (this.options.signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'the restore was cancelled part-way; run it again with --replace to finish', { cause: this.options.signal.reason });
  }

  private entry(name: string): Promise<Readable> {
    return (this.archive as ZipArchive).openEntry(name, { signal: this.options.signal });
  }

  private async session(from: string, uid: string, checked: CheckedSession): Promise<void> {
    const { record } = checked;
    // The whole meta object goes to the store, so fields it knows beyond RestoredSession travel.
    const session = { ...record.session, userId: uid } as SessionSummary & RestoredSession;
    const sid = session.id;
    // Written live (a session in the trash takes no messages or files); the last restore below
    // puts the trash time back.
    await this.store.restoreSession(uid, { ...session, trashedAt: null });
    for (const file of record.files) {
      const { file: put } = await this.store.putFile(uid, sid, {
        source: { stream: await this.entry(fileEntry(from, sid, file.record.id)) },
        name: file.record.name,
        metadata: file.record.metadata,
        createdAt: file.record.createdAt,
      });
      if (put.id !== file.record.id) throw invalid(`file ${file.record.id} of session ${sid} changed while it was restored`);
      if (file.record.content) await this.store.setFileContent(uid, sid, put.id, file.record.content);
      for (const artifact of file.artifacts) {
        const pieces: Buffer[] = [];
        for await (const piece of await this.entry(artifactEntry(from, sid, file.record.id, artifact))) pieces.push(piece as Buffer);
        await this.store.writeFileArtifact(uid, sid, put.id, artifact, Buffer.concat(pieces));
      }
      this.bytes += file.record.size;
    }
    let batch: NewMessage[] = [];
    for await (const line of this.lines(messagesEntry(from, sid))) {
      batch.push(toNewMessage(MessageSchema.parse(JSON.parse(line))));
      if (batch.length >= MESSAGE_BATCH) {
        this.check();
        await this.store.appendMessages(uid, sid, batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.store.appendMessages(uid, sid, batch);
    if (record.vectors.rows > 0) await this.vectors(from, uid, sid, record.vectors.model as string);
    if (record.summary) await this.store.setSummary(uid, sid, record.summary);
    await this.trashed(from, uid, sid);
    // Last: appending moved updatedAt on, and the session may have been in the trash.
    await this.store.restoreSession(uid, session);
    // Written live, then archived again in this store's own format, at the time it was archived.
    if (record.session.archivedAt) await this.store.archiveSession(uid, sid, { now: new Date(record.session.archivedAt) });
  }

  /**
   * Rows in their order, in batches that never split a message's rows and never put a message's
   * rows after a file's in one batch (a store appends a message's rows only after the last
   * embedded message, and files' rows after messages'), as `memex migrate` does.
   */
  private async vectors(from: string, uid: string, sid: string, model: string): Promise<void> {
    let chunks: Chunk[] = [];
    let vectors: Float32Array[] = [];
    let lastKey = null as string | null;
    const flush = async (): Promise<void> => {
      if (chunks.length === 0) return;
      this.check();
      await this.store.appendVectors(uid, sid, { model, chunks, vectors });
      chunks = [];
      vectors = [];
    };
    for await (const line of this.lines(vectorsEntry(from, sid))) {
      const { vector, ...chunk } = VectorRowSchema.parse(JSON.parse(line));
      const key = chunk.source.kind === 'message' ? `m:${chunk.source.messageId}` : `f:${chunk.source.fileId}`;
      const full = chunks.length >= VECTOR_BATCH && (key !== lastKey || key.startsWith('f:'));
      const fileThenMessage = lastKey !== null && lastKey.startsWith('f:') && key.startsWith('m:');
      if (full || fileThenMessage) await flush();
      const bytes = Buffer.from(vector, 'base64');
      // A copy: the base64 buffer may sit at an offset that is not a multiple of 4.
      vectors.push(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)));
      chunks.push(chunk);
      lastKey = key;
    }
    await flush();
  }

  /** The session's trashed messages back into its trash, newest trashed first (each one's place is then there). */
  private async trashed(from: string, uid: string, sid: string): Promise<void> {
    const name = trashedEntry(from, sid);
    if (!this.verified.manifest.entries.some((entry) => entry.name === name)) return;
    const items: TrashedMessageCopy[] = [];
    for await (const line of this.lines(name)) {
      const { rows, ...item } = TrashedRowSchema.parse(JSON.parse(line));
      const vectors: Float32Array[] = rows.map(({ vector }) => {
        const bytes = Buffer.from(vector, 'base64');
        return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      });
      const flat = new Float32Array(vectors.reduce((sum, v) => sum + v.length, 0));
      let at = 0;
      for (const v of vectors) {
        flat.set(v, at);
        at += v.length;
      }
      const lines = rows.map(({ vector: _vector, ...chunk }, row) => ({ ...chunk, v: FORMAT_VERSION, row, model: item.model ?? '' }));
      items.push({ ...item, sessionId: sid, message: { ...item.message, sessionId: sid } as Message, lines, vectors: flat });
    }
    for (const item of items.reverse()) {
      this.check();
      await this.store.restoreTrashedMessage(uid, sid, item);
    }
  }

  private async *lines(name: string): AsyncGenerator<string> {
    for await (const line of createInterface({ input: await this.entry(name), crlfDelay: Infinity })) {
      this.bytes += line.length + 1;
      if (line.length > 0) yield line;
    }
  }
}
