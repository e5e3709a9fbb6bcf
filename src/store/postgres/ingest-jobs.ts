import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { FORMAT_VERSION, MemexError } from '../../core/index.js';
import { heldKey, JobSchema, newJobId, type Job, type JobEnd, type JobError, type JobProgress, type JobQueue, type NewJob } from '../jobs.js';
import { translate } from './context.js';
import { WORKER_ROLE, withRole, withUser } from './with-user.js';

export interface PostgresJobQueueOptions {
  /**
   * After how long without a heartbeat a running job's instance is taken for dead and the job is
   * claimed again by another (default 15 s). Shorter resumes sooner after a crash; it must stay
   * well above `heartbeatMs` plus the longest stall of the event loop or the database (a large
   * PDF's parse, a slow commit), or a live runner loses its job to another and both run it.
   */
  staleMs?: number;
  /** How long finished jobs stay visible (default a day); older ones of a user go when they add one. */
  keepMs?: number;
  /** Names this instance in `claimed_by` (default host, pid and a random part). */
  instanceId?: string;
}

interface JobRow {
  user_id: string;
  id: string;
  session_id: string;
  file_id: string;
  name: string;
  state: string;
  created: boolean;
  needs_password: boolean;
  attempts: number;
  created_at: Date;
  finished_at?: Date | null;
  progress?: unknown;
  result?: unknown;
  error?: unknown;
}

const ALL = 'user_id, id, session_id, file_id, name, state, created, needs_password, attempts, created_at, finished_at, progress, result, error';
/** What memex_worker may read of a job (schema-v1.ts grants it no more). */
const CLAIMED = 'j.user_id, j.id, j.session_id, j.file_id, j.name, j.state, j.created, j.needs_password, j.attempts, j.created_at';

/**
 * Ingest jobs in `memex.ingest_jobs`, shared by every service instance on the database.
 *
 * A worker claims the oldest claimable job with `FOR UPDATE SKIP LOCKED`, as memex_worker (which
 * sees only unfinished jobs, of any user): two instances claiming at once lock different rows, so a
 * job is claimed once. The claimant writes its id and a heartbeat; while the heartbeat is fresh no
 * one else claims the job, and once it is stale (the instance died) the next claim takes it over and
 * runs it again. Ingest keeps no rows of an interrupted run, so running it again is safe.
 *
 * Cancelling ends the row as cancelled from any instance; the instance running it finds at its next
 * heartbeat that it no longer holds the job and stops it. Finishing is conditional on still holding
 * it, so a cancelled or taken-over job is never overwritten by a late runner.
 *
 * The database's clock decides staleness (`now()`), so instances' clocks need not agree.
 */
export class PostgresJobQueue implements JobQueue {
  readonly shared = true;
  readonly waiting = 0;
  readonly instanceId: string;
  private readonly staleMs: number;
  private readonly keepMs: number;

  constructor(
    private readonly pool: Pool,
    options: PostgresJobQueueOptions = {},
  ) {
    this.instanceId = options.instanceId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.staleMs = options.staleMs ?? 15_000;
    this.keepMs = options.keepMs ?? 86_400_000;
    if (!(this.staleMs > 0) || !(this.keepMs > 0)) throw new MemexError('MEMEX_CONFIG_INVALID', 'the job queue needs a positive staleMs and keepMs');
  }

  async add(input: NewJob): Promise<Job> {
    return this.asUser(input.userId, async (client) => {
      await client.query("DELETE FROM memex.ingest_jobs WHERE finished_at < now() - $1 * interval '1 millisecond'", [this.keepMs]);
      // A job that needs a password only this instance has is held by it from the start.
      const inserted = await client.query<JobRow>(
        `INSERT INTO memex.ingest_jobs (user_id, session_id, id, file_id, name, created, needs_password, claimed_by, heartbeat_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $7 THEN $8 END, CASE WHEN $7 THEN now() END)
         RETURNING ${ALL}`,
        [input.userId, input.sessionId, newJobId(), input.fileId, input.name, input.created, input.needsPassword, this.instanceId],
      );
      return jobOf(inserted.rows[0] as JobRow);
    });
  }

  async get(userId: string, jobId: string): Promise<Job> {
    const found = await this.asUser(userId, (client) => client.query<JobRow>(`SELECT ${ALL} FROM memex.ingest_jobs WHERE id = $1`, [jobId]));
    const row = found.rows[0];
    if (!row) throw new MemexError('MEMEX_JOB_NOT_FOUND', `no job ${jobId}`, { details: { jobId } });
    return jobOf(row);
  }

  async unfinished(userId: string): Promise<Job[]> {
    const found = await this.asUser(userId, (client) => client.query<JobRow>(`SELECT ${ALL} FROM memex.ingest_jobs WHERE finished_at IS NULL ORDER BY created_at, id`));
    return found.rows.map(jobOf);
  }

