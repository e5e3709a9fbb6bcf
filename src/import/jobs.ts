import { FORMAT_VERSION, MemexError, newImportJobId, toMemexError, type ImportJob, type ImportProgress, type ImportReport, type ImportSource } from '../core/index.js';
import type { Store } from '../store/index.js';
import type { ImportOptions } from './run.js';

/** What a job's followers hear: each change while it runs, then its end. */
export type ImportJobEvent = { type: 'progress' | 'end'; job: ImportJob };

export interface ImportJobsDeps {
  store: Store;
  run(userId: string, paths: readonly string[], options: ImportOptions): Promise<ImportReport>;
}

export interface ImportJobsOptions {
  /** How often a running job saves its progress and hears a cancel asked elsewhere (default 1 s). */
  saveMs?: number;
  /** How often a follower polls a job that runs in another instance (default 500 ms). */
  pollMs?: number;
  /** A running job not saved for this long lost its instance (default 30 s): it is reported interrupted. */
  staleMs?: number;
}

export interface StartImportOptions {
  source?: ImportSource | undefined;
  dryRun: boolean;
  attachments?: ImportOptions['attachments'];
  /** Called once the job has ended and its end is saved (the caller removes the uploaded files). */
  onEnd?: () => Promise<void>;
}

interface Local {
  userId: string;
  job: ImportJob;
  controller: AbortController;
  listeners: Set<(event: ImportJobEvent) => void>;
  ended: Promise<void>;
}

/**
 * Import jobs: an import started in the background (the service's `POST /v1/imports`), kept in
 * the store so that any instance can report, follow and cancel it. The instance that runs a job
 * saves its progress every second and hears a cancel asked elsewhere at that save; a job whose
 * instance stopped (a restart, a crash) stops being saved and is reported as failed with
 * MEMEX_IMPORT_INTERRUPTED: its uploaded files were on that instance, so it is uploaded again
 * (imports are idempotent: what it had written is kept, and only the rest is added).
 */
export class ImportJobs {
  private readonly local = new Map<string, Local>();
  private readonly saveMs: number;
  private readonly pollMs: number;
  private readonly staleMs: number;

  constructor(
    private readonly deps: ImportJobsDeps,
    options: ImportJobsOptions = {},
  ) {
    this.saveMs = options.saveMs ?? 1000;
    this.pollMs = options.pollMs ?? 500;
    this.staleMs = options.staleMs ?? 30_000;
  }

  /** Starts importing `paths` for the user; resolves once the job is saved. */
  async start(userId: string, paths: readonly string[], names: readonly string[], options: StartImportOptions): Promise<ImportJob> {
    const now = new Date().toISOString();
    const job: ImportJob = {
      v: FORMAT_VERSION,
      id: newImportJobId(),
      state: 'running',
      dryRun: options.dryRun,
      files: names.map((name) => name.slice(0, 255)),
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      progress: null,
      report: null,
      error: null,
      cancelRequested: false,
    };
    await this.deps.store.saveImportJob(userId, job);
    const local: Local = { userId, job, controller: new AbortController(), listeners: new Set(), ended: Promise.resolve() };
    this.local.set(job.id, local);
    local.ended = this.runJob(local, paths, options);
    return job;
  }

