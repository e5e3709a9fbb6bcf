import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { chunkTerms, openDatabase, readModel, recordModel, withUser, type Database } from '../../../src/store/postgres/index.js';
import { expectCode } from '../../helpers/errors.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

const SHA = 'a'.repeat(64);
const ALICE = 'alice';
const BOB = 'bob';

/** Every per-user table, with a key that names one seeded row (after user_id) and a column to touch. */
const PER_USER = [
  { table: 'users', key: {}, column: 'name' },
  { table: 'personas', key: { id: 'p1' }, column: 'name' },
  { table: 'sessions', key: { id: 's1' }, column: 'title' },
  { table: 'messages', key: { session_id: 's1', id: 'm1' }, column: 'content' },
  { table: 'files', key: { session_id: 's1', id: SHA }, column: 'name' },
  { table: 'file_artifacts', key: { session_id: 's1', file_id: SHA, name: 'text.json' }, column: 'bytes' },
  { table: 'notes', key: { id: 'n1' }, column: 'text' },
  { table: 'summaries', key: { session_id: 's1' }, column: 'text' },
  { table: 'chunks', key: { session_id: 's1', id: 'm1:0' }, column: 'text' },
  { table: 'chunk_stats', key: {}, column: 'chunks' },
  { table: 'imports', key: { id: 'imp_00000000000000000000000000' }, column: 'record' },
  { table: 'chunk_terms', key: { term: 'hello', session_id: 's1', chunk_id: 'm1:0' }, column: 'tf' },
  { table: 'term_stats', key: { term: 'hello' }, column: 'chunks' },
  { table: 'api_keys', key: { id: 'abcdefghijkl' }, column: 'name' },
  { table: 'ingest_jobs', key: { id: 'j1' }, column: 'name' },
  { table: 'import_jobs', key: { id: 'ijob_00000000000000000000000000' }, column: 'job' },
  { table: 'session_archives', key: { session_id: 's1' }, column: 'raw_bytes' },
  { table: 'trashed_messages', key: { session_id: 's1', message_id: 'm0' }, column: 'message' },
] as const;

/** One row in every per-user table for `userId`, written the way the service will: as that user. */
async function seed(pool: pg.Pool, userId: string): Promise<void> {
  await withUser(pool, userId, async (c) => {
    await c.query("INSERT INTO memex.users (user_id, name) VALUES ($1, 'A person')", [userId]);
    await c.query("INSERT INTO memex.personas (user_id, id, name, instructions) VALUES ($1, 'p1', 'Tutor', 'Teach.')", [userId]);
    await c.query("INSERT INTO memex.sessions (user_id, id, title, persona_id) VALUES ($1, 's1', 'First', 'p1')", [userId]);
    await c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content) VALUES ($1, 's1', 'm1', 'user', 'hello there')", [userId]);
    await c.query("INSERT INTO memex.files (user_id, session_id, id, name, mime_type, ext, size, bytes) VALUES ($1, 's1', $2, 'a.pdf', 'application/pdf', 'pdf', 3, '\\x010203')", [userId, SHA]);
    await c.query("INSERT INTO memex.file_artifacts (user_id, session_id, file_id, name, bytes) VALUES ($1, 's1', $2, 'text.json', '\\x7b7d')", [userId, SHA]);
    await c.query("INSERT INTO memex.notes (user_id, id, kind, text) VALUES ($1, 'n1', 'fact', 'Likes tea')", [userId]);
    await c.query("INSERT INTO memex.summaries (user_id, session_id, text, covered_messages, method, tokens) VALUES ($1, 's1', 'said hello', 1, 'extractive', 3)", [userId]);
    await c.query(
      `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding, lexemes, term_counts, term_length)
       VALUES ($1, 's1', 'm1:0', 'message', 'm1', '{"kind":"message","messageId":"m1","role":"user"}', 0, 1, 0, 11, 'hello there', 4, 'test-model', '[1,0,0]', 'hello', '{"hello":1}', 2)`,
      [userId],
    );
    await c.query("INSERT INTO memex.chunk_stats (user_id, chunks, term_length) VALUES ($1, 1, 2)", [userId]);
    await c.query("INSERT INTO memex.imports (user_id, id, record) VALUES ($1, 'imp_00000000000000000000000000', '{}')", [userId]);
    await c.query("INSERT INTO memex.term_stats (user_id, term, chunks) VALUES ($1, 'hello', 1)", [userId]);
    await c.query("INSERT INTO memex.chunk_terms (user_id, term, session_id, chunk_id, tf, term_length) VALUES ($1, 'hello', 's1', 'm1:0', 1, 2)", [userId]);
    await c.query("INSERT INTO memex.api_keys (user_id, id, name, hash) VALUES ($1, 'abcdefghijkl', 'laptop', $2)", [userId, 'f'.repeat(64)]);
    await c.query("INSERT INTO memex.ingest_jobs (user_id, session_id, id, file_id, name, created) VALUES ($1, 's1', 'j1', $2, 'a.pdf', true)", [userId, SHA]);
    await c.query("INSERT INTO memex.import_jobs (user_id, id, job) VALUES ($1, 'ijob_00000000000000000000000000', '{}')", [userId]);
    await c.query("INSERT INTO memex.session_archives (user_id, session_id, format, payload, raw_bytes) VALUES ($1, 's1', 1, '\\x00', 1)", [userId]);
    await c.query("INSERT INTO memex.trashed_messages (user_id, session_id, message_id, trashed_at, message, chunks) VALUES ($1, 's1', 'm0', now(), '{}', '[]')", [userId]);
  });
}

