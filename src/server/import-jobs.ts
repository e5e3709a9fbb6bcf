import { rm } from 'node:fs/promises';
import { z } from 'zod';
import { MemexError, newImportId, toMemexError, type ImportSource } from '../core/index.js';
import type { ImportProgress, ImportReport } from '../import/index.js';
import type { Memex } from '../memex.js';

export const ImportJobSchema = z.object({
  id: z.string(),
  state: z.enum(['running', 'done', 'failed', 'cancelled']),
  dryRun: z.boolean(),
  files: z.array(z.string()),
  createdAt: z.string(),
  finishedAt: z.string().nullable(),
  progress: z.object({ phase: z.enum(['scan', 'store', 'embed']), done: z.number(), total: z.number().nullable(), messages: z.number() }).nullable(),
  report: z.unknown().nullable(),
  error: z.object({ code: z.string(), message: z.string(), hint: z.string() }).nullable(),
});
export type ImportJob = z.infer<typeof ImportJobSchema>;

export type ImportJobEvent = { type: 'progress' | 'end'; job: ImportJob };

interface Running {
  userId: string;
  job: ImportJob;
  controller: AbortController;
  listeners: Set<(event: ImportJobEvent) => void>;
}

/** How long a finished import job stays readable. */
const KEEP_MS = 60 * 60 * 1000;

/**
 * Import jobs of this server process: `POST /v1/imports` saves the upload and starts one; its
 * progress is read by polling or as server-sent events. They live in this process's memory: a
 * restart forgets them (the import stops where it was; running it again adds only what is missing,
 * since imports are idempotent), and with several instances a job is known to the one that runs it.
 */
export class ImportJobs {
  private readonly jobs = new Map<string, Running>();

  constructor(private readonly memex: Memex) {}

  /** Starts importing `paths` (files in `dir`, removed when the job ends) for the user. */
  start(userId: string, dir: string, paths: string[], names: string[], options: { source?: ImportSource; dryRun: boolean; attachments?: 'ingest' | 'store' }): ImportJob {
    const job: ImportJob = { id: `ijob_${newImportId().slice(4)}`, state: 'running', dryRun: options.dryRun, files: names, createdAt: new Date().toISOString(), finishedAt: null, progress: null, report: null, error: null };
    const running: Running = { userId, job, controller: new AbortController(), listeners: new Set() };
    this.jobs.set(job.id, running);
    const emit = (type: ImportJobEvent['type']): void => {
      for (const listener of running.listeners) listener({ type, job: running.job });
    };
    void this.memex.imports
      .run(userId, paths, {
        ...(options.source ? { source: options.source } : {}),
        dryRun: options.dryRun,
        ...(options.attachments ? { attachments: options.attachments } : {}),
        signal: running.controller.signal,
        onProgress: (progress: ImportProgress) => {
          running.job = { ...running.job, progress };
          emit('progress');
        },
      })
      .then(
        (report: ImportReport) => {
          running.job = { ...running.job, state: 'done', report };
        },
        (cause: unknown) => {
          const error = toMemexError(cause);
          running.job = { ...running.job, state: running.controller.signal.aborted ? 'cancelled' : 'failed', error: { code: error.code, message: error.message, hint: error.hint } };
        },
      )
      .finally(async () => {
        running.job = { ...running.job, finishedAt: new Date().toISOString() };
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        emit('end');
        running.listeners.clear();
        setTimeout(() => this.jobs.delete(job.id), KEEP_MS).unref();
      });
    return job;
  }

  /** The user's job; another user's is as missing as one that never was. */
  get(userId: string, jobId: string): ImportJob {
    return this.running(userId, jobId).job;
  }

  cancel(userId: string, jobId: string): ImportJob {
    const running = this.running(userId, jobId);
    if (running.job.finishedAt === null) running.controller.abort(new Error('cancelled'));
    return running.job;
  }

  /** Calls `listener` on each change until the job ends; returns the unfollow. */
  follow(userId: string, jobId: string, listener: (event: ImportJobEvent) => void): () => void {
    const running = this.running(userId, jobId);
    if (running.job.finishedAt !== null) {
      listener({ type: 'end', job: running.job });
      return () => undefined;
    }
    running.listeners.add(listener);
    return () => running.listeners.delete(listener);
  }

  /** Cancels what runs (the server is stopping). */
  stop(): void {
    for (const running of this.jobs.values()) if (running.job.finishedAt === null) running.controller.abort(new Error('the server is stopping'));
  }

  private running(userId: string, jobId: string): Running {
    const running = this.jobs.get(jobId);
    if (!running || running.userId !== userId) throw new MemexError('MEMEX_JOB_NOT_FOUND', `no import job ${jobId.slice(0, 40)} for this user on this server (import jobs are kept in the memory of the instance that runs them, an hour after they end)`, { details: { jobId } });
    return running;
  }
}
