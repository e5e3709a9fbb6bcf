import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FORMAT_VERSION, FileIdSchema, MemexError, SessionIdSchema, TimestampSchema, UserIdSchema, toMemexError } from '../core/index.js';
import type { IngestProgress, IngestResult, Memex } from '../index.js';
import { Durability, isNotFound } from '../store/index.js';

/**
 * Ingest jobs: an uploaded file is stored (and the upload acknowledged) first, then read, OCRed and
 * embedded here, one job at a time (ingest is CPU-bound; two at once only share the cores).
 *
 * Every change of state is appended to `<dataDir>/ingest_jobs.jsonl` before it is announced, so a
 * job the server acknowledged survives a restart or a crash: on start, jobs that were queued or
 * running are queued again (ingest keeps no rows of an interrupted run, so running it again is
 * safe). Finished jobs are kept for `keepMs` so clients can still poll them.
 */
export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const JobSchema = z.object({
  v: z.literal(FORMAT_VERSION),
  id: z.string(),
  userId: UserIdSchema,
  sessionId: SessionIdSchema,
  fileId: FileIdSchema,
  name: z.string(),
  state: z.enum(JOB_STATES),
  /** Whether the upload stored these bytes (a failed ingest then removes them again). */
  created: z.boolean(),
  createdAt: TimestampSchema,
  finishedAt: TimestampSchema.nullable(),
  progress: z.object({ phase: z.string(), done: z.number(), total: z.number() }).nullable(),
  result: z
    .object({ kind: z.string(), ingested: z.boolean(), pages: z.number(), chunks: z.number(), characters: z.number(), warnings: z.array(z.object({ code: z.string(), message: z.string() }).loose()) })
    .nullable(),
  error: z.object({ code: z.string(), message: z.string(), hint: z.string() }).nullable(),
});
export type Job = z.infer<typeof JobSchema>;

/** What a job's followers hear: progress while it runs, then its end. */
export type JobEvent = { type: 'progress'; job: Job } | { type: 'end'; job: Job };

export interface JobsOptions {
  /** How long finished jobs stay visible (default a day). */
  keepMs?: number;
  onError?: (error: unknown) => void;
}

export class IngestJobs {
  private readonly jobs = new Map<string, Job>();
  private readonly queue: string[] = [];
  private readonly followers = new Map<string, Set<(event: JobEvent) => void>>();
  /** Passwords of encrypted PDFs: in memory only, never in the journal (a restarted job without one fails as encrypted). */
  private readonly passwords = new Map<string, string>();
  private readonly durability = new Durability('always');
  private running: { id: string; abort: AbortController; done: Promise<void> } | null = null;
  private stopped = false;

  private constructor(
    private readonly memex: Memex,
    private readonly path: string,
    private readonly options: JobsOptions,
  ) {}

  /** Reads the journal, compacts it, and queues again what was unfinished. */
  static async open(memex: Memex, options: JobsOptions = {}): Promise<IngestJobs> {
    const jobs = new IngestJobs(memex, join(memex.config.dataDir, 'ingest_jobs.jsonl'), options);
    await jobs.load();
    return jobs;
  }

  private async load(): Promise<void> {
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (cause) {
      if (!isNotFound(cause)) throw cause;
    }
    const keepAfter = Date.now() - (this.options.keepMs ?? 86_400_000);
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
    this.pump();
  }

  /** Queues the ingest of a stored file; resolves once the job is in the journal. */
  async add(input: { userId: string; sessionId: string; fileId: string; name: string; created: boolean; password?: string }): Promise<Job> {
    if (this.stopped) throw new MemexError('MEMEX_SHUTTING_DOWN', 'the server is stopping and takes no new jobs');
    const job: Job = JobSchema.parse({
      v: FORMAT_VERSION,
      id: `job_${Date.now().toString(36)}${randomBytes(8).toString('hex')}`,
      userId: input.userId,
      sessionId: input.sessionId,
      fileId: input.fileId,
      name: input.name,
      state: 'queued',
      created: input.created,
      createdAt: new Date().toISOString(),
      finishedAt: null,
      progress: null,
      result: null,
      error: null,
    });
    await this.record(job);
    if (input.password !== undefined) this.passwords.set(job.id, input.password);
    this.queue.push(job.id);
    this.pump();
    return job;
  }

  /** The user's job; another user's job is as missing as one that never was. */
  get(userId: string, jobId: string): Job {
    const job = this.jobs.get(jobId);
    if (!job || job.userId !== userId) throw new MemexError('MEMEX_JOB_NOT_FOUND', `no job ${jobId}`, { details: { jobId } });
    return job;
  }

