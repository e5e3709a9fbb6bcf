import { mkdir, readFile as readFsFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { FileContentSchema, FORMAT_VERSION, MemexError, parseId, parseInput, TimestampSchema, type FileContent, type FileId, type FileRecord, type SessionId, type UserId } from '../../core/index.js';
import type { Durability } from '../durable.js';
import { stageFile, sweepStaleUploads } from '../files.js';
import { FILE_ARTIFACTS, type FileArtifactName, type PutFileInput, type PutFileResult } from '../store.js';
import { iso, type PgContext } from './context.js';
import { deleteChunks } from './chunk-stats.js';
import { requireSession } from './sessions.js';
import type { PoolClient } from 'pg';

/** Where uploads are staged (hashed, size-checked, sniffed) before their bytes go into the database. */
export const STAGING_DIR = join(tmpdir(), 'memex-pg-uploads');

/** Bytes of a file read per query: a large file streams instead of arriving as one buffer. */
const READ_PIECE = 1024 * 1024;

export interface FileRow {
  id: FileId;
  session_id: SessionId;
  name: string;
  mime_type: string;
  ext: string;
  size: string;
  content: FileContent | null;
  metadata: Record<string, unknown>;
  created_at: Date;
}

export const FILE_COLUMNS = 'id, session_id, name, mime_type, ext, size, content, metadata, created_at';

export function recordOf(row: FileRow): FileRecord {
  return {
    v: FORMAT_VERSION,
    id: row.id,
    sessionId: row.session_id,
    sha256: row.id,
    name: row.name,
    mimeType: row.mime_type,
    ext: row.ext,
    size: Number(row.size),
    createdAt: iso(row.created_at),
    metadata: row.metadata,
    ...(row.content !== null ? { content: row.content } : {}),
  };
}

export async function putFile(ctx: PgContext, durability: Durability, userId: string, sessionId: string, input: PutFileInput): Promise<PutFileResult> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const name = parseInput(z.string().max(255), input.name ?? '', 'file name');
  const createdAt = input.createdAt === undefined ? null : parseInput(TimestampSchema, input.createdAt, 'file time');
  await ctx.as(uid, (client) => requireSession(client, uid, sid));
  await mkdir(STAGING_DIR, { recursive: true });
  const staged = await stageFile(STAGING_DIR, input.source, name, ctx.limits.maxFileBytes, durability);
  try {
    const bytes = await readFsFile(staged.stagedPath);
    return await ctx.as(uid, async (client) => {
      await requireSession(client, uid, sid, { lock: true });
      const { rows } = await client.query<FileRow>(
        `INSERT INTO memex.files (user_id, session_id, id, name, mime_type, ext, size, bytes, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10::timestamptz, now()))
         ON CONFLICT (user_id, session_id, id) DO NOTHING RETURNING ${FILE_COLUMNS}`,
        [uid, sid, staged.id, name, staged.type.mimeType, staged.type.ext, staged.size, bytes, input.metadata ?? {}, createdAt],
      );
      if (rows[0]) return { file: recordOf(rows[0]), created: true };
      return { file: await requireFile(client, uid, sid, staged.id), created: false };
    });
  } finally {
    await staged.discard();
  }
}

export async function getFile(ctx: PgContext, userId: string, sessionId: string, fileId: string): Promise<FileRecord> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  return ctx.as(uid, (client) => requireFile(client, uid, sid, fid));
}

export async function listFiles(ctx: PgContext, userId: string, sessionId: string): Promise<FileRecord[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    await requireSession(client, uid, sid);
    return (await client.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM memex.files WHERE user_id = $1 AND session_id = $2 ORDER BY created_at, id`, [uid, sid])).rows.map(recordOf);
  });
}

/** The stored bytes, read a piece at a time. */
export async function readFile(ctx: PgContext, userId: string, sessionId: string, fileId: string): Promise<AsyncIterable<Uint8Array>> {
  const record = await getFile(ctx, userId, sessionId, fileId);
  const uid = parseId('user', userId);
  return (async function* pieces(): AsyncGenerator<Uint8Array> {
    for (let offset = 0; offset < record.size; offset += READ_PIECE) {
      const piece = await ctx.as(uid, async (client) => {
        const { rows } = await client.query<{ piece: Buffer }>('SELECT substring(bytes FROM $4 FOR $5) AS piece FROM memex.files WHERE user_id = $1 AND session_id = $2 AND id = $3', [
          uid,
          record.sessionId,
          record.id,
          offset + 1,
          READ_PIECE,
        ]);
        if (!rows[0]) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${record.id} was deleted while it was read`, { details: { fileId: record.id } });
        return rows[0].piece;
      });
      yield piece;
    }
  })();
}