/** A chunk's lexical columns as the store writes them (src/store/postgres/lexical.ts). */
function terms(text: string): ReturnType<typeof chunkTerms> {
  return chunkTerms(text, { stopwords: true, stemming: true });
}

function where(key: Record<string, string>, first: number): { sql: string; values: string[] } {
  const entries = Object.entries(key);
  return { sql: entries.map(([column], i) => ` AND ${column} = $${first + i}`).join(''), values: entries.map(([, value]) => value) };
}

describe('PostgreSQL schema', () => {
  let server: TestDatabase;
  let db: Database;

  beforeAll(async () => {
    server = await startTestDatabase();
  });
  afterAll(async () => {
    await db.close();
    await server.stop();
  });
  beforeEach(async () => {
    if (db) await db.close();
    await resetMemexSchema(server.url);
    db = await openDatabase(server.url);
  });

  describe('row-level security', () => {
    beforeEach(async () => {
      await seed(db.pool, ALICE);
      await seed(db.pool, BOB);
    });

    it('a transaction as memex_app with no user set reads nothing from any per-user table', async () => {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL ROLE memex_app');
        for (const { table } of PER_USER) {
          const seen = await client.query(`SELECT * FROM memex.${table}`);
          expect(seen.rowCount, table).toBe(0);
        }
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
      // The rows are there: each user sees exactly their own.
      for (const user of [ALICE, BOB]) {
        await withUser(db.pool, user, async (c) => {
          for (const { table } of PER_USER) {
            const seen = await c.query<{ user_id: string }>(`SELECT user_id FROM memex.${table}`);
            expect(seen.rows, table).toEqual([{ user_id: user }]);
          }
        });
      }
    });

    it("user B cannot read, update or delete user A's rows even with A's ids", async () => {
      await withUser(db.pool, BOB, async (c) => {
        for (const { table, key, column } of PER_USER) {
          const match = where(key, 2);
          const params = [ALICE, ...match.values];
          const read = await c.query(`SELECT * FROM memex.${table} WHERE user_id = $1${match.sql}`, params);
          expect(read.rowCount, `${table} select`).toBe(0);
          const updated = await c.query(`UPDATE memex.${table} SET ${column} = ${column} WHERE user_id = $1${match.sql}`, params);
          expect(updated.rowCount, `${table} update`).toBe(0);
          const unscoped = await c.query(`UPDATE memex.${table} SET user_id = user_id WHERE user_id <> $1`, [BOB]);
          expect(unscoped.rowCount, `${table} update without a key`).toBe(0);
        }
        // Children first, so a cascade cannot hide a refused delete.
        for (const { table, key } of [...PER_USER].reverse()) {
          const match = where(key, 2);
          const deleted = await c.query(`DELETE FROM memex.${table} WHERE user_id = $1${match.sql}`, [ALICE, ...match.values]);
          expect(deleted.rowCount, `${table} delete`).toBe(0);
        }
      });
      await withUser(db.pool, ALICE, async (c) => {
        for (const { table } of PER_USER) {
          const kept = await c.query(`SELECT 1 FROM memex.${table}`);
          expect(kept.rowCount, table).toBe(1);
        }
      });
    });

    it('memex_admin reads every profile and nothing under them, and writes nothing', async () => {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL ROLE memex_admin');
        const users = await client.query<{ user_id: string }>('SELECT user_id FROM memex.users ORDER BY 1');
        expect(users.rows.map((r) => r.user_id)).toEqual([ALICE, BOB]);
        for (const { table } of PER_USER.filter((t) => t.table !== 'users')) {
          await client.query('SAVEPOINT probe');
          // No grant at all on the tables under a user: reading them is refused, not just empty.
          await expect(client.query(`SELECT * FROM memex.${table}`), table).rejects.toMatchObject({ code: '42501' });
          await client.query('ROLLBACK TO SAVEPOINT probe');
        }
        await expect(client.query("UPDATE memex.users SET name = 'x'")).rejects.toMatchObject({ code: '42501' });
        await client.query('ROLLBACK');
      } finally {
        client.release();
      }
    });

    it('user B cannot write a row that belongs to user A', async () => {
      await withUser(db.pool, BOB, async (c) => {
        await expect(c.query("INSERT INTO memex.notes (user_id, id, kind, text) VALUES ($1, 'n2', 'fact', 'planted')", [ALICE])).rejects.toMatchObject({ code: '42501' });
      });
      await withUser(db.pool, BOB, async (c) => {
        await expect(c.query('UPDATE memex.notes SET user_id = $1', [ALICE])).rejects.toMatchObject({ code: '42501' });
      });
    });

    it('withUser leaves no role or user on the pooled connection after it ends', async () => {
      const one = new pg.Pool({ connectionString: server.url, max: 1 });
      try {
        await withUser(one, ALICE, async (c) => {
          const inside = await c.query<{ role: string; user: string }>("SELECT current_user AS role, current_setting('memex.user_id', true) AS user");
          expect(inside.rows[0]).toEqual({ role: 'memex_app', user: ALICE });
        });
        const after = await one.query<{ role: string; user: string | null }>("SELECT current_user AS role, current_setting('memex.user_id', true) AS user");
        expect(after.rows[0]?.role).not.toBe('memex_app');
        expect(after.rows[0]?.user ?? '').toBe('');
      } finally {
        await one.end();
      }
    });

    it('every table with a user_id has row-level security enabled, forced and a policy', async () => {
      const tables = await db.pool.query<{ table: string; enabled: boolean; forced: boolean; policies: number }>(
        `SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
                (SELECT count(*)::int FROM pg_policies p WHERE p.schemaname = 'memex' AND p.tablename = c.relname AND p.policyname = 'own_rows') AS policies
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'memex' AND c.relkind = 'r'
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped)
          ORDER BY 1`,
      );
      expect(tables.rows.map((r) => r.table)).toEqual(PER_USER.map((t) => t.table).sort());
      for (const row of tables.rows) expect(row, row.table).toMatchObject({ enabled: true, forced: true });
      // Each table has its own_rows policy; the few lookups across users are these named, narrow ones.
      const policies = await db.pool.query<{ table: string; policy: string; roles: string[] }>(
        "SELECT tablename AS table, policyname AS policy, roles::text[] AS roles FROM pg_policies WHERE schemaname = 'memex' ORDER BY 1, 2",
      );
      const extra = policies.rows.filter((p) => p.policy !== 'own_rows');
      expect(policies.rows.filter((p) => p.policy === 'own_rows').map((p) => p.table)).toEqual(PER_USER.map((t) => t.table).sort());
      expect(extra).toEqual([
        { table: 'api_keys', policy: 'admin_reads_keys', roles: ['memex_admin'] },
        { table: 'api_keys', policy: 'admin_revokes_keys', roles: ['memex_admin'] },
        { table: 'api_keys', policy: 'key_by_secret', roles: ['memex_app'] },
        { table: 'ingest_jobs', policy: 'worker_claims_unfinished', roles: ['memex_worker'] },
        { table: 'ingest_jobs', policy: 'worker_sees_unfinished', roles: ['memex_worker'] },
        { table: 'users', policy: 'admin_lists_users', roles: ['memex_admin'] },
      ]);
    });

    it('withUser keeps nothing of a function that throws, and the connection serves the next caller', async () => {
      const one = new pg.Pool({ connectionString: server.url, max: 1 });
      try {
        const failure = new Error('stops halfway');
        await expect(
          withUser(one, ALICE, async (c) => {
            await c.query("INSERT INTO memex.notes (user_id, id, kind, text) VALUES ($1, 'n9', 'fact', 'half-written')", [ALICE]);
            throw failure;
          }),
        ).rejects.toBe(failure);
        await withUser(one, ALICE, async (c) => {
          await expect(c.query("INSERT INTO memex.notes (user_id, id, kind, text) VALUES ($1, 'n1', 'fact', 'duplicate')", [ALICE])).rejects.toMatchObject({ code: '23505' });
        });
        const notes = await withUser(one, ALICE, (c) => c.query<{ id: string }>('SELECT id FROM memex.notes ORDER BY id'));
        expect(notes.rows.map((r) => r.id)).toEqual(['n1']);
      } finally {
        await one.end();
      }
    });

    it('withUser refuses an invalid user id before touching the database', async () => {
      await expectCode(withUser(db.pool, '../bob', async () => undefined), 'MEMEX_INVALID_ID');
    });
  });

  describe('tables', () => {
    beforeEach(async () => {
      await withUser(db.pool, ALICE, async (c) => {
        await c.query("INSERT INTO memex.users (user_id, name) VALUES ($1, 'Alice')", [ALICE]);
        await c.query("INSERT INTO memex.sessions (user_id, id) VALUES ($1, 's1')", [ALICE]);
      });
    });

    const session = async (): Promise<{ message_count: number; last_message_preview: string | null; last_message_at: Date | null }> =>
      withUser(db.pool, ALICE, async (c) => {
        const row = (await c.query("SELECT message_count, last_message_preview, last_message_at FROM memex.sessions WHERE id = 's1'")).rows[0] as
          | { message_count: number; last_message_preview: string | null; last_message_at: Date | null }
          | undefined;
        if (!row) throw new Error('session s1 is missing');
        return row;
      });

    it("the database keeps a session's message count, last time and preview", async () => {
      const add = (id: string, content: string, at: string): Promise<unknown> =>
        withUser(db.pool, ALICE, (c) => c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content, created_at) VALUES ($1, 's1', $2, 'user', $3, $4)", [ALICE, id, content, at]));
      await add('m1', 'first', '2026-01-01T00:00:00Z');
      await add('m2', '  second\n\tline  ', '2026-01-02T00:00:00Z');
      await add('m3', `third ${'word '.repeat(60)}`, '2026-01-03T00:00:00Z');
      let row = await session();
      expect(row.message_count).toBe(3);
      expect(row.last_message_at?.toISOString()).toBe('2026-01-03T00:00:00.000Z');
      expect(row.last_message_preview?.endsWith('…')).toBe(true);
      expect(row.last_message_preview?.length).toBeLessThanOrEqual(161);

      await withUser(db.pool, ALICE, (c) => c.query("DELETE FROM memex.messages WHERE user_id = $1 AND id = 'm3'", [ALICE]));
      row = await session();
      expect(row).toMatchObject({ message_count: 2, last_message_preview: 'second line' });
      expect(row.last_message_at?.toISOString()).toBe('2026-01-02T00:00:00.000Z');

      await withUser(db.pool, ALICE, (c) => c.query("UPDATE memex.messages SET content = 'edited' WHERE user_id = $1 AND id = 'm2'", [ALICE]));
      expect(await session()).toMatchObject({ message_count: 2, last_message_preview: 'edited' });

      await withUser(db.pool, ALICE, (c) => c.query('DELETE FROM memex.messages WHERE user_id = $1', [ALICE]));
      expect(await session()).toMatchObject({ message_count: 0, last_message_preview: null, last_message_at: null });

      // A batch append counts every row and previews the last one appended.
      await withUser(db.pool, ALICE, (c) =>
        c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content) VALUES ($1, 's1', 'b1', 'user', 'one'), ($1, 's1', 'b2', 'assistant', 'two')", [ALICE]),
      );
      expect(await session()).toMatchObject({ message_count: 2, last_message_preview: 'two' });
    });

    it("the preview folds whitespace and cuts near 160 characters at a word, as the flat files' preview does", async () => {
      const cases = [
        { text: `third ${'word '.repeat(60)}`, preview: `third${' word'.repeat(30)}…` },
        { text: 'x'.repeat(200), preview: `${'x'.repeat(160)}…` },
        { text: `a ${'y'.repeat(200)}`, preview: `a ${'y'.repeat(158)}…` },
        { text: '  tabs\t\tand\nnew  lines ', preview: 'tabs and new lines' },
      ];
      for (const { text, preview } of cases) {
        const folded = await db.pool.query<{ preview: string }>('SELECT memex.one_line($1, 160) AS preview', [text]);
        expect(folded.rows[0]?.preview).toBe(preview);
      }
    });

    it('a message cannot move to another session', async () => {
      await withUser(db.pool, ALICE, async (c) => {
        await c.query("INSERT INTO memex.sessions (user_id, id) VALUES ($1, 's2')", [ALICE]);
        await c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content) VALUES ($1, 's1', 'm1', 'user', 'x')", [ALICE]);
      });
      await withUser(db.pool, ALICE, async (c) => {
        await expect(c.query("UPDATE memex.messages SET session_id = 's2' WHERE user_id = $1", [ALICE])).rejects.toMatchObject({ code: '23514' });
      });
      expect((await session()).message_count).toBe(1);
    });

    it('deleting a session deletes its messages and files with it', async () => {
      await withUser(db.pool, ALICE, async (c) => {
        await c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content) SELECT $1, 's1', 'm' || i, 'user', 'x' FROM generate_series(1, 50) AS i", [ALICE]);
        await c.query("INSERT INTO memex.files (user_id, session_id, id, name, mime_type, ext, size, bytes) VALUES ($1, 's1', $2, 'a.pdf', 'application/pdf', 'pdf', 1, '\\x01')", [ALICE, SHA]);
      });
      expect((await session()).message_count).toBe(50);
      await withUser(db.pool, ALICE, async (c) => {
        await c.query("DELETE FROM memex.sessions WHERE user_id = $1 AND id = 's1'", [ALICE]);
        for (const table of ['messages', 'files']) expect((await c.query(`SELECT 1 FROM memex.${table}`)).rowCount, table).toBe(0);
      });
    });

    // Citus distributes by user_id only if every primary key, unique key and foreign key includes it.
    it('every key of a per-user table starts with user_id', async () => {
      const keys = await db.pool.query<{ name: string; table: string; first: string }>(
        `SELECT con.conname AS name, c.relname AS table, a.attname AS first
           FROM pg_constraint con
           JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
          WHERE n.nspname = 'memex' AND con.contype IN ('p', 'u', 'f') AND c.relname NOT IN ('memex_schema', 'model', 'lexical')`,
      );
      const unique = await db.pool.query<{ name: string; first: string }>(
        `SELECT i.indexrelid::regclass::text AS name, coalesce(a.attname, '(expression)') AS first
           FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
          WHERE n.nspname = 'memex' AND i.indisunique AND c.relname NOT IN ('memex_schema', 'model', 'lexical')`,
      );
      expect(keys.rowCount).toBeGreaterThan(20);
      for (const key of [...keys.rows, ...unique.rows]) expect(key.first, key.name).toBe('user_id');
    });

    it('a message role outside user, assistant, system and tool is refused', async () => {
      await withUser(db.pool, ALICE, async (c) => {
        await expect(c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content) VALUES ($1, 's1', 'm1', 'narrator', 'x')", [ALICE])).rejects.toMatchObject({ code: '23514' });
      });
      await withUser(db.pool, ALICE, async (c) => {
        // Tool calls belong to assistant messages only.
        await expect(c.query("INSERT INTO memex.messages (user_id, session_id, id, role, content, tool_calls) VALUES ($1, 's1', 'm1', 'user', 'x', '[]')", [ALICE])).rejects.toMatchObject({ code: '23514' });
      });
      expect((await session()).message_count).toBe(0);
    });

    it('persona names are unique per user ignoring case, and another user may reuse one', async () => {
      await withUser(db.pool, ALICE, (c) => c.query("INSERT INTO memex.personas (user_id, id, name, instructions) VALUES ($1, 'p1', 'Tutor', '')", [ALICE]));
      await withUser(db.pool, ALICE, async (c) => {
        await expect(c.query("INSERT INTO memex.personas (user_id, id, name, instructions) VALUES ($1, 'p2', ' tutor ', '')", [ALICE])).rejects.toMatchObject({ code: '23505' });
      });
      await withUser(db.pool, BOB, async (c) => {
        await c.query("INSERT INTO memex.users (user_id, name) VALUES ($1, 'Bob')", [BOB]);
        await c.query("INSERT INTO memex.personas (user_id, id, name, instructions) VALUES ($1, 'p1', 'TUTOR', '')", [BOB]);
      });
    });

    it('recording the model fixes the vector dimension and builds the HNSW index for it', async () => {
      expect(await readModel(db.pool)).toBeNull();
      await recordModel(db.pool, { model: 'test-model', dimension: 3 }, { m: 16, efConstruction: 64 });
      await recordModel(db.pool, { model: 'test-model', dimension: 3 }, { m: 16, efConstruction: 64 });
      expect(await readModel(db.pool)).toEqual({ model: 'test-model', dimension: 3 });
      await expectCode(recordModel(db.pool, { model: 'other-model', dimension: 4 }, { m: 16, efConstruction: 64 }), 'MEMEX_MODEL_MISMATCH');

      const chunk = (id: string, text: string, vector: string): Promise<unknown> =>
        withUser(db.pool, ALICE, (c) =>
          c.query(
            `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding,
                                       lexemes, term_counts, term_length)
             VALUES ($1, 's1', $2, 'message', 'm1', '{"kind":"message"}', 0, 1, 0, 1, $3, 1, 'test-model', $4, array_to_tsvector($5::text[]), $6, $7)`,
            [ALICE, id, text, vector, terms(text).lexemes, terms(text).term_counts, terms(text).term_length],
          ),
        );
      await chunk('c1', 'green tea in the morning', '[1,0,0]');
      await chunk('c2', 'black coffee at night', '[0,1,0]');
      await expect(chunk('c3', 'two numbers', '[1,0]')).rejects.toMatchObject({ code: '23514' });

      const index = await db.pool.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE schemaname = 'memex' AND indexname = 'chunks_embedding_hnsw'");
      expect(index.rows[0]?.indexdef).toMatch(/hnsw.*vector\(3\).*vector_cosine_ops/);

      await withUser(db.pool, ALICE, async (c) => {
        const nearest = await c.query<{ id: string }>("SELECT id FROM memex.chunks ORDER BY embedding::vector(3) <=> '[0.9,0.1,0]'::vector(3) LIMIT 1");
        expect(nearest.rows.map((r) => r.id)).toEqual(['c1']);
        const lexical = await c.query<{ id: string }>("SELECT id FROM memex.chunks WHERE lexemes @@ 'black'::tsquery");
        expect(lexical.rows.map((r) => r.id)).toEqual(['c2']);
      });
    });

    it('an HNSW setting pgvector cannot build is MEMEX_CONFIG_INVALID and records nothing', async () => {
      await expectCode(recordModel(db.pool, { model: 'test-model', dimension: 3 }, { m: 128, efConstruction: 200 }), 'MEMEX_CONFIG_INVALID');
      await expectCode(recordModel(db.pool, { model: 'big-model', dimension: 4096 }, { m: 16, efConstruction: 64 }), 'MEMEX_CONFIG_INVALID');
      expect(await readModel(db.pool)).toBeNull();
    });
  });
});
