import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { FORMAT_VERSION, FileIdSchema, SessionIdSchema, TimestampSchema, UserIdSchema } from '../core/index.js';

/**
 * Ingest jobs, the durable part: which uploads wait to be ingested, which one an instance runs, and
 * how each ended. The runner (src/ingest/jobs.ts) does the work; a `JobQueue` only remembers it:
 * `JournalJobQueue` in the data dir's ingest_jobs.jsonl for one process, `PostgresJobQueue` in the
 * database for any number of service instances. Both pass test/store/jobs.conformance.ts.
 */
export const JOB_STATES = ['queued', 'running', 'done', 'failed', 'cancelled'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const JobProgressSchema = z.object({ phase: z.string(), done: z.number(), total: z.number() });
export type JobProgress = z.infer<typeof JobProgressSchema>;

export const JobResultSchema = z.object({
  kind: z.string(),
  ingested: z.boolean(),
  pages: z.number(),
  chunks: z.number(),
  characters: z.number(),
  warnings: z.array(z.object({ code: z.string(), message: z.string() }).loose()),
});
export const JobErrorSchema = z.object({ code: z.string(), message: z.string(), hint: z.string() });
export type JobError = z.infer<typeof JobErrorSchema>;

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
  /** An encrypted PDF whose password only the accepting instance's memory holds. */
  needsPassword: z.boolean().default(false),
  /** How many times a runner started it: a job that takes its runner down each time is given up. */
  attempts: z.number().int().min(0).default(0),
  createdAt: TimestampSchema,
  finishedAt: TimestampSchema.nullable(),
  progress: JobProgressSchema.nullable(),
  result: JobResultSchema.nullable(),
  error: JobErrorSchema.nullable(),
});
export type Job = z.infer<typeof JobSchema>;

export interface NewJob {
  userId: string;
  sessionId: string;
  fileId: string;
  name: string;
  created: boolean;
  needsPassword: boolean;
}

/** How a job ends. */
export type JobEnd = { state: 'done'; result: NonNullable<Job['result']> } | { state: 'failed' | 'cancelled'; error: JobError };

export interface JobQueue {
  /**
   * Whether runners in other processes take jobs from this queue too. Then a job may run (and be
   * cancelled) elsewhere, and whoever follows it here reads its progress from the queue.
   */
  readonly shared: boolean;
  /** Jobs added here that wait to be claimed, as far as this instance knows (readiness reports it). */
  readonly waiting: number;
  /** Records a queued job; resolves once it is durable. A job that needs a password is held by this instance. */
  add(job: NewJob): Promise<Job>;
  /** The user's job; another user's job is as missing as one that never was (MEMEX_JOB_NOT_FOUND). */
  get(userId: string, jobId: string): Promise<Job>;
  /** The user's queued and running jobs. */
  unfinished(userId: string): Promise<Job[]>;
  /**
   * Takes the next job this instance may run, marks it running (one more attempt) and resolves with
   * it; null when none waits. A job is claimed by one runner at a time: a running job is claimed
   * again only when its runner stopped saying it is alive (it crashed, or lost the database).
   */
  claim(): Promise<Job | null>;
  /**
   * Says this instance is alive for the jobs it holds, and records the progress of the one it runs.
   * Resolves with the ids (`<userId>/<jobId>`) it still holds: a running job missing from them was
   * cancelled, or taken over after this instance was thought dead, and must stop.
   */
  heartbeat(running: { job: Job; progress: JobProgress | null } | null): Promise<Set<string>>;
  /** Ends a job this instance runs; null when it is no longer this instance's (cancelled meanwhile). */
  finish(job: Job, end: JobEnd): Promise<Job | null>;
  /** Ends a queued or running job as cancelled, whichever instance holds it; the job as it now is. */
  cancel(userId: string, jobId: string, error: JobError): Promise<Job>;
  /** Gives a job this instance runs back to the queue (the instance is stopping). */
  release(job: Job): Promise<void>;
}

/** The key `heartbeat` reports a held job by. */
export function heldKey(job: { userId: string; id: string }): string {
  return `${job.userId}/${job.id}`;
}

/** A new job's id: time-ordered, then random. */
export function newJobId(): string {
  return `job_${Date.now().toString(36)}${randomBytes(8).toString('hex')}`;
}
