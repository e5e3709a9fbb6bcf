import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { JobRunner, type JobEvent, type JobWork } from '../../src/ingest/index.js';
import { MemexError } from '../../src/core/index.js';
import type { IngestResult } from '../../src/index.js';
import type { Job } from '../../src/store/index.js';
import { openDatabase, PostgresJobQueue, withUser, type Database } from '../../src/store/postgres/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { newJob } from '../store/jobs.conformance.js';
import { seedSession } from '../store/postgres/seed.js';

/**
 * The job runner over the shared (PostgreSQL) queue, with a FAKE ingest: these tests are about
 * the runner around the work (claiming, heartbeats, takeover, cancel, follow), not the ingest,
 * which test/server runs for real. The fake records every run, so "exactly once" can be counted.
 */
class FakeWork implements JobWork {
  readonly runs: string[] = [];
  readonly discarded: string[] = [];
  readonly passwords = new Map<string, string | undefined>();
  /** Jobs whose ingest waits until aborted (or released by `finish`). */
  hold = false;
  private readonly release = new Set<() => void>();

  async ingest(job: Job, options: { signal: AbortSignal; onProgress: (p: { phase: 'embed'; done: number; total: number }) => void; password?: string }): Promise<IngestResult> {
    this.runs.push(job.id);
    this.passwords.set(job.id, options.password);
    options.onProgress({ phase: 'embed', done: 1, total: 2 });
    if (this.hold) {
      await new Promise<void>((resolve, reject) => {
        const done = (): void => resolve();
        this.release.add(done);
        options.signal.addEventListener('abort', () => reject(options.signal.reason as Error), { once: true });
      });
    }
    options.signal.throwIfAborted();
    return { kind: 'pdf', ingested: true, pages: 1, chunks: 2, characters: 10, warnings: [] } as unknown as IngestResult;
  }

  discard(job: Job): Promise<void> {
    this.discarded.push(job.id);
    return Promise.resolve();
  }

  finish(): void {
    for (const done of this.release) done();
    this.release.clear();
  }
}

let server: TestDatabase;
let database: Database;
const runners: JobRunner[] = [];

beforeAll(async () => {
  server = await startTestDatabase();
});
afterAll(async () => {
  await server.stop();
});
beforeEach(async () => {
  await resetMemexSchema(server.url);
  database = await openDatabase(server.url);
  await seedSession(database, 'alice', 's1');
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
  await database.close();
});

function runner(work: JobWork, instanceId: string, staleMs = 15_000): JobRunner {
  const made = new JobRunner(new PostgresJobQueue(database.pool, { instanceId, staleMs }), work, { heartbeatMs: 100, pollMs: 50 });
  runners.push(made);
  return made;
}

