import { readFile as readFsFile, rm, stat, unlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { type FileContent, FileContentSchema, type FileRecord, FileRecordSchema, FORMAT_VERSION, MemexError, parseId, parseInput, type SessionId, TimestampSchema, type UserId } from '../../core/index.js';
import { isNotFound, readJsonRecord, wrapIo } from '../durable.js';
import { stageFile, sweepStaleUploads } from '../files.js';
import { FILE_ARTIFACTS, type FileArtifactName, type PutFileInput, type PutFileResult } from '../store.js';
import { type FlatFileContext, listDir, nowIso, sessionKey } from './context.js';
import { loadSession, sessionVectors } from './session-state.js';

/**
 * Removes the temp files of uploads cut off by a crash or a kill, in every session. They were
 * never acknowledged, so nothing is lost. This process holds the data dir's lock, so any upload
 * staged by another process is dead. Uploads of this process are left alone. Returns how many went.
 */
export async function sweepAllStaleUploads(ctx: FlatFileContext): Promise<number> {
  ctx.assertOpen();
  let removed = 0;
  for (const user of await listDir(ctx.layout.users)) {
    const sessions = join(ctx.layout.users, user, 'sessions');
    for (const session of await listDir(sessions)) removed += await sweepStaleUploads(join(sessions, session, 'files'), { othersAreDead: true });
  }
  return removed;
}

export async function putFile(ctx: FlatFileContext, userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const name = parseInput(z.string().max(255), input.name ?? '', 'file name');
  const createdAt = input.createdAt === undefined ? null : parseInput(TimestampSchema, input.createdAt, 'file time');
  await ctx.mutex.run(sessionKey(uid, sid), () => loadSession(ctx, uid, sid));
  const dir = ctx.layout.files(uid, sid);
  await ctx.durability.mkdirp(dir);
  await sweepStaleUploads(dir);
  // Streaming and hashing run outside the session's turn; only the final rename takes it.
  const staged = await stageFile(dir, input.source, name, ctx.limits.maxFileBytes, ctx.durability);
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const existing = await readFileRecord(ctx, uid, sid, staged.id);
    const { created } = await staged.commit((type) => ctx.layout.fileBlob(uid, sid, staged.id, existing?.ext ?? type.ext));
    if (existing) return { file: existing, created: false };
    const file: FileRecord = {
      v: FORMAT_VERSION,
      id: staged.id,
      sessionId: sid,
      sha256: staged.id,
      name,
      mimeType: staged.type.mimeType,
      ext: staged.type.ext,
      size: staged.size,
      createdAt: createdAt ?? nowIso(),
      metadata: input.metadata ?? {},
    };
    await ctx.durability.writeJsonAtomic(ctx.layout.fileRecord(uid, sid, staged.id), file);
    return { file, created };
  });
}

export async function getFile(ctx: FlatFileContext, userId: string, sessionId: string, fileId: string): Promise<FileRecord> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await ctx.mutex.run(sessionKey(uid, sid), () => loadSession(ctx, uid, sid));
  return getFileRecord(ctx, uid, sid, parseId('file', fileId));
}

export async function listFiles(ctx: FlatFileContext, userId: string, sessionId: string): Promise<FileRecord[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await ctx.mutex.run(sessionKey(uid, sid), () => loadSession(ctx, uid, sid));
  const out: FileRecord[] = [];
  for (const name of await listDir(ctx.layout.files(uid, sid))) {
    if (!/^[0-9a-f]{64}\.json$/.test(name)) continue;
    const record = await readFileRecord(ctx, uid, sid, parseId('file', name.slice(0, 64)));
    if (record) out.push(record);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export async function openFile(ctx: FlatFileContext, userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const record = await getFile(ctx, uid, sid, fileId);
  const path = ctx.layout.fileBlob(uid, sid, record.id, record.ext);
  await stat(path).catch((cause: unknown) => {
    throw new MemexError('MEMEX_FILE_NOT_FOUND', `the stored copy of file ${record.id} is missing`, { cause, details: { fileId: record.id } });
  });
  return createReadStream(path);
}

export async function setFileContent(ctx: FlatFileContext, userId: string, sessionId: string, fileId: string, content: FileContent | null): Promise<FileRecord> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  const parsed = content === null ? null : parseInput(FileContentSchema, content, 'file content');
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    await loadSession(ctx, uid, sid);
    const { content: _old, ...record } = await getFileRecord(ctx, uid, sid, fid);
    const next: FileRecord = parsed === null ? record : { ...record, content: parsed };
    await ctx.durability.writeJsonAtomic(ctx.layout.fileRecord(uid, sid, fid), next);
    return next;
  });
}

export async function writeFileArtifact(ctx: FlatFileContext, userId: string, sessionId: string, fileId: string, name: FileArtifactName, data: string | Uint8Array): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  const artifact = parseInput(z.enum(FILE_ARTIFACTS), name, 'file artifact');
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    await loadSession(ctx, uid, sid);
    await getFileRecord(ctx, uid, sid, fid);
    await ctx.durability.writeAtomic(ctx.layout.fileArtifact(uid, sid, fid, artifact), data);
  });
}

export async function readFileArtifact(ctx: FlatFileContext, userId: string, sessionId: string, fileId: string, name: FileArtifactName): Promise<Buffer> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  const artifact = parseInput(z.enum(FILE_ARTIFACTS), name, 'file artifact');
  await getFile(ctx, uid, sid, fid);
  return readFsFile(ctx.layout.fileArtifact(uid, sid, fid, artifact)).catch((cause: unknown) => {
    if (isNotFound(cause)) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fid} has no ${artifact} (it is made when the file is ingested)`, { cause, details: { fileId: fid, artifact } });
    throw wrapIo(cause, `cannot read the ${artifact} of file ${fid}`);
  });
}

export async function deleteFile(ctx: FlatFileContext, userId: string, sessionId: string, fileId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  await ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const record = await getFileRecord(ctx, uid, sid, fid);
    // Rows first, then the record: a crash in between leaves a file with no rows, which the next
    // ingest of it fills again, never rows that point at a file that is gone.
    if ((await (await sessionVectors(ctx, state, uid, sid)).removeFile(fid)) > 0) ctx.bumpVectors(uid);
    const paths = [...FILE_ARTIFACTS.map((name) => ctx.layout.fileArtifact(uid, sid, fid, name)), ctx.layout.fileBlob(uid, sid, fid, record.ext)];
    await unlink(ctx.layout.fileRecord(uid, sid, fid)).catch((cause: unknown) => {
      if (!isNotFound(cause)) throw wrapIo(cause, `cannot delete file ${fid}`);
    });
    for (const path of paths) await rm(path, { force: true });
    await ctx.durability.syncDir(ctx.layout.files(uid, sid));
  });
}

export async function getFileRecord(ctx: FlatFileContext, userId: UserId, sessionId: SessionId, fileId: string): Promise<FileRecord> {
  const record = await readFileRecord(ctx, userId, sessionId, parseId('file', fileId));
  if (!record) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fileId} is not in session ${sessionId}`, { details: { sessionId, fileId } });
  return record;
}

export function readFileRecord(ctx: FlatFileContext, userId: UserId, sessionId: SessionId, fileId: FileRecord['id']): Promise<FileRecord | null> {
  return readJsonRecord(
    ctx.layout.fileRecord(userId, sessionId, fileId),
    FileRecordSchema,
    (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId}: ${reason}`, { cause, details: { sessionId, fileId } }),
  );
}
