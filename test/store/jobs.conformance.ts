import { describe, expect, it } from 'vitest';
import { heldKey } from '../../src/store/jobs.js';
import type { JobQueue, NewJob } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';

export interface JobQueueHarness {
  queue: JobQueue;
  /** Makes the user's session exist where the queue needs it (the database's foreign key). */
  session(userId: string, sessionId: string): Promise<void>;
}

const FILE = 'a'.repeat(64);
const CANCELLED = { code: 'MEMEX_ABORTED', message: 'the job was cancelled', hint: 'run it again' };

export function newJob(userId: string, overrides: Partial<NewJob> = {}): NewJob {
  return { userId, sessionId: 's1', fileId: FILE, name: 'a.pdf', created: true, needsPassword: false, ...overrides };
}

/**
 * The contract every ingest job queue passes: the data dir's journal and the database's table.
 * `setup` gives a fresh, empty queue for each test.
 */
export function describeJobQueueConformance(name: string, setup: () => Promise<JobQueueHarness>): void {
  describe(`Job queue conformance: ${name}`, () => {
    async function ready(): Promise<JobQueue> {
      const harness = await setup();
      await harness.session('alice', 's1');
      await harness.session('bob', 's1');
      return harness.queue;
    }

    it('adds a queued job that only its user can see', async () => {
      const queue = await ready();
      const job = await queue.add(newJob('alice'));
      expect(job).toMatchObject({ userId: 'alice', sessionId: 's1', fileId: FILE, name: 'a.pdf', state: 'queued', created: true, attempts: 0, finishedAt: null, progress: null, result: null, error: null });
      expect(await queue.get('alice', job.id)).toEqual(job);
      await expectCode(queue.get('bob', job.id), 'MEMEX_JOB_NOT_FOUND');
      await expectCode(queue.get('alice', 'job_nosuch'), 'MEMEX_JOB_NOT_FOUND');
      expect((await queue.unfinished('alice')).map((j) => j.id)).toEqual([job.id]);
      expect(await queue.unfinished('bob')).toEqual([]);
    });

    it('claims the oldest job once, runs it to its end, and keeps the end', async () => {
      const queue = await ready();
      const first = await queue.add(newJob('alice', { name: 'first.pdf' }));
      const second = await queue.add(newJob('bob', { name: 'second.pdf' }));
      const claimed = await queue.claim();
      expect(claimed).toMatchObject({ id: first.id, state: 'running', attempts: 1 });
      expect((await queue.claim())?.id).toBe(second.id);
      expect(await queue.claim()).toBeNull();

      const held = await queue.heartbeat({ job: claimed!, progress: { phase: 'embed', done: 1, total: 2 } });
      expect(held.has(heldKey(first))).toBe(true);
      expect((await queue.get('alice', first.id)).progress).toEqual({ phase: 'embed', done: 1, total: 2 });

      const result = { kind: 'pdf', ingested: true, pages: 1, chunks: 2, characters: 30, warnings: [] };
      const done = await queue.finish(claimed!, { state: 'done', result });
      expect(done).toMatchObject({ id: first.id, state: 'done', result, error: null });
      expect(done?.finishedAt).not.toBeNull();
      expect(await queue.get('alice', first.id)).toEqual(done);
      // Finishing twice changes nothing.
      expect(await queue.finish(claimed!, { state: 'failed', error: CANCELLED })).toBeNull();
      expect((await queue.get('alice', first.id)).state).toBe('done');
      expect(await queue.unfinished('alice')).toEqual([]);
    });

    it('a cancelled queued job is never claimed', async () => {
      const queue = await ready();
      const job = await queue.add(newJob('alice'));
      const cancelled = await queue.cancel('alice', job.id, CANCELLED);
      expect(cancelled).toMatchObject({ state: 'cancelled', error: CANCELLED });
      expect(await queue.claim()).toBeNull();
      // Cancelling a finished job leaves it as it ended; another user's is not found.
      expect(await queue.cancel('alice', job.id, { ...CANCELLED, message: 'again' })).toEqual(cancelled);
      await expectCode(queue.cancel('bob', job.id, CANCELLED), 'MEMEX_JOB_NOT_FOUND');
    });

    it('a running job cancelled (from anywhere) is no longer held by its runner, and its late end is not kept', async () => {
      const queue = await ready();
      const job = await queue.add(newJob('alice'));
      const claimed = (await queue.claim())!;
      await queue.cancel('alice', job.id, CANCELLED);
      expect((await queue.heartbeat({ job: claimed, progress: null })).has(heldKey(job))).toBe(false);
      expect(await queue.finish(claimed, { state: 'failed', error: { ...CANCELLED, code: 'MEMEX_PDF_INVALID' } })).toBeNull();
      expect(await queue.get('alice', job.id)).toMatchObject({ state: 'cancelled', error: CANCELLED });
    });

    it('a job given back by a stopping runner is queued again', async () => {
      const queue = await ready();
      const job = await queue.add(newJob('alice'));
      const claimed = (await queue.claim())!;
      await queue.release(claimed);
      expect((await queue.get('alice', job.id)).state).toBe('queued');
    });
  });
}
