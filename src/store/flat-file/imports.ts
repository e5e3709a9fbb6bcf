import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ImportRecord, ImportRecordSchema, MemexError, parseId, parseInput, toMemexError } from '../../core/index.js';
import { readJsonRecord, wrapIo } from '../durable.js';
import { type FlatFileContext, listDir } from './context.js';
import { requireUser } from './users.js';

/** `users/<id>/imported/manifests/<importId>.json`, one atomic JSON file per import. */

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
