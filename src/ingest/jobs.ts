import { MemexError, toMemexError } from '../core/index.js';
import { heldKey, type Job, type JobEnd, type JobError, type JobProgress, type JobQueue } from '../store/jobs.js';
import type { IngestProgress, IngestResult } from './ingest-file.js';

/** What a job's followers hear: progress while it runs, then its end. */
export type JobEvent = { type: 'progress'; job: Job } | { type: 'end'; job: Job };

/** The work a job stands for: the library's ingest of a stored file, and undoing its upload. */
export interface JobWork {
  ingest(job: Job, options: { signal: AbortSignal; onProgress: (progress: IngestProgress) => void; password?: string }): Promise<IngestResult>;
  /** Removes the file the job's upload stored (`job.created`) when it will not be ingested. */
  discard(job: Job): Promise<void>;
}

export interface JobRunnerOptions {
  /**
   * How often the runner says it is alive and records progress (default 1 s). Other instances read
   * a job's progress at this pace, and a cancel from another instance stops it within it; keep it
   * well under the queue's staleness (15 s by default).
   */
  heartbeatMs?: number;
  /** How often an idle runner asks a shared queue for work, and followers poll a job running elsewhere (default 500 ms). */
  pollMs?: number;
  /** Starts after which a job is given up as MEMEX_JOB_INTERRUPTED (default 3): each start took its runner down. */
  maxAttempts?: number;
  onError?: (error: unknown) => void;
}

/**
 * Runs ingest jobs from a queue, one at a time (ingest is CPU-bound; two at once only share the
 * cores). An upload is stored (and acknowledged) first, then read, OCRed and embedded here.
 *
 * With a shared queue (the database) several instances run this loop on the same jobs: each job
 * runs on one of them; a job whose instance died is taken over by another; a job can be followed
 * and cancelled from any of them. Passwords of encrypted PDFs stay in the memory of the instance
 * that took the upload and are never stored: a job that loses its instance loses its password,
 * and fails as MEMEX_JOB_PASSWORD_LOST wherever it resumes.
 */
export class JobRunner {
  private readonly followers = new Map<string, Set<(event: JobEvent) => void>>();
  private readonly passwords = new Map<string, string>();
  private running: { job: Job; progress: JobProgress | null; abort: AbortController; done: Promise<void> } | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private readonly loop: Promise<void>;
  private readonly heartbeatMs: number;
  private readonly pollMs: number;

  constructor(
    private readonly queue: JobQueue,
    private readonly work: JobWork,
    private readonly options: JobRunnerOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? 1000;
    this.pollMs = options.pollMs ?? 500;
    this.loop = this.runLoop();
  }

  /** Queues the ingest of a stored file; resolves once the job is durable. */
  async add(input: { userId: string; sessionId: string; fileId: string; name: string; created: boolean; password?: string }): Promise<Job> {
    if (this.stopped) throw new MemexError('MEMEX_SHUTTING_DOWN', 'the server is stopping and takes no new jobs');
    const { password, ...rest } = input;
    const job = await this.queue.add({ ...rest, needsPassword: password !== undefined });
    if (password !== undefined) this.passwords.set(job.id, password);
    this.wake?.();
    return job;
  }

  /** The user's job, with its latest progress when it runs here. */
  async get(userId: string, jobId: string): Promise<Job> {
    const local = this.running;
    if (local && local.job.id === jobId && local.job.userId === userId) return { ...local.job, progress: local.progress };
    return this.queue.get(userId, jobId);
  }

