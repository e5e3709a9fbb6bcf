import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ImportJob, ImportJobSchema, type ImportRecord, ImportRecordSchema, MemexError, parseId, parseInput, toMemexError } from '../../core/index.js';
import { IMPORT_JOB_KEEP_MS } from '../store.js';
import { exists, readJsonRecord, wrapIo } from '../durable.js';
import { type FlatFileContext, listDir } from './context.js';
import { requireUser } from './users.js';

/**
 * `users/<id>/imported/manifests/<importId>.json`, one atomic JSON file per import; import jobs in
 * `users/<id>/imported/jobs/<jobId>.json`, with `<jobId>.cancel` beside one whose cancel was asked
 * for (a file of its own, so the running job's next save cannot overwrite the request).
 */

const IMPORT_ID = /^imp_[0-9a-z]{26}$/;

export async function saveImport(ctx: FlatFileContext, userId: string, record: ImportRecord): Promise<void> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const parsed = parseInput(ImportRecordSchema, record, 'import record');
  await requireUser(ctx, uid);
  const dir = ctx.layout.importRecords(uid);
  await ctx.durability.mkdirp(dir);
  await ctx.durability.writeJsonAtomic(join(dir, `${parsed.id}.json`), parsed);
}

export async function listImports(ctx: FlatFileContext, userId: string): Promise<ImportRecord[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  const dir = ctx.layout.importRecords(uid);
  const records: ImportRecord[] = [];
  for (const name of (await listDir(dir)).sort()) {
    if (!name.endsWith('.json') || !IMPORT_ID.test(name.slice(0, -5))) continue;
    const path = join(dir, name);
    try {
      const record = await readJsonRecord(path, ImportRecordSchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause, details: { path } }));
      if (record) records.push(record);
    } catch (cause) {
      // One damaged record costs only itself: the imports it describes are still listed as sessions.
      const error = toMemexError(cause);
      ctx.warn({ kind: 'unreadable', path, code: error.code, message: error.message });
    }
  }
  return records;
}

export async function deleteImport(ctx: FlatFileContext, userId: string, importId: string): Promise<void> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  if (!IMPORT_ID.test(importId)) throw new MemexError('MEMEX_IMPORT_NOT_FOUND', `no import ${JSON.stringify(importId.slice(0, 40))} for user ${uid}`);
  const path = join(ctx.layout.importRecords(uid), `${importId}.json`);
  const existed = await readJsonRecord(path, ImportRecordSchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause })).then(
    (record) => record !== null,
    () => true,
  );
  if (!existed) throw new MemexError('MEMEX_IMPORT_NOT_FOUND', `no import ${importId} for user ${uid}`, { details: { importId } });
  await rm(path, { force: true }).catch((cause: unknown) => {
    throw wrapIo(cause, `cannot remove ${path}`);
  });
}

const JOB_ID = /^ijob_[0-9a-z]{26}$/;

function jobNotFound(uid: string, jobId: string): MemexError {
  return new MemexError('MEMEX_JOB_NOT_FOUND', `no import job ${JSON.stringify(jobId.slice(0, 40))} for user ${uid}`, { details: { jobId: jobId.slice(0, 40) } });
}

export async function saveImportJob(ctx: FlatFileContext, userId: string, job: ImportJob): Promise<{ cancelRequested: boolean }> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const parsed = parseInput(ImportJobSchema, job, 'import job');
  await requireUser(ctx, uid);
  const dir = ctx.layout.importJobs(uid);
  const path = join(dir, `${parsed.id}.json`);
  const isNew = !(await exists(path));
  await ctx.durability.mkdirp(dir);
  await ctx.durability.writeJsonAtomic(path, { ...parsed, cancelRequested: false });
  if (isNew) await forgetOldJobs(ctx, dir);
  return { cancelRequested: await exists(join(dir, `${parsed.id}.cancel`)) };
}


async function forgetOldJobs(ctx: FlatFileContext, dir: string): Promise<void> {
  const before = Date.now() - IMPORT_JOB_KEEP_MS;
  for (const name of await listDir(dir)) {
    if (!name.endsWith('.json') || !JOB_ID.test(name.slice(0, -5))) continue;
    const path = join(dir, name);
    const job = await readJsonRecord(path, ImportJobSchema, (reason) => new MemexError('MEMEX_SESSION_CORRUPT', reason)).catch(() => null);
    if (job?.finishedAt && Date.parse(job.finishedAt) < before) {
      await rm(path, { force: true }).catch((cause: unknown) => ctx.warn({ kind: 'unreadable', path, code: toMemexError(cause).code, message: toMemexError(cause).message }));
      await rm(join(dir, `${job.id}.cancel`), { force: true }).catch(() => undefined);
    }
  }
}

export async function getImportJob(ctx: FlatFileContext, userId: string, jobId: string): Promise<ImportJob> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  if (!JOB_ID.test(jobId)) throw jobNotFound(uid, jobId);
  const dir = ctx.layout.importJobs(uid);
  const path = join(dir, `${jobId}.json`);
  const job = await readJsonRecord(path, ImportJobSchema, (reason, cause) => new MemexError('MEMEX_SESSION_CORRUPT', reason, { cause, details: { path } }));
  if (!job) throw jobNotFound(uid, jobId);
  return { ...job, cancelRequested: await exists(join(dir, `${jobId}.cancel`)) };
}

export async function requestImportJobCancel(ctx: FlatFileContext, userId: string, jobId: string): Promise<void> {
  const job = await getImportJob(ctx, userId, jobId);
  if (job.finishedAt !== null || job.cancelRequested) return;
  await ctx.durability.writeJsonAtomic(join(ctx.layout.importJobs(parseId('user', userId)), `${jobId}.cancel`), { requestedAt: new Date().toISOString() });
}