  private async runJob(local: Local, paths: readonly string[], options: StartImportOptions): Promise<void> {
    const { store } = this.deps;
    const emit = (type: ImportJobEvent['type']): void => {
      for (const listener of local.listeners) listener({ type, job: local.job });
    };
    // Progress is saved at the job's pace, one save at a time; a cancel asked elsewhere comes back with it.
    const saves: { inFlight: Promise<void> | null } = { inFlight: null };
    const heartbeat = setInterval(() => {
      if (saves.inFlight) return;
      local.job = { ...local.job, updatedAt: new Date().toISOString() };
      saves.inFlight = store
        .saveImportJob(local.userId, local.job)
        .then(({ cancelRequested }) => {
          if (cancelRequested) local.controller.abort(new Error('cancelled'));
        })
        .catch(() => undefined)
        .finally(() => (saves.inFlight = null));
    }, this.saveMs);
    try {
      const report = await this.deps.run(local.userId, paths, {
        ...(options.source ? { source: options.source } : {}),
        dryRun: options.dryRun,
        ...(options.attachments ? { attachments: options.attachments } : {}),
        signal: local.controller.signal,
        onProgress: (progress: ImportProgress) => {
          local.job = { ...local.job, progress };
          emit('progress');
        },
      });
      local.job = { ...local.job, state: 'done', report };
    } catch (cause) {
      const error = toMemexError(cause);
      local.job = { ...local.job, state: local.controller.signal.aborted ? 'cancelled' : 'failed', error: { code: error.code, message: error.message, hint: error.hint } };
    } finally {
      clearInterval(heartbeat);
    }
    const now = new Date().toISOString();
    local.job = { ...local.job, updatedAt: now, finishedAt: now };
    // The end is saved after any progress save still in flight, so it is what the store keeps.
    await saves.inFlight;
    await store.saveImportJob(local.userId, local.job).catch(() => undefined);
    await options.onEnd?.().catch(() => undefined);
    this.local.delete(local.job.id);
    emit('end');
    local.listeners.clear();
  }

  /** The user's job: its latest progress when it runs here; another user's is MEMEX_JOB_NOT_FOUND. */
  async get(userId: string, jobId: string): Promise<ImportJob> {
    const local = this.local.get(jobId);
    if (local && local.userId === userId) return local.job;
    return this.seen(await this.deps.store.getImportJob(userId, jobId));
  }

  /** Cancels the job wherever it runs; what was imported is kept and recorded. */
  async cancel(userId: string, jobId: string): Promise<ImportJob> {
    const local = this.local.get(jobId);
    if (local && local.userId === userId) {
      local.controller.abort(new Error('cancelled'));
      return local.job;
    }
    await this.deps.store.requestImportJobCancel(userId, jobId);
    return this.get(userId, jobId);
  }

  /**
   * Calls `listener` on each change until the job ends; resolves with the unfollow. A job that runs
   * here is heard at once, one that runs elsewhere is polled.
   */
  async follow(userId: string, jobId: string, listener: (event: ImportJobEvent) => void): Promise<() => void> {
    const local = this.local.get(jobId);
    if (local && local.userId === userId) {
      local.listeners.add(listener);
      return () => local.listeners.delete(listener);
    }
    const first = await this.get(userId, jobId);
    if (first.finishedAt !== null) {
      listener({ type: 'end', job: first });
      return () => undefined;
    }
    let last = JSON.stringify(first);
    let stopped = false;
    const poller = setInterval(() => {
      this.get(userId, jobId).then(
        (job) => {
          const seen = JSON.stringify(job);
          if (stopped || seen === last) return;
          last = seen;
          if (job.finishedAt !== null) stop();
          listener({ type: job.finishedAt === null ? 'progress' : 'end', job });
        },
        () => undefined,
      );
    }, this.pollMs);
    const stop = (): void => {
      stopped = true;
      clearInterval(poller);
    };
    return stop;
  }

  /** Cancels the jobs that run here (the service or the library is stopping) and waits a little for their ends to be saved. */
  async stop(waitMs = 5000): Promise<void> {
    const ended = [...this.local.values()].map((local) => {
      local.controller.abort(new Error('the server is stopping'));
      return local.ended;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.all(ended), new Promise((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  /** A stored job as it stands: one still running whose instance stopped saving it was interrupted. */
  private seen(job: ImportJob): ImportJob {
    if (job.finishedAt !== null || Date.now() - Date.parse(job.updatedAt) < this.staleMs) return job;
    const error = new MemexError('MEMEX_IMPORT_INTERRUPTED', `import job ${job.id} stopped when the server instance running it did`);
    return { ...job, state: 'failed', finishedAt: job.updatedAt, error: { code: error.code, message: error.message, hint: error.hint } };
  }
}