  async claim(): Promise<Job | null> {
    const claimed = await this.asRole(WORKER_ROLE, (client) =>
      client.query<JobRow>(
        `UPDATE memex.ingest_jobs j
            SET state = 'running', claimed_by = $1, heartbeat_at = now(), attempts = j.attempts + 1, progress = NULL
           FROM (SELECT user_id, id FROM memex.ingest_jobs
                  WHERE (state = 'queued' AND (claimed_by IS NULL OR claimed_by = $1 OR heartbeat_at < now() - $2 * interval '1 millisecond'))
                     OR (state = 'running' AND heartbeat_at < now() - $2 * interval '1 millisecond')
                  ORDER BY created_at, id
                  LIMIT 1
                  FOR UPDATE SKIP LOCKED) AS next
          WHERE j.user_id = next.user_id AND j.id = next.id
         RETURNING ${CLAIMED}`,
        [this.instanceId, this.staleMs],
      ),
    );
    const row = claimed.rows[0];
    return row ? jobOf({ ...row, finished_at: null, progress: null, result: null, error: null }) : null;
  }

  async heartbeat(running: { job: Job; progress: JobProgress | null } | null): Promise<Set<string>> {
    return this.asRole(WORKER_ROLE, async (client) => {
      // Only the job it runs now, and the queued jobs it holds: a running job this instance no longer
      // runs (its end could not be written) goes stale, and is claimed and run again.
      const held = await client.query<{ user_id: string; id: string }>(
        `UPDATE memex.ingest_jobs SET heartbeat_at = now()
          WHERE claimed_by = $1 AND (state = 'queued' OR (state = 'running' AND user_id = $2 AND id = $3))
         RETURNING user_id, id`,
        [this.instanceId, running?.job.userId ?? null, running?.job.id ?? null],
      );
      if (running?.progress) await progress(client, this.instanceId, running.job, running.progress);
      return new Set(held.rows.map((row) => heldKey({ userId: row.user_id, id: row.id })));
    });
  }

  async finish(job: Job, end: JobEnd): Promise<Job | null> {
    const finished = await this.asUser(job.userId, (client) =>
      client.query<JobRow>(
        `UPDATE memex.ingest_jobs SET state = $3, result = $4, error = $5, finished_at = now()
          WHERE id = $1 AND claimed_by = $2 AND state = 'running'
         RETURNING ${ALL}`,
        [job.id, this.instanceId, end.state, end.state === 'done' ? JSON.stringify(end.result) : null, end.state === 'done' ? null : JSON.stringify(end.error)],
      ),
    );
    const row = finished.rows[0];
    return row ? jobOf(row) : null;
  }

  async cancel(userId: string, jobId: string, error: JobError): Promise<Job> {
    const cancelled = await this.asUser(userId, (client) =>
      client.query<JobRow>(`UPDATE memex.ingest_jobs SET state = 'cancelled', error = $2, finished_at = now() WHERE id = $1 AND finished_at IS NULL RETURNING ${ALL}`, [
        jobId,
        JSON.stringify(error),
      ]),
    );
    const row = cancelled.rows[0];
    return row ? jobOf(row) : this.get(userId, jobId);
  }

  async release(job: Job): Promise<void> {
    // Back to the queue for any instance now, rather than after staleMs; the attempt does not count.
    await this.asRole(WORKER_ROLE, (client) =>
      client.query(
        `UPDATE memex.ingest_jobs SET state = 'queued', claimed_by = NULL, heartbeat_at = NULL, progress = NULL, attempts = greatest(attempts - 1, 0)
          WHERE user_id = $1 AND id = $2 AND claimed_by = $3 AND state = 'running'`,
        [job.userId, job.id, this.instanceId],
      ),
    );
  }

  /** As the user, under row-level security; driver errors become coded ones (a lost connection is MEMEX_DATABASE_UNAVAILABLE). */
  private asUser<T>(userId: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return translate(withUser(this.pool, userId, fn));
  }

  private asRole<T>(role: typeof WORKER_ROLE, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return translate(withRole(this.pool, role, fn));
  }
}

async function progress(client: PoolClient, instanceId: string, job: Job, value: JobProgress): Promise<void> {
  await client.query("UPDATE memex.ingest_jobs SET progress = $4 WHERE user_id = $1 AND id = $2 AND claimed_by = $3 AND state = 'running'", [
    job.userId,
    job.id,
    instanceId,
    JSON.stringify(value),
  ]);
}

function jobOf(row: JobRow): Job {
  return JobSchema.parse({
    v: FORMAT_VERSION,
    id: row.id,
    userId: row.user_id,
    sessionId: row.session_id,
    fileId: row.file_id,
    name: row.name,
    state: row.state,
    created: row.created,
    needsPassword: row.needs_password,
    attempts: row.attempts,
    createdAt: row.created_at.toISOString(),
    finishedAt: row.finished_at ? row.finished_at.toISOString() : null,
    progress: row.progress ?? null,
    result: row.result ?? null,
    error: row.error ?? null,
  });
}