  /** Calls `listener` on each event of the job until it ends; returns how to stop listening. */
  follow(userId: string, jobId: string, listener: (event: JobEvent) => void): () => void {
    const job = this.get(userId, jobId);
    if (job.finishedAt !== null) {
      listener({ type: 'end', job });
      return () => undefined;
    }
    let set = this.followers.get(jobId);
    if (!set) this.followers.set(jobId, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Cancels a queued or running job (a running ingest stops at its next step and keeps no rows). */
  async cancel(userId: string, jobId: string): Promise<Job> {
    const job = this.get(userId, jobId);
    if (job.finishedAt !== null) return job;
    if (this.running?.id === jobId) {
      this.running.abort.abort(new MemexError('MEMEX_ABORTED', 'the job was cancelled'));
      await this.running.done;
      return this.get(userId, jobId);
    }
    this.queue.splice(this.queue.indexOf(jobId), 1);
    return this.finish(job, { state: 'cancelled', error: errorOf(new MemexError('MEMEX_ABORTED', 'the job was cancelled before it started')) });
  }

  /** Cancels every unfinished job of the user (their user is being deleted); resolves once none runs. */
  async cancelUser(userId: string): Promise<number> {
    const unfinished = [...this.jobs.values()].filter((job) => job.userId === userId && job.finishedAt === null);
    for (const job of unfinished) await this.cancel(userId, job.id);
    return unfinished.length;
  }

  /**
   * Stops taking jobs and interrupts the running one, which stays queued in the journal and runs
   * again on the next start. Resolves once nothing runs.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    const running = this.running;
    if (!running) return;
    running.abort.abort(new MemexError('MEMEX_SHUTTING_DOWN', 'the server is stopping'));
    await running.done;
  }

  /** Jobs waiting or running (what readiness reports). */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  private pump(): void {
    if (this.running || this.stopped) return;
    const id = this.queue.shift();
    if (id === undefined) return;
    const abort = new AbortController();
    const done = this.run(id, abort.signal)
      .catch((cause: unknown) => this.options.onError?.(cause))
      .finally(() => {
        this.running = null;
        this.pump();
      });
    this.running = { id, abort, done };
  }

  private async run(id: string, signal: AbortSignal): Promise<void> {
    let job = this.jobs.get(id);
    if (!job) return;
    job = { ...job, state: 'running' };
    this.jobs.set(id, job);
    this.announce({ type: 'progress', job });
    let lastAnnounced = 0;
    const onProgress = (progress: IngestProgress): void => {
      const current = this.jobs.get(id);
      if (!current) return;
      const updated = { ...current, progress };
      this.jobs.set(id, updated);
      // Progress is for watching, not for the journal: announced at most every 100 ms, never saved.
      const now = Date.now();
      if (now - lastAnnounced >= 100 || progress.done === progress.total) {
        lastAnnounced = now;
        this.announce({ type: 'progress', job: updated });
      }
    };
    const { userId, sessionId, fileId, name } = job;
    try {
      const password = this.passwords.get(id);
      const result = await this.memex.ingestFile(userId, sessionId, { stream: await this.memex.files.read(userId, sessionId, fileId) }, {
        name,
        signal,
        onProgress,
        ...(password !== undefined ? { password } : {}),
      });
      await this.finish(this.jobs.get(id) ?? job, { state: 'done', result: summaryOf(result) });
    } catch (cause) {
      const error = toMemexError(cause);
      // Interrupted by a shutdown: it stays queued in the journal and runs again on the next start.
      if (this.stopped && signal.aborted) return;
      // A file this upload stored and that cannot be ingested goes again, as in the library.
      if (job.created) await this.memex.files.delete(userId, sessionId, fileId).catch(() => undefined);
      await this.finish(this.jobs.get(id) ?? job, { state: error.code === 'MEMEX_ABORTED' ? 'cancelled' : 'failed', error: errorOf(error) });
    } finally {
      this.passwords.delete(id);
    }
  }

  private async finish(job: Job, change: Pick<Partial<Job>, 'result' | 'error'> & { state: JobState }): Promise<Job> {
    const finished: Job = { ...job, ...change, finishedAt: new Date().toISOString() };
    await this.record(finished);
    this.announce({ type: 'end', job: finished });
    this.followers.delete(job.id);
    return finished;
  }

  private async record(job: Job): Promise<void> {
    this.jobs.set(job.id, job);
    await this.durability.append(this.path, `${JSON.stringify(job)}\n`);
  }

  private announce(event: JobEvent): void {
    for (const listener of this.followers.get(event.job.id) ?? []) listener(event);
  }
}

function summaryOf(result: IngestResult): NonNullable<Job['result']> {
  return { kind: result.kind, ingested: result.ingested, pages: result.pages, chunks: result.chunks, characters: result.characters, warnings: result.warnings };
}

function errorOf(error: MemexError): NonNullable<Job['error']> {
  return { code: error.code, message: error.statusCode >= 500 ? `the ingest failed on the server (${error.code})` : error.message, hint: error.hint };
}
