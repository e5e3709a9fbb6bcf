import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FORMAT_VERSION, MemexError } from '../../core/index.js';
import { Durability, isNotFound } from '../durable.js';
import { heldKey, JobSchema, newJobId, type Job, type JobEnd, type JobError, type JobProgress, type JobQueue, type NewJob } from '../jobs.js';

export interface JournalJobQueueOptions {
  /** How long finished jobs stay visible (default a day). */
  keepMs?: number;
}

/**
 * The ingest jobs of one process, in `<dataDir>/ingest_jobs.jsonl`. Every change of state is
 * appended before it is announced, so a job the server acknowledged survives a restart or a crash:
 * on open, jobs that were queued or running are queued again (ingest keeps no rows of an
 * interrupted run, so running it again is safe). The data dir's lock keeps a second process out,
 * so the journal is the whole truth and the queue lives in memory.
 */
export class JournalJobQueue implements JobQueue {
  readonly shared = false;
  private readonly jobs = new Map<string, Job>();
  private readonly queue: string[] = [];
  private readonly durability = new Durability('always');

  private constructor(private readonly path: string) {}

  /** Reads the journal, compacts it (dropping jobs finished longer than `keepMs` ago), and queues again what was unfinished. */
  static async open(dataDir: string, options: JournalJobQueueOptions = {}): Promise<JournalJobQueue> {
    const queue = new JournalJobQueue(join(dataDir, 'ingest_jobs.jsonl'));
    await queue.load(options.keepMs ?? 86_400_000);
    return queue;
  }

  get waiting(): number {
    return this.queue.length;
  }

  private async load(keepMs: number): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (cause) {
      if (!isNotFound(cause)) throw cause;
    }
    const keepAfter = Date.now() - keepMs;
    // Later lines win; a torn or foreign line (a crash mid-append) is skipped, never fatal.
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const job = JobSchema.parse(JSON.parse(line));
        this.jobs.set(job.id, job);
      } catch {
        continue;
      }
    }
    for (const [id, job] of this.jobs) {
      if (job.finishedAt !== null && Date.parse(job.finishedAt) < keepAfter) this.jobs.delete(id);
      else if (job.state === 'running' || job.state === 'queued') {
        this.jobs.set(id, { ...job, state: 'queued', progress: null });
        this.queue.push(id);
      }
    }
    // Rewritten whole (atomically): the journal stays as long as the jobs worth keeping.
    await this.durability.writeAtomic(this.path, [...this.jobs.values()].map((job) => `${JSON.stringify(job)}\n`).join(''));
  }

  async add(input: NewJob): Promise<Job> {
    const job: Job = JobSchema.parse({
      v: FORMAT_VERSION,
      id: newJobId(),
      ...input,
      state: 'queued',
      attempts: 0,
      createdAt: new Date().toISOString(),
      finishedAt: null,
      progress: null,
      result: null,
      error: null,
    });
    await this.record(job);
    this.queue.push(job.id);
    return job;
  }

  get(userId: string, jobId: string): Promise<Job> {
    const job = this.jobs.get(jobId);
    if (!job || job.userId !== userId) return Promise.reject(new MemexError('MEMEX_JOB_NOT_FOUND', `no job ${jobId}`, { details: { jobId } }));
    return Promise.resolve(job);
  }

  unfinished(userId: string): Promise<Job[]> {
    return Promise.resolve([...this.jobs.values()].filter((job) => job.userId === userId && job.finishedAt === null));
  }

  async claim(): Promise<Job | null> {
    for (let id = this.queue.shift(); id !== undefined; id = this.queue.shift()) {
      const job = this.jobs.get(id);
      if (job?.state !== 'queued') continue;
      // Journaled, so a job that takes the process down on every start is given up after a few.
      const running: Job = { ...job, state: 'running', attempts: job.attempts + 1, progress: null };
      await this.record(running);
      return running;
    }
    return null;
  }

  heartbeat(running: { job: Job; progress: JobProgress | null } | null): Promise<Set<string>> {
    if (running) {
      const current = this.jobs.get(running.job.id);
      // Progress is for watching, not for the journal: kept in memory, never saved.
      if (current?.state === 'running') this.jobs.set(current.id, { ...current, progress: running.progress });
    }
    return Promise.resolve(new Set([...this.jobs.values()].filter((job) => job.finishedAt === null).map(heldKey)));
  }

  async finish(job: Job, end: JobEnd): Promise<Job | null> {
    const current = this.jobs.get(job.id);
    if (current?.state !== 'running') return null;
    return this.end(current, end);
  }

  async cancel(userId: string, jobId: string, error: JobError): Promise<Job> {
    const job = await this.get(userId, jobId);
    if (job.finishedAt !== null) return job;
    const at = this.queue.indexOf(jobId);
    if (at >= 0) this.queue.splice(at, 1);
    return this.end(job, { state: 'cancelled', error });
  }

  release(job: Job): Promise<void> {
    // Not journaled: the journal says running, and a running job is queued again on the next open.
    const current = this.jobs.get(job.id);
    if (current?.state === 'running') this.jobs.set(job.id, { ...current, state: 'queued', progress: null });
    return Promise.resolve();
  }

  private async end(job: Job, end: JobEnd): Promise<Job> {
    const finished: Job = {
      ...job,
      state: end.state,
      result: end.state === 'done' ? end.result : null,
      error: end.state === 'done' ? null : end.error,
      finishedAt: new Date().toISOString(),
    };
    await this.record(finished);
    return finished;
  }

  private async record(job: Job): Promise<void> {
    this.jobs.set(job.id, job);
    await this.durability.append(this.path, `${JSON.stringify(job)}\n`);
  }
}