async function until<T>(what: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await what();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`still not there: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const ended = (job: Job): boolean => job.finishedAt !== null;

describe('ingest jobs run by several instances', () => {
  it('each job runs exactly once while both instances are up', async () => {
    const work = new FakeWork();
    const a = runner(work, 'a');
    const b = runner(work, 'b');
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await (i % 2 ? a : b).add(newJob('alice', { name: `${i}.pdf` }))).id);
    for (const id of ids) expect(await until(() => a.get('alice', id), ended)).toMatchObject({ state: 'done', result: { chunks: 2 } });
    expect([...work.runs].sort()).toEqual([...ids].sort());
  });

  it("the job of an instance that went silent is taken over by another and completes", async () => {
    // A bare queue claims the job and never beats again: an instance killed mid-ingest.
    const dead = new PostgresJobQueue(database.pool, { instanceId: 'dead' });
    const job = await dead.add(newJob('alice'));
    expect((await dead.claim())?.id).toBe(job.id);
    const work = new FakeWork();
    const alive = runner(work, 'alive', 1000);
    expect(await until(() => alive.get('alice', job.id), ended)).toMatchObject({ state: 'done', attempts: 2 });
    expect(work.runs).toEqual([job.id]);
  });

  it('a job cancelled through another instance stops where it runs, keeps no file, and its followers hear the end', async () => {
    const work = new FakeWork();
    work.hold = true;
    const a = runner(work, 'a');
    const job = await a.add(newJob('alice'));
    await until(() => a.get('alice', job.id), (current) => current.state === 'running');
    const heard: JobEvent[] = [];
    // Another instance's runner, stopped so that it takes no job: it only follows and cancels.
    const viaB = new JobRunner(new PostgresJobQueue(database.pool, { instanceId: 'b' }), new FakeWork(), { pollMs: 50 });
    await viaB.stop();
    await viaB.follow('alice', job.id, (event) => heard.push(event));
    expect((await viaB.cancel('alice', job.id)).state).toBe('cancelled');
    expect(await until(() => a.get('alice', job.id), ended)).toMatchObject({ state: 'cancelled', error: { code: 'MEMEX_ABORTED' } });
    await until(async () => heard, (events) => events.some((event) => event.type === 'end'));
    expect(heard.at(-1)).toMatchObject({ type: 'end', job: { state: 'cancelled' } });
    expect(work.discarded).toEqual([job.id]);
    expect(work.runs).toEqual([job.id]);
  });

  it('a job followed on another instance is heard there, progress then end', async () => {
    const work = new FakeWork();
    work.hold = true;
    const a = runner(work, 'a');
    // Another instance's runner, stopped so that it takes no job: it only follows.
    const watcher = new JobRunner(new PostgresJobQueue(database.pool, { instanceId: 'w' }), new FakeWork(), { pollMs: 50 });
    await watcher.stop();
    const job = await a.add(newJob('alice'));
    const heard: JobEvent[] = [];
    await watcher.follow('alice', job.id, (event) => heard.push(event));
    await until(async () => heard, (events) => events.some((event) => event.job.progress?.done === 1));
    work.finish();
    await until(async () => heard, (events) => events.some((event) => event.type === 'end'));
    expect(heard.at(-1)).toMatchObject({ type: 'end', job: { state: 'done' } });
  });

  it('an instance that stops gives its running job back, and another finishes it', async () => {
    const held = new FakeWork();
    held.hold = true;
    const a = runner(held, 'a');
    const job = await a.add(newJob('alice'));
    await until(() => a.get('alice', job.id), (current) => current.state === 'running');
    await a.stop();
    expect(held.discarded).toEqual([]);
    const work = new FakeWork();
    const b = runner(work, 'b');
    expect(await until(() => b.get('alice', job.id), ended)).toMatchObject({ state: 'done', attempts: 1 });
  });

  it("a password job whose instance died fails as MEMEX_JOB_PASSWORD_LOST where it resumes; where it was taken it runs with its password", async () => {
    const work = new FakeWork();
    const a = runner(work, 'a');
    const kept = await a.add({ ...newJob('alice', { name: 'kept.pdf' }), password: 'sesame' });
    expect(await until(() => a.get('alice', kept.id), ended)).toMatchObject({ state: 'done' });
    expect(work.passwords.get(kept.id)).toBe('sesame');

    // The instance that took this one's password is gone (a bare queue: it never beats again).
    const dead = new PostgresJobQueue(database.pool, { instanceId: 'dead' });
    const lost = await dead.add(newJob('alice', { needsPassword: true }));
    const b = runner(work, 'b', 1000);
    expect(await until(() => b.get('alice', lost.id), ended)).toMatchObject({ state: 'failed', error: { code: 'MEMEX_JOB_PASSWORD_LOST' } });
    expect(work.runs).not.toContain(lost.id);
    expect(work.discarded).toContain(lost.id);
  });

  it('a job whose ingest lost the database runs again once its claim goes stale, rather than failing', async () => {
    const work = new FakeWork();
    const flaky: JobWork = {
      ingest: async (job, options) => {
        if (work.runs.length === 0) {
          work.runs.push(job.id);
          throw new MemexError('MEMEX_DATABASE_UNAVAILABLE', 'the database connection failed');
        }
        return work.ingest(job, options);
      },
      discard: (job) => work.discard(job),
    };
    const a = runner(flaky, 'a', 1000);
    const job = await a.add(newJob('alice'));
    expect(await until(() => a.get('alice', job.id), ended)).toMatchObject({ state: 'done', attempts: 2 });
    expect(work.runs).toEqual([job.id, job.id]);
    expect(work.discarded).toEqual([]);
  });

  it('a job that took its runner down on every start is given up as MEMEX_JOB_INTERRUPTED', async () => {
    const queue = new PostgresJobQueue(database.pool, { instanceId: 'x' });
    const job = await queue.add(newJob('alice'));
    await withUser(database.pool, 'alice', (c) => c.query('UPDATE memex.ingest_jobs SET attempts = 3 WHERE id = $1', [job.id]));
    const work = new FakeWork();
    const a = runner(work, 'a');
    expect(await until(() => a.get('alice', job.id), ended)).toMatchObject({ state: 'failed', error: { code: 'MEMEX_JOB_INTERRUPTED' } });
    expect(work.runs).toEqual([]);
  });
});
