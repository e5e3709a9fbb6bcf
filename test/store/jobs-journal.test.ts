import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JournalJobQueue } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { describeJobQueueConformance, newJob } from './jobs.conformance.js';

describeJobQueueConformance('ingest_jobs.jsonl', async () => ({ queue: await JournalJobQueue.open(await tempDir()), session: async () => undefined }));

describe('the ingest job journal', () => {
  it('queues again on open what was queued or running, counting the interrupted start, and skips a torn line', async () => {
    const dataDir = await tempDir();
    const queue = await JournalJobQueue.open(dataDir);
    const running = await queue.add(newJob('alice', { name: 'running.pdf' }));
    const waiting = await queue.add(newJob('alice', { name: 'waiting.pdf' }));
    expect((await queue.claim())?.id).toBe(running.id);
    await appendFile(join(dataDir, 'ingest_jobs.jsonl'), '{"v":1,"id":"job_torn"');

    const reopened = await JournalJobQueue.open(dataDir);
    expect(reopened.waiting).toBe(2);
    const again = await reopened.claim();
    expect(again).toMatchObject({ id: running.id, attempts: 2 });
    expect((await reopened.claim())?.id).toBe(waiting.id);
    expect(await readFile(join(dataDir, 'ingest_jobs.jsonl'), 'utf8')).not.toContain('job_torn');
  });
});
