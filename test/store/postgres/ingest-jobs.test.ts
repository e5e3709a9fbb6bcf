import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresJobQueue, withRole, type Database } from '../../../src/store/postgres/index.js';
import { heldKey } from '../../../src/store/jobs.js';
import { freshDatabases, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { describeJobQueueConformance, newJob } from '../jobs.conformance.js';
import { seedSession } from './seed.js';

let server: TestDatabase;
let db: Database | null = null;

beforeAll(async () => {
  server = await startTestDatabase();
});
const databases = freshDatabases(() => server.url);
afterAll(async () => {
  await databases.close();
  await server.stop();
});

async function freshDatabase(): Promise<Database> {
  db = await databases.fresh();
  return db;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describeJobQueueConformance('PostgreSQL', async () => {
  const database = await freshDatabase();
  return { queue: new PostgresJobQueue(database.pool), session: (userId, sessionId) => seedSession(database, userId, sessionId) };
});

describe('ingest jobs shared by several instances', () => {
  let database: Database;
  beforeEach(async () => {
    database = await freshDatabase();
    await seedSession(database, 'alice', 's1');
    await seedSession(database, 'bob', 's1');
  });

  // PGlite runs every connection on one backend session, so two claims never really contend for a
  // row lock here: this checks that claims hand out each job once; against a real PostgreSQL
  // (MEMEX_TEST_DATABASE_URL) the same test exercises FOR UPDATE SKIP LOCKED under contention.
  it('instances claiming at the same time take each job exactly once', async () => {
    const a = new PostgresJobQueue(database.pool, { instanceId: 'a' });
    const b = new PostgresJobQueue(database.pool, { instanceId: 'b' });
    const added = [];
    for (let i = 0; i < 12; i++) added.push((await a.add(newJob(i % 2 ? 'alice' : 'bob', { name: `${i}.pdf` }))).id);
    const taken: string[] = [];
    const drain = async (queue: PostgresJobQueue): Promise<void> => {
      for (let job = await queue.claim(); job; job = await queue.claim()) taken.push(job.id);
    };
    await Promise.all([drain(a), drain(b), drain(a), drain(b)]);
    expect(taken.sort()).toEqual(added.sort());
  });

  it("a running job is not claimed while its instance beats, and is taken over once that instance is silent", async () => {
    const a = new PostgresJobQueue(database.pool, { instanceId: 'a', staleMs: 1000 });
    const b = new PostgresJobQueue(database.pool, { instanceId: 'b', staleMs: 1000 });
    const job = await a.add(newJob('alice'));
    const claimed = (await a.claim())!;
    for (let i = 0; i < 3; i++) {
      await sleep(250);
      expect((await a.heartbeat({ job: claimed, progress: null })).has(heldKey(job))).toBe(true);
      expect(await b.claim()).toBeNull();
    }
    // a goes silent (as a killed process would).
    await sleep(1200);
    const taken = await b.claim();
    expect(taken).toMatchObject({ id: job.id, attempts: 2 });
    // a, if it was only stalled, finds it no longer holds the job and cannot end it.
    expect((await a.heartbeat({ job: claimed, progress: null })).has(heldKey(job))).toBe(false);
    expect(await a.finish(claimed, { state: 'failed', error: { code: 'MEMEX_PDF_INVALID', message: 'x', hint: 'y' } })).toBeNull();
    const result = { kind: 'pdf', ingested: true, pages: 1, chunks: 1, characters: 1, warnings: [] };
    expect(await b.finish(taken!, { state: 'done', result })).toMatchObject({ state: 'done', result });
  });

  it("an instance's idle heartbeat does not keep alive a running job it no longer runs (its end could not be written): it goes stale and runs again", async () => {
    const a = new PostgresJobQueue(database.pool, { instanceId: 'a', staleMs: 1000 });
    const b = new PostgresJobQueue(database.pool, { instanceId: 'b', staleMs: 1000 });
    const job = await a.add(newJob('alice'));
    await a.claim();
    for (let i = 0; i < 3; i++) {
      await sleep(500);
      expect((await a.heartbeat(null)).has(heldKey(job))).toBe(false);
    }
    expect(await b.claim()).toMatchObject({ id: job.id, attempts: 2 });
  });

  it('a job with a password stays with the instance that took it while it lives, then goes to another', async () => {
    const a = new PostgresJobQueue(database.pool, { instanceId: 'a', staleMs: 1000 });
    const b = new PostgresJobQueue(database.pool, { instanceId: 'b', staleMs: 1000 });
    const held = await a.add(newJob('alice', { needsPassword: true }));
    const open = await a.add(newJob('bob'));
    // b takes the job anyone may run, not the one whose password only a has.
    const other = (await b.claim())!;
    expect(other.id).toBe(open.id);
    await b.finish(other, { state: 'done', result: { kind: 'pdf', ingested: true, pages: 1, chunks: 1, characters: 1, warnings: [] } });
    expect(await b.claim()).toBeNull();
    await sleep(600);
    expect((await a.heartbeat(null)).has(heldKey(held))).toBe(true);
    await sleep(600);
    expect(await b.claim()).toBeNull();
    await sleep(1200);
    expect(await b.claim()).toMatchObject({ id: held.id, needsPassword: true });
  });

  it('a job given back on shutdown goes to another instance at once, and the attempt does not count', async () => {
    const a = new PostgresJobQueue(database.pool, { instanceId: 'a' });
    const b = new PostgresJobQueue(database.pool, { instanceId: 'b' });
    await a.add(newJob('alice'));
    await a.release((await a.claim())!);
    expect(await b.claim()).toMatchObject({ attempts: 1 });
  });

  it('finished jobs older than keepMs go when their user adds a job', async () => {
    const queue = new PostgresJobQueue(database.pool, { keepMs: 100 });
    const old = await queue.add(newJob('alice'));
    await queue.cancel('alice', old.id, { code: 'MEMEX_ABORTED', message: 'x', hint: 'y' });
    const bobs = await queue.add(newJob('bob'));
    await queue.cancel('bob', bobs.id, { code: 'MEMEX_ABORTED', message: 'x', hint: 'y' });
    await sleep(200);
    await queue.add(newJob('alice'));
    await expect(queue.get('alice', old.id)).rejects.toMatchObject({ code: 'MEMEX_JOB_NOT_FOUND' });
    expect((await queue.get('bob', bobs.id)).state).toBe('cancelled');
  });

  describe('under row-level security', () => {
    it('memex_worker sees only unfinished jobs, without their results, and cannot add, delete or finish one', async () => {
      const queue = new PostgresJobQueue(database.pool);
      const done = await queue.add(newJob('alice'));
      const claimed = (await queue.claim())!;
      await queue.finish(claimed, { state: 'done', result: { kind: 'pdf', ingested: true, pages: 1, chunks: 1, characters: 1, warnings: [] } });
      const waiting = await queue.add(newJob('bob'));
      await withRole(database.pool, 'memex_worker', async (c) => {
        const seen = await c.query<{ id: string }>('SELECT id FROM memex.ingest_jobs');
        expect(seen.rows.map((r) => r.id)).toEqual([waiting.id]);
        expect((await c.query("UPDATE memex.ingest_jobs SET heartbeat_at = now() WHERE id = $1", [done.id])).rowCount).toBe(0);
      });
      for (const sql of [
        'SELECT result FROM memex.ingest_jobs',
        'SELECT error FROM memex.ingest_jobs',
        'DELETE FROM memex.ingest_jobs',
        "UPDATE memex.ingest_jobs SET finished_at = now(), state = 'done'",
        "INSERT INTO memex.ingest_jobs (user_id, session_id, id, file_id, name, created) VALUES ('bob', 's1', 'j9', 'x', 'x', true)",
      ]) {
        await withRole(database.pool, 'memex_worker', async (c) => {
          await expect(c.query(sql), sql).rejects.toMatchObject({ code: '42501' });
        });
      }
      // Nor can it finish a job by moving it out of the states it may touch.
      await withRole(database.pool, 'memex_worker', async (c) => {
        await expect(c.query("UPDATE memex.ingest_jobs SET state = 'cancelled'")).rejects.toMatchObject({ code: '42501' });
      });
    });

    it("with no user set nothing is visible, and user B can neither read nor cancel A's job with its id", async () => {
      const queue = new PostgresJobQueue(database.pool);
      const job = await queue.add(newJob('alice'));
      const client = await database.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query('SET LOCAL ROLE memex_app');
        expect((await client.query('SELECT * FROM memex.ingest_jobs')).rowCount).toBe(0);
      } finally {
        await client.query('ROLLBACK');
        client.release();
      }
      await expect(queue.cancel('bob', job.id, { code: 'MEMEX_ABORTED', message: 'x', hint: 'y' })).rejects.toMatchObject({ code: 'MEMEX_JOB_NOT_FOUND' });
      expect((await queue.get('alice', job.id)).state).toBe('queued');
    });
  });
});