export async function setFileContent(ctx: PgContext, userId: string, sessionId: string, fileId: string, content: FileContent | null): Promise<FileRecord> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  const parsed = content === null ? null : parseInput(FileContentSchema, content, 'file content');
  return ctx.as(uid, async (client) => {
    const { rows } = await client.query<FileRow>(`UPDATE memex.files SET content = $4 WHERE user_id = $1 AND session_id = $2 AND id = $3 RETURNING ${FILE_COLUMNS}`, [uid, sid, fid, parsed]);
    if (!rows[0]) return requireFile(client, uid, sid, fid);
    return recordOf(rows[0]);
  });
}

export async function writeFileArtifact(ctx: PgContext, userId: string, sessionId: string, fileId: string, name: FileArtifactName, data: string | Uint8Array): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  const artifact = parseInput(z.enum(FILE_ARTIFACTS), name, 'file artifact');
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  await ctx.as(uid, async (client) => {
    await requireFile(client, uid, sid, fid);
    await client.query(
      `INSERT INTO memex.file_artifacts (user_id, session_id, file_id, name, bytes) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (user_id, session_id, file_id, name) DO UPDATE SET bytes = EXCLUDED.bytes, created_at = now()`,
      [uid, sid, fid, artifact, bytes],
    );
  });
}

export async function readFileArtifact(ctx: PgContext, userId: string, sessionId: string, fileId: string, name: FileArtifactName): Promise<Buffer> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  const artifact = parseInput(z.enum(FILE_ARTIFACTS), name, 'file artifact');
  return ctx.as(uid, async (client) => {
    await requireFile(client, uid, sid, fid);
    const { rows } = await client.query<{ bytes: Buffer }>('SELECT bytes FROM memex.file_artifacts WHERE user_id = $1 AND session_id = $2 AND file_id = $3 AND name = $4', [uid, sid, fid, artifact]);
    if (!rows[0]) throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fid} has no ${artifact} (it is made when the file is ingested)`, { details: { fileId: fid, artifact } });
    return rows[0].bytes;
  });
}

/** Removes the file, its artifacts (cascade) and its chunks in one transaction; messages that named it keep the reference. */
export async function deleteFile(ctx: PgContext, userId: string, sessionId: string, fileId: string): Promise<void> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const fid = parseId('file', fileId);
  await ctx.as(uid, async (client) => {
    await requireFile(client, uid, sid, fid);
    await deleteChunks(client, uid, "c.session_id = $2 AND c.source_kind = 'file' AND c.file_id = $3", [sid, fid]);
    await client.query('DELETE FROM memex.files WHERE user_id = $1 AND session_id = $2 AND id = $3', [uid, sid, fid]);
  });
}

/** Staged uploads of processes that died before their bytes reached the database. */
export function sweepStagedUploads(): Promise<number> {
  return sweepStaleUploads(STAGING_DIR);
}

export async function requireFile(client: PoolClient, userId: UserId, sessionId: SessionId, fileId: string): Promise<FileRecord> {
  const { rows } = await client.query<FileRow>(`SELECT ${FILE_COLUMNS} FROM memex.files WHERE user_id = $1 AND session_id = $2 AND id = $3`, [userId, sessionId, fileId]);
  if (rows[0]) return recordOf(rows[0]);
  await requireSession(client, userId, sessionId);
  throw new MemexError('MEMEX_FILE_NOT_FOUND', `file ${fileId} is not in session ${sessionId}`, { details: { sessionId, fileId } });
}