  /**
   * Calls `listener` on each event of the job until it ends; resolves with how to stop listening.
   * A job that runs here is heard at once; one that runs elsewhere is polled.
   */
  async follow(userId: string, jobId: string, listener: (event: JobEvent) => void): Promise<() => void> {
    let ended = false;
    let lastSeen = '';
    let poller: ReturnType<typeof setInterval> | null = null;
    let set = this.followers.get(jobId);
    if (!set) this.followers.set(jobId, (set = new Set()));
    const listeners = set;
    const stop = (): void => {
      ended = true;
      if (poller) clearInterval(poller);
      listeners.delete(hear);
    };
    const hear = (event: JobEvent): void => {
      if (ended) return;
      if (event.type === 'end') stop();
      lastSeen = JSON.stringify(event.job);
      listener(event);
    };
    // Listening first, then reading the job: an end announced in between is not missed.
    listeners.add(hear);
    let job: Job;
    try {
      job = await this.get(userId, jobId);
    } catch (error) {
      stop();
      throw error;
    }
    if (job.finishedAt !== null) {
      hear({ type: 'end', job });
      return stop;
    }
    lastSeen = JSON.stringify(job);
    if (this.queue.shared) {
      poller = setInterval(() => {
        if (this.running?.job.id === jobId) return;
        this.queue.get(userId, jobId).then(
          (current) => {
            if (JSON.stringify(current) !== lastSeen) hear({ type: current.finishedAt === null ? 'progress' : 'end', job: current });
          },
          (error: unknown) => {
            // Gone (its session or user was deleted): it ended, as far as a follower can tell.
            if (error instanceof MemexError && error.code === 'MEMEX_JOB_NOT_FOUND') hear({ type: 'end', job: { ...job, state: 'cancelled', finishedAt: new Date().toISOString() } });
            else this.options.onError?.(error);
          },
        );
      }, this.pollMs);
    }
    return stop;
  }

  /** Cancels a queued or running job, wherever it runs (a running ingest stops at its next step and keeps no rows). */
  async cancel(userId: string, jobId: string): Promise<Job> {
    const local = this.running;
    if (local && local.job.id === jobId && local.job.userId === userId) {
      local.abort.abort(new MemexError('MEMEX_ABORTED', 'the job was cancelled'));
      await local.done;
      return this.queue.get(userId, jobId);
    }
    const job = await this.queue.cancel(userId, jobId, errorOf(new MemexError('MEMEX_ABORTED', 'the job was cancelled')));
    this.passwords.delete(jobId);
    if (job.state === 'cancelled') this.announce({ type: 'end', job });
    return job;
  }

  /** Cancels every unfinished job of the user (their user is being deleted); resolves once none runs here. */
  async cancelUser(userId: string): Promise<number> {
    const unfinished = await this.queue.unfinished(userId);
    for (const job of unfinished) await this.cancel(userId, job.id);
    return unfinished.length;
  }

  /**
   * Stops taking jobs and interrupts the running one, which goes back to the queue (to another
   * instance now, or to this one's next start). Resolves once nothing runs.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.running?.abort.abort(new MemexError('MEMEX_SHUTTING_DOWN', 'the server is stopping'));
    await this.loop;
  }

  /** Jobs waiting here or running here (what readiness reports). */
  get pending(): number {
    return this.queue.waiting + (this.running ? 1 : 0);
  }

  private async runLoop(): Promise<void> {
    // A held password job keeps its hold while this instance waits for work, not only while it runs.
    let lastBeat = 0;
    while (!this.stopped) {
      let job: Job | null = null;
      try {
        if (this.queue.shared && Date.now() - lastBeat >= this.heartbeatMs) {
          lastBeat = Date.now();
          await this.queue.heartbeat(null);
        }
        job = await this.queue.claim();
      } catch (error) {
        this.options.onError?.(error);
      }
      if (this.stopped) {
        if (job) await this.queue.release(job).catch((error: unknown) => this.options.onError?.(error));
        break;
      }
      if (job) await this.run(job).catch((error: unknown) => this.options.onError?.(error));
      else await this.idle();
    }
  }

