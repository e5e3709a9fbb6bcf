import { trashedCopies } from './trashed-messages.js';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { PoolClient } from 'pg';
import { MemexError, type SessionId, type UserId } from '../../core/index.js';
import type { ArchivedFile, ArchivedSessionContent, ArchiveResult } from '../store.js';
import { countChunks, deleteChunks, type CountedChunk } from './chunk-stats.js';
import type { PgContext } from './context.js';
import { FILE_COLUMNS, recordOf, type FileRow } from './files.js';
import { MESSAGE_COLUMNS, messageOf } from './messages.js';
import { summaryOfRow, type SummaryRow } from './notes.js';
import { requireSession, SESSION_COLUMNS, summaryOf, type SessionRow } from './sessions.js';
import { linesAndVectors, type ChunkRow } from './vectors.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Version of the payload's JSON: the rows of each table as `to_jsonb` writes them. */
export const ARCHIVE_FORMAT = 1;

/**
 * The session's rows that leave the hot tables, each table's rows as `to_jsonb` gives them (bytea
 * as hex, vectors and tsvectors as their text, which reads back exactly), so every column,
 * including ones later migrations add, travels without a list of fields here to keep up.
 */
const PAYLOAD_SQL = `SELECT jsonb_build_object(
    'messages', (SELECT coalesce(jsonb_agg(to_jsonb(m) ORDER BY m.seq), '[]'::jsonb) FROM memex.messages m WHERE m.user_id = $1 AND m.session_id = $2),
    'files', (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY f.id), '[]'::jsonb) FROM memex.files f WHERE f.user_id = $1 AND f.session_id = $2),
    'fileArtifacts', (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.file_id, a.name), '[]'::jsonb) FROM memex.file_artifacts a WHERE a.user_id = $1 AND a.session_id = $2),
    'chunks', (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.seq), '[]'::jsonb) FROM memex.chunks c WHERE c.user_id = $1 AND c.session_id = $2)
  )::text AS payload`;

/**
 * Archives the session in one transaction: its messages, files and chunk rows become one gzip'ed
 * payload in `session_archives` and leave the hot tables (so search no longer sees them), and the
 * row keeps its counts and gains `archived_at`. Archiving an archived session changes nothing.
 */
export async function archiveSession(ctx: PgContext, userId: string, sessionId: string, options: { now?: Date } = {}): Promise<ArchiveResult> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    const row = await requireSession(client, uid, sid, { lock: true, archived: true });
    if (row.archived_at !== null) return { session: summaryOf(row), rawBytes: 0, archiveBytes: 0, archivedNow: false };
    const before = await listingFields(client, uid, sid);
    const { rows } = await client.query<{ payload: string }>(PAYLOAD_SQL, [uid, sid]);
    const json = rows[0]?.payload ?? '{}';
    const rawBytes = Buffer.byteLength(json);
    const payload = await gzipAsync(json);
    await client.query('INSERT INTO memex.session_archives (user_id, session_id, format, payload, raw_bytes) VALUES ($1, $2, $3, $4, $5)', [uid, sid, ARCHIVE_FORMAT, payload, rawBytes]);
    await deleteChunks(client, uid, 'c.session_id = $2', [sid]);
    await client.query('DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2', [uid, sid]);
    await client.query('DELETE FROM memex.files WHERE user_id = $1 AND session_id = $2', [uid, sid]);
    const archived = await keepListing(client, uid, sid, before, options.now ?? new Date());
    return { session: summaryOf(archived), rawBytes, archiveBytes: payload.length, archivedNow: true };
  });
}

/** Puts the rows back exactly (ids, order, times, vectors: nothing is re-embedded) in one transaction. */
export async function unarchiveSession(ctx: PgContext, userId: string, sessionId: string): Promise<ArchiveResult> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    const row = await requireSession(client, uid, sid, { lock: true, archived: true });
    if (row.archived_at === null) return { session: summaryOf(row), rawBytes: 0, archiveBytes: 0, archivedNow: false };
    const before = await listingFields(client, uid, sid);
    const { rows } = await client.query<{ format: number; payload: Buffer }>('SELECT format, payload FROM memex.session_archives WHERE user_id = $1 AND session_id = $2', [uid, sid]);
    const stored = rows[0];
    if (!stored || stored.format !== ARCHIVE_FORMAT) {
      throw new MemexError('MEMEX_SESSION_CORRUPT', `session ${sid} is marked archived but its archive is ${stored ? `of unknown format ${stored.format}` : 'missing'}`, { details: { sessionId: sid } });
    }
    const json = (await gunzipAsync(stored.payload)).toString('utf8');
    await client.query('SELECT 1 FROM memex.chunk_stats WHERE user_id = $1 FOR UPDATE', [uid]);
    for (const [table, key] of [['files', 'files'], ['file_artifacts', 'fileArtifacts'], ['messages', 'messages'], ['chunks', 'chunks']] as const) {
      // OVERRIDING SYSTEM VALUE keeps each row's `seq`, so messages and rows come back in their order.
      await client.query(`INSERT INTO memex.${table} OVERRIDING SYSTEM VALUE SELECT * FROM jsonb_populate_recordset(NULL::memex.${table}, $1::jsonb -> $2)`, [json, key]);
    }
    const chunks = (JSON.parse(json) as { chunks: CountedChunk[] }).chunks;
    await countChunks(client, uid, chunks.map(({ session_id, id, term_counts, term_length }) => ({ session_id, id, term_counts, term_length })));
    await client.query('DELETE FROM memex.session_archives WHERE user_id = $1 AND session_id = $2', [uid, sid]);
    const live = await keepListing(client, uid, sid, before, null);
    return { session: summaryOf(live), rawBytes: Buffer.byteLength(json), archiveBytes: stored.payload.length, archivedNow: true };
  });
}

