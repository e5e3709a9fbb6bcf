import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { restoreBackup, writeBackup } from '../backup/index.js';
import { isMemexError, MemexError, type Config } from '../core/index.js';
import type { Store } from '../store/index.js';
import type { ContextOf } from './args.js';
import { openEnd, type End } from './migrate-command.js';
import { print, progress } from './output.js';

/** The configured store: the database the config names, else the data dir. */
function configured(config: Config): End {
  return config.store.kind === 'postgres' && config.store.url !== null ? { kind: 'postgres', url: config.store.url } : { kind: 'dir', dir: config.dataDir };
}

const mb = (bytes: number): string => (bytes / 1024 ** 2).toFixed(1);

/** The store, or, when a `memex serve` owns the data dir, an error that names the HTTP routes to use instead. */
async function openConfigured(config: Config, what: 'backup' | 'restore'): Promise<Store> {
  return openEnd(configured(config), config).catch((cause: unknown) => {
    if (!isMemexError(cause, 'MEMEX_DATA_DIR_LOCKED')) throw cause;
    const route = what === 'backup' ? 'GET /v1/backup' : 'POST /v1/restore';
    throw new MemexError('MEMEX_DATA_DIR_LOCKED', `${cause.message.replace(/; stop it before migrating.*$/, '')}; stop it first, or use its ${route} (one user's data, with that user's key)`, { cause, details: cause.details });
  });
}

/**
 * `memex backup` and `memex restore`: the store (or one user, with --user) as one ZIP and back,
 * through the Store contract, so a backup of a data dir restores into PostgreSQL and back. Both open
 * the store themselves, like `memex migrate`: a data dir a `memex serve` owns is refused by name
 * (use its `GET /v1/backup` and `POST /v1/restore`, or stop it).
 */
export function registerBackupCommands(program: Command, contextOf: ContextOf): void {
  program
    .command('backup')
    .description('write every user (or only --user) into one ZIP: sessions, messages, files, vector rows, notes, personas, summaries, imports, with a manifest of sha256 checksums and counts')
    .option('-o, --output <file>', 'the ZIP to write (default memex-backup-<time>.zip here); written beside it first and renamed when whole')
    .action(async (options: { output?: string }, command: Command) => {
      const ctx = contextOf(command);
      const config = ctx.config();
      const output = resolve(options.output ?? `memex-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.zip`);
      const partial = `${output}.partial`;
      const store = await openConfigured(config, 'backup');
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      const started = performance.now();
      try {
        const bar = progress(ctx.io, 'backup');
        const writer = writeBackup(store, {
          ...(ctx.defaultUser ? {} : { userId: ctx.user }),
          signal: controller.signal,
          onProgress: (p) => bar.update(p.sessionsDone, p.sessionsTotal, `${p.messages} messages, ${p.vectorRows} rows, ${mb(p.bytes)} MB`),
        });
        await Promise.all([pipeline(writer.stream, createWriteStream(partial)), writer.manifest]).catch(async (cause: unknown) => {
          await rm(partial, { force: true });
          throw cause;
        });
        const manifest = await writer.manifest;
        await rename(partial, output);
        bar.finish();
        const bytes = (await stat(output)).size;
        const seconds = Math.round(performance.now() - started) / 1000;
        const { counts } = manifest;
        print(
          ctx.io,
          `Backed up ${counts.users} users, ${counts.sessions} sessions, ${counts.messages} messages, ${counts.files} files and ${counts.vectorRows} vector rows to ${output} (${mb(bytes)} MB in ${seconds} s).`,
          { output, bytes, seconds, scope: manifest.scope, model: manifest.model, counts, entries: manifest.entries.length },
        );
      } finally {
        process.off('SIGINT', stop);
        await store.close();
      }
    });

  program
    .command('restore <file>')
    .description('restore a backup ZIP made by `memex backup` into the configured store; every checksum is verified before anything is written')
    .option('--as-user <id>', "restore a one-user backup under this user id instead of its own")
    .option('--replace', 'replace the sessions, personas, notes and import records of a user that already holds data (without it, such a user is refused)')
    .action(async (file: string, options: { asUser?: string; replace?: boolean }, command: Command) => {
      const ctx = contextOf(command);
      const config = ctx.config();
      const path = resolve(file);
      const info = await stat(path).catch((cause: unknown) => {
        throw new MemexError('MEMEX_PATH_NOT_FOUND', `no file at ${file}`, { cause, details: { path: file } });
      });
      if (!info.isFile()) throw new MemexError('MEMEX_PATH_NOT_FOUND', `${file} is not a file`, { details: { path: file } });
      const store = await openConfigured(config, 'restore');
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      process.once('SIGINT', stop);
      try {
        const bar = progress(ctx.io, 'restore');
        const result = await restoreBackup(store, path, {
          ...(options.asUser !== undefined ? { asUser: options.asUser } : {}),
          ...(options.replace ? { replace: true } : {}),
          signal: controller.signal,
          onProgress: (p) => bar.update(p.done, p.total, p.phase === 'verify' ? `verifying, ${mb(p.bytes)} MB` : `restoring, ${mb(p.bytes)} MB`),
        });
        bar.finish();
        const { counts } = result;
        const lines = [
          `Verified and restored ${counts.users} users (${result.users.join(', ')}), ${counts.sessions} sessions, ${counts.messages} messages, ${counts.files} files and ${counts.vectorRows} vector rows in ${result.seconds} s.`,
        ];
        if (result.replaced.length > 0) lines.push(`Replaced the data that ${result.replaced.join(', ')} held.`);
        print(ctx.io, lines.join('\n'), { users: result.users, replaced: result.replaced, counts, seconds: result.seconds, model: result.manifest.model, backupCreatedAt: result.manifest.createdAt, memexVersion: result.manifest.memexVersion });
      } finally {
        process.off('SIGINT', stop);
        await store.close();
      }
    });
}
