import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, SCHEMA_LOCK, chunkTerms, migrate, openDatabase, readLexicalStats, schemaVersion, withUser, type Database } from '../../../src/store/postgres/index.js';
import { expectCode } from '../../helpers/errors.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

const TABLES = ['api_keys', 'chunk_stats', 'chunk_terms', 'chunks', 'file_artifacts', 'files', 'import_jobs', 'imports', 'ingest_jobs', 'lexical', 'memex_schema', 'messages', 'model', 'notes', 'personas', 'session_archives', 'sessions', 'summaries', 'term_stats', 'trashed_messages', 'users'];

describe('PostgreSQL migrations', () => {
  let server: TestDatabase;
  const open: Database[] = [];
  const pools: pg.Pool[] = [];

  beforeAll(async () => {
    server = await startTestDatabase();
  });
  async function closeAll(): Promise<void> {
    await Promise.all(open.splice(0).map((db) => db.close()));
    await Promise.all(pools.splice(0).map((made) => made.end()));
  }
  afterAll(async () => {
    await closeAll();
    await server.stop();
  });
  beforeEach(async () => {
    await closeAll();
    await resetMemexSchema(server.url);
  });

  async function opened(): Promise<Database> {
    const db = await openDatabase(server.url);
    open.push(db);
    return db;
  }
  function pool(): pg.Pool {
    const made = new pg.Pool({ connectionString: server.url });
    pools.push(made);
    return made;
  }

  it('applies every migration to an empty database and records each version', async () => {
    const db = await opened();
    expect(db.migration).toEqual({ from: 0, to: MIGRATIONS.length, applied: MIGRATIONS.map((m) => m.version) });
    const tables = await db.pool.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'memex' ORDER BY table_name");
    expect(tables.rows.map((r) => r.table_name)).toEqual(TABLES);
    const recorded = await db.pool.query<{ version: number; name: string }>('SELECT version, name FROM memex.memex_schema ORDER BY version');
    expect(recorded.rows).toEqual(MIGRATIONS.map(({ version, name }) => ({ version, name })));
    const vector = await db.pool.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'");
    expect(vector.rowCount).toBe(1);
  });

  it('re-opening a migrated database applies nothing', async () => {
    await (await opened()).close();
    open.length = 0;
    const again = await opened();
    expect(again.migration).toEqual({ from: MIGRATIONS.length, to: MIGRATIONS.length, applied: [] });
    const recorded = await again.pool.query('SELECT version FROM memex.memex_schema');
    expect(recorded.rowCount).toBe(MIGRATIONS.length);
  });

  it('a database migrated by a newer Memex is MEMEX_SCHEMA_NEWER and is left as it was', async () => {
    const db = await opened();
    const newer = MIGRATIONS.length + 1;
    await db.pool.query("INSERT INTO memex.memex_schema (version, name) VALUES ($1, 'from the future')", [newer]);
    const error = await expectCode(openDatabase(server.url), 'MEMEX_SCHEMA_NEWER');
    expect(error.details).toMatchObject({ databaseVersion: newer, codeVersion: MIGRATIONS.length });
    expect(await schemaVersion(db.pool)).toBe(newer);
  });

  it('two instances opening an empty database at once apply each migration once', async () => {
    const [a, b] = await Promise.all([opened(), opened()]);
    expect([...a.migration.applied, ...b.migration.applied]).toEqual(MIGRATIONS.map((m) => m.version));
    const recorded = await a.pool.query<{ version: number }>('SELECT version FROM memex.memex_schema ORDER BY version');
    expect(recorded.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  // On PGlite the socket multiplexer already runs one transaction at a time, so the concurrent open
  // above passes with or without the lock; this test sees the lock itself, on any server.
  it('migrations run while holding the schema advisory lock', async () => {
    await opened();
    const probe = {
      version: MIGRATIONS.length + 1,
      name: 'looks at its own locks',
      sql: `CREATE TABLE memex.lock_seen AS SELECT count(*)::int AS held FROM pg_locks
              WHERE locktype = 'advisory' AND granted AND (classid::bigint << 32 | objid::bigint) = ${SCHEMA_LOCK}`,
    };
    await migrate(pool(), [...MIGRATIONS, probe]);
    const seen = await pool().query<{ held: number }>('SELECT held FROM memex.lock_seen');
    expect(seen.rows[0]?.held).toBe(1);
  });

  it('a migration that fails leaves none of its changes and the version unchanged', async () => {
    const db = await opened();
    const broken = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'fails halfway', sql: 'CREATE TABLE memex.half_done (id int); SELECT 1 / 0;' }];
    await expect(migrate(db.pool, broken)).rejects.toMatchObject({ code: '22012' });
    expect(await schemaVersion(db.pool)).toBe(MIGRATIONS.length);
    const half = await db.pool.query<{ found: boolean }>("SELECT to_regclass('memex.half_done') IS NOT NULL AS found");
    expect(half.rows[0]?.found).toBe(false);
  });

  it('a later migration applies on top of the recorded ones', async () => {
    await opened();
    const next = [...MIGRATIONS, { version: MIGRATIONS.length + 1, name: 'adds a table', sql: 'CREATE TABLE memex.later (id int)' }];
    expect(await migrate(pool(), next)).toEqual({ from: MIGRATIONS.length, to: next.length, applied: [next.length] });
    expect(await migrate(pool(), next)).toEqual({ from: next.length, to: next.length, applied: [] });
  });

  it('a migration history with a gap is refused before touching the database', async () => {
    const gap = [...MIGRATIONS, { version: MIGRATIONS.length + 2, name: 'skips one', sql: 'SELECT 1' }];
    await expectCode(migrate(pool(), gap), 'MEMEX_INTERNAL');
    expect(await schemaVersion(pool())).toBe(0);
  });

  it('migration 2 builds the postings and counts the lexical statistics of chunks written under schema 1, for each user apart', async () => {
    const first = pool();
    await migrate(first, MIGRATIONS.slice(0, 1));
    for (const [user, texts] of [['alice', ['tea and cake', 'more tea']], ['bob', ['cake']]] as const) {
      await withUser(first, user, async (c) => {
        await c.query('INSERT INTO memex.users (user_id, name) VALUES ($1, $1)', [user]);
        await c.query("INSERT INTO memex.sessions (user_id, id) VALUES ($1, 's1')", [user]);
        for (const [i, text] of texts.entries()) {
          const { lexemes, term_counts, term_length } = chunkTerms(text, { stopwords: true, stemming: true });
          await c.query(
            `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding, lexemes, term_counts, term_length)
             VALUES ($1, 's1', $2, 'message', $2, jsonb_build_object('kind', 'message', 'messageId', $2::text), 0, 1, 0, 1, $3, 1, 'm', '[1,0]', array_to_tsvector($4::text[]), $5, $6)`,
            [user, `m${i}`, text, lexemes, term_counts, term_length],
          );
        }
      });
    }
    expect(await migrate(first)).toMatchObject({ from: 1, applied: MIGRATIONS.slice(1).map((m) => m.version) });
    const read = (user: string) => withUser(first, user, (c) => readLexicalStats(c, user, ['tea', 'cake', 'none']));
    expect(await read('alice')).toEqual({ chunks: 2, averageLength: 2.5, df: new Map([['tea', 2], ['cake', 1]]) });
    expect(await read('bob')).toEqual({ chunks: 1, averageLength: 1, df: new Map([['cake', 1]]) });
    const postings = await withUser(first, 'alice', (c) => c.query('SELECT term, chunk_id, tf FROM memex.chunk_terms ORDER BY 1, 2'));
    expect(postings.rows).toEqual([
      { term: 'cake', chunk_id: 'm0', tf: 1 },
      { term: 'tea', chunk_id: 'm0', tf: 1 },
      { term: 'tea', chunk_id: 'm1', tf: 1 },
    ]);
  });
});
