import type { Command } from 'commander';
import { MemexError } from '../core/index.js';
import { openDatabase } from '../store/index.js';
import { print } from './output.js';
import type { ContextOf } from './args.js';

/** `memex db`: the PostgreSQL backend's schema. */
export function registerDbCommands(program: Command, contextOf: ContextOf): void {
  const db = program.command('db').description('the PostgreSQL backend (--database-url or $MEMEX_DATABASE_URL)');
  db.command('migrate')
    .description('bring the database schema to this version of Memex (also done on every open); safe to run again')
    .action(async (_options: unknown, command: Command) => {
      const ctx = contextOf(command);
      const { store } = ctx.config();
      if (store.kind !== 'postgres' || store.url === null) {
        throw new MemexError('MEMEX_USAGE', 'name the database: --database-url postgres://user:password@host:port/database, or set MEMEX_DATABASE_URL');
      }
      const database = await openDatabase(store.url, { maxConnections: 1 });
      try {
        const { from, to, applied } = database.migration;
        const human = applied.length === 0 ? `The schema is up to date (version ${to}).` : `Migrated the schema from version ${from} to ${to} (applied ${applied.join(', ')}).`;
        print(ctx.io, human, database.migration);
      } finally {
        await database.close();
      }
    });
}
