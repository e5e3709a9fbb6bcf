import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, SearchOptionsSchema, type Where } from '../../../src/core/index.js';
import { HashedEmbedder } from '../../../src/embedding/index.js';
import { compileWhere } from '../../../src/core/where.js';
import { PostgresSearch } from '../../../src/index/index.js';
import { SqlParams, whereSql } from '../../../src/index/postgres/filters.js';
import { chunkTerms, countChunks, openDatabase, recordModel, withUser, type Database } from '../../../src/store/postgres/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

/** The analysis the config's defaults record (search.stopwords, search.stemming). */
const DEFAULT_ANALYSIS = { stopwords: true, stemming: true };

let server: TestDatabase;
let db: Database;
beforeAll(async () => {
  server = await startTestDatabase();
}, 60_000);
afterAll(async () => {
  await db?.close();
  await server.stop();
});
beforeEach(async () => {
  await db?.close();
  await resetMemexSchema(server.url);
  db = await openDatabase(server.url);
});

/** Metadata shapes a where filter meets: arrays, nested arrays, nulls, numbers as strings, objects, nothing. */
const DOCS: Record<string, unknown>[] = [
  {},
  { project: 'x', priority: 1, tags: ['a', 'b'] },
  { project: 'y', priority: 5, tags: [] },
  { project: 'x', priority: 3.5, due: '2025-03-01', done: false },
  { project: null, priority: '3', tags: [['a']], done: true },
  { project: ['x', 'z'], priority: [1, 10], nested: { a: 1 } },
  { 'dotted.key': 'v', priority: 2, due: '2025-12-31T23:59:59Z', tags: ['a', null, 2] },
  { project: 'X', priority: -1, due: 'é', done: 'true' },
];

const WHERES: Where[] = [
  { project: 'x' },
  { project: null },
  { project: { $eq: 'z' } },
  { project: { $ne: 'x' } },
  { project: { $ne: null } },
  { project: { $in: ['y', 'z', null] } },
  { project: { $nin: ['x'] } },
  { project: { $in: [] } },
  { project: { $nin: [] } },
  { tags: 'a' },
  { tags: null },
  { tags: 2 },
  { tags: { $in: ['b', 2] } },
  { priority: { $gt: 1 } },
  { priority: { $gte: 1, $lt: 5 } },
  { priority: { $lte: '3' } },
  { priority: 3.5 },
  { priority: 10 },
  { due: { $lt: '2025-06-01' } },
  { due: { $gte: 'a' } },
  { done: false },
  { done: true },
  { done: 'true' },
  { done: { $exists: true } },
  { done: { $exists: false } },
  { nested: { $exists: true } },
  { nested: 1 },
  { 'dotted.key': 'v' },
  { $or: [{ project: 'y' }, { priority: { $lt: 0 } }] },
  { $and: [{ project: 'x' }, { priority: { $gt: 2 } }] },
  { $or: [{ $and: [{ project: 'x' }, { tags: 'a' }] }, { done: true }], priority: { $ne: 3.5 } },
  {},
];

describe('where filters in SQL', () => {
  it('select exactly what compileWhere selects, for every filter over every metadata shape', async () => {
    for (const where of WHERES) {
      const params = new SqlParams();
      const docs = params.add(JSON.stringify(DOCS));
      const condition = whereSql(where, 'd.meta', params);
      const result = await db.pool.query<{ i: string }>(`SELECT d.i FROM jsonb_array_elements(${docs}::jsonb) WITH ORDINALITY AS d(meta, i) WHERE ${condition} ORDER BY d.i`, params.values);
      const test = compileWhere(where);
      const expected = DOCS.flatMap((doc, i) => (test(doc) ? [i + 1] : []));
      expect(result.rows.map((row) => Number(row.i)), JSON.stringify(where)).toEqual(expected);
    }
  });

  it('takes keys and values as parameters: quotes and SQL in them are only text', async () => {
    const where: Where = { "x'; DROP TABLE memex.users; --": "'); DELETE FROM memex.chunks; --", $or: [{ '"q"': { $in: ["a'b", 'c\\d'] } }] };
    const params = new SqlParams();
    const sql = whereSql(where, "'{}'::jsonb", params);
    expect(sql).not.toContain('DROP');
    expect(sql).not.toContain("a'b");
    const result = await db.pool.query(`SELECT ${sql} AS ok`, params.values);
    expect(result.rows).toEqual([{ ok: false }]);
  });
});