/**
 * Reads an archived session's content from its payload without changing anything: the database
 * itself turns the payload's rows back into typed rows (`jsonb_populate_recordset`, as unarchiving
 * does), read with the same columns and converters as a live session's, so the content is exactly
 * what `listMessages`, `readVectors`, `listFiles` and `getSummary` gave before it was archived.
 */
export async function readArchivedSession(ctx: PgContext, userId: string, sessionId: string): Promise<ArchivedSessionContent> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.as(uid, async (client) => {
    const row = await requireSession(client, uid, sid, { archived: true });
    if (row.archived_at === null) throw new MemexError('MEMEX_SESSION_NOT_ARCHIVED', `session ${sid} is not archived`, { details: { sessionId: sid } });
    const json = await payloadOf(client, uid, sid);
    const rows = (key: string, table: string): string => `jsonb_populate_recordset(NULL::memex.${table}, $1::jsonb -> '${key}')`;
    const messages = (await client.query(`SELECT ${MESSAGE_COLUMNS} FROM ${rows('messages', 'messages')} ORDER BY seq`, [json])).rows.map(messageOf);
    const fileRows = (await client.query<FileRow & { bytes: Buffer }>(`SELECT ${FILE_COLUMNS}, bytes FROM ${rows('files', 'files')} ORDER BY created_at, id`, [json])).rows;
    const artifactRows = (await client.query<{ file_id: string; name: string; bytes: Buffer }>(`SELECT file_id, name, bytes FROM ${rows('fileArtifacts', 'file_artifacts')} ORDER BY file_id, name`, [json])).rows;
    const files: ArchivedFile[] = fileRows.map((file) => ({
      record: recordOf(file),
      bytes: file.bytes,
      artifacts: Object.fromEntries(artifactRows.filter((a) => a.file_id === file.id).map((a) => [a.name, a.bytes])),
    }));
    const chunks = (
      await client.query<ChunkRow & { dimension: number | null }>(
        `SELECT id, row_number() OVER (ORDER BY seq) - 1 AS row, source, part_index, part_count, span_start, span_end, text, tokens, model,
                embedding::text AS embedding, vector_dims(embedding) AS dimension
           FROM ${rows('chunks', 'chunks')} ORDER BY seq`,
        [json],
      )
    ).rows;
    const last = chunks.at(-1);
    const dimension = last?.dimension ?? null;
    const summary = (await client.query<SummaryRow>('SELECT * FROM memex.summaries WHERE user_id = $1 AND session_id = $2', [uid, sid])).rows[0];
    const live = (await client.query<{ id: string; seq: string }>(`SELECT id, seq FROM ${rows('messages', 'messages')}`, [json])).rows;
    return {
      trashedMessages: await trashedCopies(client, uid, sid, live),
      session: summaryOf(row),
      messages,
      vectors: { rows: chunks.length, model: last?.model ?? null, dimension, tail: last?.id ?? null, from: 0, ...linesAndVectors(chunks, dimension) },
      files,
      summary: summary ? summaryOfRow(summary) : null,
    };
  });
}

/** The session's archive payload as JSON text. */
async function payloadOf(client: PoolClient, userId: UserId, sessionId: SessionId): Promise<string> {
  const { rows } = await client.query<{ format: number; payload: Buffer }>('SELECT format, payload FROM memex.session_archives WHERE user_id = $1 AND session_id = $2', [userId, sessionId]);
  const stored = rows[0];
  if (!stored || stored.format !== ARCHIVE_FORMAT) {
    throw new MemexError('MEMEX_SESSION_CORRUPT', `session ${sessionId} is marked archived but its archive is ${stored ? `of unknown format ${stored.format}` : 'missing'}`, { details: { sessionId } });
  }
  return (await gunzipAsync(stored.payload)).toString('utf8');
}

/**
 * The message triggers recount the row as messages leave or return; an archive keeps what the
 * listing showed (counts, last message, times) and only sets or clears `archived_at`.
 */
async function keepListing(client: PoolClient, userId: UserId, sessionId: SessionId, before: ListingFields, archivedAt: Date | null): Promise<SessionRow> {
  const { rows } = await client.query<SessionRow>(
    `UPDATE memex.sessions SET message_count = $3, last_message_at = $4::timestamptz, last_message_preview = $5, updated_at = $6::timestamptz, archived_at = $7
      WHERE user_id = $1 AND id = $2 RETURNING ${SESSION_COLUMNS}`,
    [userId, sessionId, before.message_count, before.last_message_at, before.last_message_preview, before.updated_at, archivedAt],
  );
  return rows[0] as SessionRow;
}

/** The listing's fields as text: a JS Date would cut the database's microseconds off. */
interface ListingFields {
  message_count: number;
  last_message_at: string | null;
  last_message_preview: string | null;
  updated_at: string;
}

async function listingFields(client: PoolClient, userId: UserId, sessionId: SessionId): Promise<ListingFields> {
  const { rows } = await client.query<ListingFields>(
    'SELECT message_count, last_message_at::text AS last_message_at, last_message_preview, updated_at::text AS updated_at FROM memex.sessions WHERE user_id = $1 AND id = $2',
    [userId, sessionId],
  );
  return rows[0] as ListingFields;
}
