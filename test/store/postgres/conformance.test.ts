import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { PostgresStore } from '../../../src/store/index.js';
import { withUser } from '../../../src/store/postgres/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { describeStoreConformance } from '../conformance.js';
import { describeVectorConformance } from '../vector-conformance.js';

let database: TestDatabase;
const open: PostgresStore[] = [];

beforeAll(async () => {
  database = await startTestDatabase();
}, 60_000);
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});
afterAll(async () => {
  await database?.stop();
});

async function openStore(): Promise<PostgresStore> {
  const store = await PostgresStore.open({ url: database.url, hnsw: { m: 8, efConstruction: 32 } });
  open.push(store);
  return store;
}

describeStoreConformance('PostgreSQL (pgvector)', async () => {
  await resetMemexSchema(database.url);
  let store = await openStore();
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = await openStore();
      return store;
    },
    async fingerprint() {
      const { rows } = await store.database.pool.query(
        `SELECT (SELECT md5(coalesce(string_agg(s::text, ',' ORDER BY s.user_id, s.id), '')) FROM memex.sessions s) AS sessions,
                (SELECT md5(coalesce(string_agg(a::text, ',' ORDER BY a.user_id, a.session_id), '')) FROM memex.session_archives a) AS archives,
                (SELECT count(*)::int FROM memex.messages) AS messages, (SELECT count(*)::int FROM memex.chunks) AS chunks, (SELECT count(*)::int FROM memex.files) AS files`,
      );
      return rows[0];
    },
  };
});

/**
 * The lexical index the store keeps as it writes (chunk-stats.ts) equals one made from the user's
 * chunks: N, the summed length, every term's document frequency with no term left at zero, and the
 * postings.
 */
async function statsMatchRecount(store: PostgresStore, userId: string): Promise<void> {
  await withUser(store.database.pool, userId, async (c) => {
    const kept = await c.query('SELECT chunks::int, term_length::int FROM memex.chunk_stats WHERE user_id = $1', [userId]);
    const total = await c.query('SELECT count(*)::int AS chunks, coalesce(sum(term_length), 0)::int AS term_length FROM memex.chunks WHERE user_id = $1', [userId]);
    expect(kept.rows[0] ?? { chunks: 0, term_length: 0 }).toEqual(total.rows[0]);
    const keptTerms = await c.query('SELECT term, chunks::int FROM memex.term_stats WHERE user_id = $1 ORDER BY term COLLATE "C"', [userId]);
    const countedTerms = await c.query(
      'SELECT t.term, count(*)::int AS chunks FROM memex.chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.lexemes)) AS t(term) WHERE c.user_id = $1 GROUP BY t.term ORDER BY t.term COLLATE "C"',
      [userId],
    );
    expect(keptTerms.rows).toEqual(countedTerms.rows);
    const postings = await c.query('SELECT session_id, chunk_id, term, tf, term_length FROM memex.chunk_terms WHERE user_id = $1 ORDER BY session_id, chunk_id, term COLLATE "C"', [userId]);
    const counted = await c.query(
      'SELECT c.session_id, c.id AS chunk_id, e.key AS term, e.value::int AS tf, c.term_length FROM memex.chunks c CROSS JOIN LATERAL jsonb_each_text(c.term_counts) AS e WHERE c.user_id = $1 ORDER BY c.session_id, c.id, e.key COLLATE "C"',
      [userId],
    );
    expect(postings.rows).toEqual(counted.rows);
  });
}

describeVectorConformance('PostgreSQL (pgvector)', {
  consistent: async () => statsMatchRecount(open.at(-1) as PostgresStore, 'alice'),
  sessionGone: async () => statsMatchRecount(open.at(-1) as PostgresStore, 'alice'),
  filesGone: async () => statsMatchRecount(open.at(-1) as PostgresStore, 'alice'),
  async open() {
    await resetMemexSchema(database.url);
    let store = await openStore();
    const reopen = async (): Promise<PostgresStore> => {
      await store.close();
      store = await openStore();
      return store;
    };
    return { store, reopen };
  },
});
