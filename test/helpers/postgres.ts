import { createServer } from 'node:net';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/store/postgres/index.js';

/**
 * A PostgreSQL for tests. By default a PGlite (Postgres compiled to WASM) with pgvector, served on a
 * free loopback port by pglite-socket, so tests talk to it with the ordinary `pg` driver over the
 * wire protocol, the same code path as production. When MEMEX_TEST_DATABASE_URL names a real
 * PostgreSQL with pgvector, that server is used instead; tests then reset only the `memex` schema,
 * so point it at a database kept for tests.
 *
 * Starting PGlite takes seconds (it compiles a WASM module and runs initdb): start one per test file
 * (beforeAll) and reset between tests, not one per test.
 */
export interface TestDatabase {
  readonly url: string;
  readonly kind: 'pglite' | 'external';
  stop(): Promise<void>;
}

export const externalDatabaseUrl = process.env.MEMEX_TEST_DATABASE_URL ?? null;

export async function startTestDatabase(options: { pgvector?: boolean; forcePglite?: boolean; dataDir?: string } = {}): Promise<TestDatabase> {
  const pgvector = options.pgvector ?? true;
  if (externalDatabaseUrl !== null && pgvector && options.forcePglite !== true) {
    return { url: externalDatabaseUrl, kind: 'external', stop: async () => undefined };
  }
  // Loaded only when used, so a run against a real server never starts WASM.
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const extensions = pgvector ? { vector: (await import('@electric-sql/pglite-pgvector')).vector } : {};
  // In memory unless `dataDir` is given (a benchmark keeps the files on disk, as a server would).
  const db = await PGlite.create({ extensions, ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }) });
  // The multiplexer queues statements from many connections onto PGlite's single session and keeps
  // a connection's open transaction to itself, so pools of several connections work.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 64 });
  await server.start();
  return {
    url: `postgresql://postgres:postgres@${server.getServerConn()}/postgres`,
    kind: 'pglite',
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

/** Drops everything Memex made in the database (the `memex` schema), for a test that needs it empty. */
export async function resetMemexSchema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('DROP SCHEMA IF EXISTS memex CASCADE');
  } finally {
    await client.end();
  }
}

/** A loopback URL where nothing listens: a port taken from the OS and given back. */
export async function refusedUrl(): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const free = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(free));
    });
  });
  return `postgresql://memex:secret-password@127.0.0.1:${port}/memex`;
}

/**
 * For suites that talk to the database below the store: each call closes the previous database,
 * empties the `memex` schema and opens (and migrates) it again. `close` ends the last one.
 */
export function freshDatabases(url: () => string): { fresh: () => Promise<Database>; close: () => Promise<void> } {
  let db: Database | null = null;
  return {
    fresh: async () => {
      await db?.close();
      await resetMemexSchema(url());
      db = await openDatabase(url());
      return db;
    },
    close: async () => {
      await db?.close();
      db = null;
    },
  };
}
