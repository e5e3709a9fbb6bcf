import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { isMemexError, MemexError, type Config } from '../core/index.js';
import { readServerFile } from '../server/announce.js';
import { FlatFileStore, KeyStore, migrateStore, PostgresStore, type ApiKeyStore, type MigrateResult, type Store } from '../store/index.js';
import { PostgresKeyStore } from '../store/postgres/index.js';
import { describeUrl } from '../store/postgres/index.js';
import type { ContextOf } from './args.js';
import { print, progress } from './output.js';

/** One end of a migration: a flat-file data dir, or a PostgreSQL database. */
export type End = { kind: 'dir'; dir: string } | { kind: 'postgres'; url: string };

interface MigrateCommandOptions {
  to?: string;
  from?: string;
  toDir?: string;
  verify: boolean;
}

function describe(end: End): string {
  return end.kind === 'dir' ? `data dir ${end.dir}` : `PostgreSQL ${describeUrl(end.url)}`;
}

/**
 * Opens one end. A data dir is locked for the whole run, so nothing else writes to either side
 * while it is copied; a data dir a `memex serve` owns is refused by name (stop the server first).
 */
export async function openEnd(end: End, config: Config): Promise<Store> {
  if (end.kind === 'postgres') return openPostgres(end.url, config);
  try {
    return await FlatFileStore.open({ dataDir: end.dir, fsync: config.fsync, lockTimeoutMs: config.lockTimeoutMs, limits: config.limits, onWarning: () => undefined });
  } catch (cause) {
    const server = isMemexError(cause, 'MEMEX_DATA_DIR_LOCKED') ? await readServerFile(end.dir).catch(() => null) : null;
    if (server) {
      throw new MemexError('MEMEX_DATA_DIR_LOCKED', `memex serve (pid ${server.pid}, ${server.url}) owns ${end.dir}; stop it before migrating, so nothing changes while it is copied`, {
        cause,
        details: { dataDir: end.dir, pid: server.pid, url: server.url },
      });
    }
    throw cause;
  }
}

function openPostgres(url: string, config: Config): Promise<Store> {
  return PostgresStore.open({
    url,
    maxConnections: config.store.maxConnections,
    hnsw: { m: config.index.m, efConstruction: config.index.efConstruction },
    lexical: { stopwords: config.search.stopwords, stemming: config.search.stemming },
    limits: config.limits,
    onWarning: () => undefined,
  });
}

/** The API keys beside one end: the data dir's api_keys.json, or the database's table. */
function keysOf(end: End, store: Store): ApiKeyStore {
  return store instanceof PostgresStore ? new PostgresKeyStore(store.database.pool) : new KeyStore(end.kind === 'dir' ? end.dir : '');
}

/**
 * Copies the API keys of the users migrated (every user with a key, without --user), so the same
 * keys work against the target; keys already there are left as they are.
 */
async function copyKeys(from: ApiKeyStore, to: ApiKeyStore, userIds: readonly string[] | null): Promise<{ copied: number; total: number }> {
  let copied = 0;
  let total = 0;
  for (const userId of userIds ?? (await from.keyUsers())) {
    const records = await from.records(userId);
    total += records.length;
    if (records.length > 0) copied += await to.copyIn(records);
  }
  return { copied, total };
}

function summary(result: MigrateResult, source: End, target: End, keys: { copied: number; total: number }): Record<string, unknown> {
  const { totals, written } = result;
  return {
    from: describe(source),
    to: describe(target),
    users: totals.users,
    sessions: totals.sessions,
    messages: totals.messages,
    files: totals.files,
    vectorRows: totals.vectorRows,
    rowsPerSecond: result.rowsPerSecond,
    seconds: result.seconds,
    verification: result.verification,
    model: result.model,
    totals,
    written,
    unreadable: result.unreadable,
    keys,
  };
}