describe('PostgresSearch', () => {
  const embedder = new HashedEmbedder();
  const model = { model: embedder.modelId, dimension: embedder.dimension };

  /** `n` rows in one session of `userId`, written by SQL: "budget item i" plus `extra` "zebra" rows. */
  async function seed(userId: string, n: number, extra = 0): Promise<void> {
    await recordModel(db.pool, model, { m: 16, efConstruction: 64 });
    const texts = [...Array.from({ length: n }, (_, i) => `budget meeting item ${i}`), ...Array.from({ length: extra }, (_, i) => `zebra stripes ${i}`)];
    const vectors = await embedder.embed(texts);
    await withUser(db.pool, userId, async (c) => {
      await c.query('INSERT INTO memex.users (user_id, name) VALUES ($1, $1)', [userId]);
      await c.query("INSERT INTO memex.sessions (user_id, id) VALUES ($1, 'main')", [userId]);
      await c.query(
        `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding,
                                   lexemes, term_counts, term_length)
         SELECT $1, 'main', 'm' || i || ':0', 'message', 'm' || i,
                jsonb_build_object('kind', 'message', 'messageId', 'm' || i, 'role', CASE WHEN i > $4 THEN 'assistant' ELSE 'user' END, 'createdAt', '2025-01-01T00:00:00.000Z'),
                0, 1, 0, length(t), t, 3, $2, v::vector, array_to_tsvector(ARRAY(SELECT jsonb_object_keys(tc))), tc, tl
           FROM unnest($3::text[], $5::text[], $6::jsonb[], $7::int[]) WITH ORDINALITY AS r(t, v, tc, tl, i)`,
        [
          userId,
          model.model,
          texts,
          n,
          vectors.map((v: Float32Array) => `[${Array.from(v).join(',')}]`),
          texts.map((t) => JSON.stringify(chunkTerms(t, DEFAULT_ANALYSIS).term_counts)),
          texts.map((t) => chunkTerms(t, DEFAULT_ANALYSIS).term_length),
        ],
      );
      await countChunks(c, userId, texts.map((t, i) => ({ session_id: 'main', id: `m${i + 1}:0`, ...chunkTerms(t, DEFAULT_ANALYSIS) })));
    });
  }

  function search(options: { exactBelow?: number; iterativeScan?: 'relaxed_order' | 'strict_order' | 'off'; maxScanTuples?: number } = {}): PostgresSearch {
    const config = loadConfig({ env: {}, cwd: '/', overrides: { index: { exactBelow: options.exactBelow ?? 2000 } } });
    return new PostgresSearch({ pool: db.pool, config, ...(options.iterativeScan ? { iterativeScan: options.iterativeScan } : {}), ...(options.maxScanTuples ? { maxScanTuples: options.maxScanTuples } : {}) });
  }

  async function query(backend: PostgresSearch, userId: string, text: string, input: Record<string, unknown>) {
    const [vector] = await embedder.embed([text]);
    return backend.search(userId, { text, vector: vector as Float32Array, model }, SearchOptionsSchema.parse(input));
  }

  it('walks the HNSW index when many rows match, and reads few matching rows exactly', async () => {
    await seed('alice', 300);
    const walked = await query(search({ exactBelow: 100 }), 'alice', 'budget meeting item 7', { k: 5, mode: 'vector' });
    expect(walked.vectorPath).toBe('hnsw');
    expect(walked.hits).toHaveLength(5);
    expect(walked.hits[0]?.text).toBe('budget meeting item 7');
    const read = await query(search({ exactBelow: 1000 }), 'alice', 'budget meeting item 7', { k: 5, mode: 'vector' });
    expect(read.vectorPath).toBe('exact');
    expect(read.hits.map((hit) => hit.chunkId)).toEqual(walked.hits.map((hit) => hit.chunkId));
  });

  it('a selective filter the index walk cannot satisfy falls back to the exact scan and still returns k (iterative scans off)', async () => {
    await seed('alice', 400, 12);
    for (const iterativeScan of ['off', 'relaxed_order', 'strict_order'] as const) {
      const report = await query(search({ exactBelow: 0, iterativeScan, maxScanTuples: 50 }), 'alice', 'budget meeting item', { k: 10, mode: 'vector', roles: ['assistant'] });
      expect(report.hits, iterativeScan).toHaveLength(10);
      expect(report.hits.every((hit) => hit.text.startsWith('zebra')), iterativeScan).toBe(true);
      expect(report.matching).toBe(12);
    }
    // Iterative scans with room to go on find them through the index.
    const relaxed = await query(search({ exactBelow: 0, iterativeScan: 'relaxed_order', maxScanTuples: 20_000 }), 'alice', 'budget meeting item', { k: 10, mode: 'vector', roles: ['assistant'] });
    expect(relaxed.vectorPath).toBe('hnsw');
    expect(relaxed.hits).toHaveLength(10);
    // Without them the walk stops at ef_search rows, none of them a match: it came back short, so
    // the graph was walked (a scan of the table never comes back short), and the exact scan took over.
    const off = await query(search({ exactBelow: 0, iterativeScan: 'off' }), 'alice', 'budget meeting item', { k: 10, mode: 'vector', roles: ['assistant'] });
    expect(off.vectorPath).toBe('exact');
    expect(off.hits).toHaveLength(10);
  });

  it("another user's rows are invisible even on the shared graph, with row-level security the only filter", async () => {
    await seed('alice', 200);
    await seed('bob', 5);
    const report = await query(search({ exactBelow: 0 }), 'bob', 'budget meeting item 7', { k: 10, mode: 'hybrid' });
    expect(report.matching).toBe(5);
    expect(report.hits).toHaveLength(5);
    const users = await db.pool.query<{ user_id: string }>('SELECT DISTINCT user_id FROM memex.chunks WHERE id = ANY($1::text[])', [report.hits.map((hit) => hit.chunkId)]);
    expect(users.rows.map((row) => row.user_id).sort()).toEqual(['alice', 'bob']); // the ids exist for both...
    expect(report.hits.every((hit) => hit.text.endsWith(String(Number(hit.chunkId.slice(1, -2)) - 1)))).toBe(true); // ...and bob's are the ones returned
    expect(report.hits.map((hit) => hit.text).sort()).toEqual(['budget meeting item 0', 'budget meeting item 1', 'budget meeting item 2', 'budget meeting item 3', 'budget meeting item 4']);
  });

  it('query text with tsquery operators, quotes and backslashes is only words', async () => {
    await seed('alice', 20);
    for (const text of ["item & !budget | 'x':* <-> \\", "'); DROP TABLE memex.chunks; --", '!!! ::: ***']) {
      const report = await query(search(), 'alice', text, { k: 5, mode: 'lexical' });
      expect(report.mode).toBe('lexical');
    }
    expect((await query(search(), 'alice', "item & !budget | 'x'", { k: 50, mode: 'lexical' })).hits).toHaveLength(20);
    const count = await withUser(db.pool, 'alice', async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM memex.chunks')).rows[0]?.n);
    expect(count).toBe(20);
  });

  it('refuses a query embedded with another model (MEMEX_MODEL_MISMATCH)', async () => {
    await seed('alice', 3);
    const other = { model: 'other/model', dimension: model.dimension };
    await expect(search().search('alice', { text: 'x', vector: new Float32Array(model.dimension), model: other }, SearchOptionsSchema.parse({}))).rejects.toMatchObject({ code: 'MEMEX_MODEL_MISMATCH' });
  });
});