  /** Waits for an `add` here, or (a shared queue) the next look for work from elsewhere. */
  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.queue.shared ? setTimeout(() => done(), Math.min(this.pollMs, this.heartbeatMs)) : null;
      const done = (): void => {
        if (timer) clearTimeout(timer);
        this.wake = null;
        resolve();
      };
      this.wake = done;
    });
  }

  private async run(claimed: Job): Promise<void> {
    const abort = new AbortController();
    let finishDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finishDone = resolve));
    const state = { job: claimed, progress: null as JobProgress | null, abort, done };
    this.running = state;
    const { signal } = abort;
    const beat = setInterval(() => {
      this.queue.heartbeat({ job: claimed, progress: state.progress }).then(
        (held) => {
          if (!held.has(heldKey(claimed))) abort.abort(new MemexError('MEMEX_ABORTED', 'the job was cancelled (or taken over) elsewhere'));
        },
        (error: unknown) => this.options.onError?.(error),
      );
    }, this.heartbeatMs);
    try {
      this.announce({ type: 'progress', job: claimed });
      const end = await this.attempt(claimed, signal, state);
      if (end === 'released') {
        await this.queue.release(claimed).catch((error: unknown) => this.options.onError?.(error));
        return;
      }
      // Left running without a heartbeat: it goes stale and is claimed again (counting an attempt),
      // after `staleMs`, by whichever instance reaches the database then.
      if (end === 'abandoned') return;
      // Retried across a blip of the database; if it stays down, the job goes stale and runs again.
      const finished = (await retried(() => this.queue.finish(claimed, end))) ?? (await this.queue.get(claimed.userId, claimed.id).catch(() => null));
      if (finished) this.announce({ type: 'end', job: finished });
    } finally {
      clearInterval(beat);
      this.passwords.delete(claimed.id);
      this.running = null;
      finishDone();
    }
  }

  /**
   * Runs the ingest: how the job ends; or 'released' when a shutdown interrupted it (it goes back to
   * the queue now), or 'abandoned' when the database went away under it (it runs again later).
   */
  private async attempt(job: Job, signal: AbortSignal, state: { job: Job; progress: JobProgress | null }): Promise<JobEnd | 'released' | 'abandoned'> {
    const password = this.passwords.get(job.id);
    let lastAnnounced = 0;
    const onProgress = (progress: IngestProgress): void => {
      state.progress = progress;
      // Announced at most every 100 ms; the queue records it with the heartbeat.
      const now = Date.now();
      if (now - lastAnnounced >= 100 || progress.done === progress.total) {
        lastAnnounced = now;
        this.announce({ type: 'progress', job: { ...job, progress } });
      }
    };
    try {
      if (job.attempts > (this.options.maxAttempts ?? 3)) {
        throw new MemexError('MEMEX_JOB_INTERRUPTED', `the job was started ${job.attempts - 1} times and its runner stopped each time`, { details: { attempts: job.attempts - 1 } });
      }
      if (job.needsPassword && password === undefined) {
        throw new MemexError('MEMEX_JOB_PASSWORD_LOST', "the PDF's password was held only by the server instance that took the upload, and it stopped before the job ran");
      }
      const result = await this.work.ingest(job, { signal, onProgress, ...(password !== undefined ? { password } : {}) });
      return { state: 'done', result: summaryOf(result) };
    } catch (cause) {
      const error = toMemexError(cause);
      if (this.stopped && signal.aborted) return 'released';
      // The database went away under the ingest: nothing of it was kept, so it waits for another try.
      if (error.code === 'MEMEX_DATABASE_UNAVAILABLE' && this.queue.shared) return 'abandoned';
      // A file this upload stored and that cannot be ingested goes again, as in the library.
      if (job.created) await this.work.discard(job).catch(() => undefined);
      return { state: error.code === 'MEMEX_ABORTED' ? 'cancelled' : 'failed', error: errorOf(error) };
    }
  }

  private announce(event: JobEvent): void {
    for (const listener of this.followers.get(event.job.id) ?? []) listener(event);
    if (event.type === 'end') this.followers.delete(event.job.id);
  }
}

/** `work`, tried again after 0.2, 0.4, 0.8 and 1.6 s when it throws. */
async function retried<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= 4) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}

function summaryOf(result: IngestResult): NonNullable<Job['result']> {
  return { kind: result.kind, ingested: result.ingested, pages: result.pages, chunks: result.chunks, characters: result.characters, warnings: result.warnings };
}

function errorOf(error: MemexError): JobError {
  return { code: error.code, message: error.statusCode >= 500 ? `the ingest failed on the server (${error.code})` : error.message, hint: error.hint };
}
