import { type ImportRecord, ImportRecordSchema, MemexError, parseId, parseInput, toMemexError } from '../../core/index.js';
import type { PgContext } from './context.js';
import { requireUser } from './users.js';

/** What each import did (memex.imports), one row per import. */

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
