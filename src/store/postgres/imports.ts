import { type ImportJob, ImportJobSchema, type ImportRecord, ImportRecordSchema, MemexError, parseId, parseInput, toMemexError } from '../../core/index.js';
import { IMPORT_JOB_KEEP_MS } from '../store.js';
import type { PgContext } from './context.js';
import { requireUser } from './users.js';

/** What each import did (memex.imports), one row per import; import jobs (memex.import_jobs). */

export async function saveImport(ctx: PgContext, userId: string, record: ImportRecord): Promise<void> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const parsed = parseInput(ImportRecordSchema, record, 'import record');
  await ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    await client.query('INSERT INTO memex.imports (user_id, id, record) VALUES ($1, $2, $3) ON CONFLICT (user_id, id) DO UPDATE SET record = excluded.record', [uid, parsed.id, parsed]);
  });
}

export async function listImports(ctx: PgContext, userId: string): Promise<ImportRecord[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<{ id: string; record: unknown }>('SELECT id, record FROM memex.imports WHERE user_id = $1 ORDER BY id', [uid]);
    return rows.flatMap(({ id, record }) => {
      const parsed = ImportRecordSchema.safeParse(record);
      if (parsed.success) return [parsed.data];
      // One damaged record costs only itself.
      const error = toMemexError(new MemexError('MEMEX_SESSION_CORRUPT', `import ${id}: ${parsed.error.message}`));
      ctx.warn({ kind: 'unreadable', path: `memex.imports ${id}`, code: error.code, message: error.message });
      return [];
    });
  });
}

export async function deleteImport(ctx: PgContext, userId: string, importId: string): Promise<void> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rowCount } = await client.query('DELETE FROM memex.imports WHERE user_id = $1 AND id = $2', [uid, importId]);
    if (!rowCount) throw new MemexError('MEMEX_IMPORT_NOT_FOUND', `no import ${JSON.stringify(importId.slice(0, 40))} for user ${uid}`, { details: { importId } });
  });
}

function jobNotFound(uid: string, jobId: string): MemexError {
  return new MemexError('MEMEX_JOB_NOT_FOUND', `no import job ${JSON.stringify(jobId.slice(0, 40))} for user ${uid}`, { details: { jobId: jobId.slice(0, 40) } });
}

export async function saveImportJob(ctx: PgContext, userId: string, job: ImportJob): Promise<{ cancelRequested: boolean }> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const { cancelRequested: _ignored, ...parsed } = parseInput(ImportJobSchema, job, 'import job');
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<{ inserted: boolean; cancel_requested: boolean }>(
      `INSERT INTO memex.import_jobs (user_id, id, job, finished_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id, id) DO UPDATE SET job = excluded.job, finished_at = excluded.finished_at
       RETURNING (xmax = 0) AS inserted, cancel_requested`,
      [uid, parsed.id, parsed, parsed.finishedAt],
    );
    if (rows[0]?.inserted) await client.query('DELETE FROM memex.import_jobs WHERE user_id = $1 AND finished_at < $2', [uid, new Date(Date.now() - IMPORT_JOB_KEEP_MS)]);
    return { cancelRequested: rows[0]?.cancel_requested ?? false };
  });
}

export async function getImportJob(ctx: PgContext, userId: string, jobId: string): Promise<ImportJob> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<{ job: unknown; cancel_requested: boolean }>('SELECT job, cancel_requested FROM memex.import_jobs WHERE user_id = $1 AND id = $2', [uid, jobId]);
    const row = rows[0];
    if (!row) throw jobNotFound(uid, jobId);
    const parsed = ImportJobSchema.safeParse(row.job);
    if (!parsed.success) throw new MemexError('MEMEX_SESSION_CORRUPT', `import job ${jobId}: ${parsed.error.message}`);
    return { ...parsed.data, cancelRequested: row.cancel_requested };
  });
}

export async function requestImportJobCancel(ctx: PgContext, userId: string, jobId: string): Promise<void> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rowCount } = await client.query('UPDATE memex.import_jobs SET cancel_requested = true WHERE user_id = $1 AND id = $2', [uid, jobId]);
    if (!rowCount) throw jobNotFound(uid, jobId);
  });
}