/** `memex migrate`: copy a data dir into PostgreSQL, PostgreSQL into a data dir, or a data dir into another. */
export function registerMigrateCommand(program: Command, contextOf: ContextOf): void {
  program
    .command('migrate')
    .description(
      'copy everything (users, sessions, messages, files, summaries, vector rows, API keys) from the data dir (or --from a database) into --to a database or --to-dir a data dir; ' +
        'resumable (run it again after an interruption) and verified at the end; vectors are copied, not re-embedded',
    )
    .option('--to <url>', 'copy into this PostgreSQL database (postgres://user:password@host:port/database)')
    .option('--from <url>', 'copy from this PostgreSQL database instead of the configured store (the data dir)')
    .option('--to-dir <dir>', 'copy into this data dir (made when missing)')
    .option('--no-verify', 'skip reading both sides back and comparing them per session')
    .addHelpText('after', '\nOnly --user <id>, when given, is copied; else every user. Ctrl-C stops between batches: run the same command again to continue.')
    .action(async (options: MigrateCommandOptions, command: Command) => {
      const ctx = contextOf(command);
      const config = ctx.config();
      if ((options.to === undefined) === (options.toDir === undefined)) {
        throw new MemexError('MEMEX_USAGE', 'name one target: --to postgres://… (a database) or --to-dir DIR (a data dir)');
      }
      // The source: --from, else the store the config names (the data dir, or $MEMEX_DATABASE_URL / --database-url).
      const source: End =
        options.from !== undefined
          ? { kind: 'postgres', url: options.from }
          : config.store.kind === 'postgres' && config.store.url !== null
            ? { kind: 'postgres', url: config.store.url }
            : { kind: 'dir', dir: config.dataDir };
      const target: End = options.to !== undefined ? { kind: 'postgres', url: options.to } : { kind: 'dir', dir: resolve(options.toDir as string) };
      for (const end of [source, target]) if (end.kind === 'postgres') describeUrl(end.url);
      if (describe(source) === describe(target)) throw new MemexError('MEMEX_USAGE', `the source and the target are the same (${describe(source)})`);

      if (source.kind === 'dir' && !existsSync(join(source.dir, 'memex.json'))) {
        throw new MemexError('MEMEX_DATA_DIR_INVALID', `there is no Memex data dir at ${source.dir} to migrate from`, { details: { dataDir: source.dir } });
      }
      const from = await openEnd(source, config);
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      try {
        const to = await openEnd(target, config);
        try {
          const bar = progress(ctx.io, 'migrate');
          const result = await migrateStore(from, to, {
            ...(ctx.defaultUser ? {} : { userIds: [ctx.user] }),
            verify: options.verify,
            signal: controller.signal,
            onProgress: (p) => bar.update(p.sessionsDone, p.sessionsTotal, p.phase === 'verify' ? 'verifying' : `${p.messages} messages, ${p.vectorRows} rows, ${p.files} files`),
          });
          bar.finish();
          const keys = await copyKeys(keysOf(source, from), keysOf(target, to), ctx.defaultUser ? null : [ctx.user]);
          const { totals, written } = result;
          const lines = [
            `Migrated ${describe(source)} to ${describe(target)}: ${totals.users} users, ${totals.sessions} sessions, ${totals.messages} messages, ${totals.files} files, ${totals.vectorRows} vector rows.`,
            `This run wrote ${written.messages} messages, ${written.vectorRows} vector rows and ${written.files} files in ${result.seconds} s (${result.rowsPerSecond} rows/s).`,
            `API keys: ${keys.total} (${keys.copied} copied by this run; the same keys work against the target).`,
            result.verification ? `Verified: ${result.verification.sessions} sessions identical on both sides (counts and checksums).` : 'Not verified (--no-verify).',
          ];
          for (const broken of result.unreadable) lines.push(`Not copied: session ${broken.sessionId} of user ${broken.userId} cannot be read (${broken.code}); run \`memex doctor\` on the source.`);
          print(ctx.io, lines.join('\n'), summary(result, source, target, keys));
          if (result.unreadable.length > 0) ctx.setExitCode(1);
        } finally {
          await to.close();
        }
      } finally {
        process.off('SIGINT', stop);
        await from.close();
      }
    });
}
