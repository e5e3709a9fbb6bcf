import type { Pool, PoolClient } from 'pg';
import { MemexError, parseId, type SessionId, type TermAnalysis, type UserId } from '../../core/index.js';
import type { StoreLimits, StoreWarning } from '../store.js';
import type { HnswBuild } from './model.js';
import { inTransaction } from './transaction.js';
import { ADMIN_ROLE, withRole, withUser } from './with-user.js';


export { DEFAULT_PAGE } from '../paging.js';
export const TITLE_CHARS = 60;

/**
 * What the parts of the Postgres store share: the pool, the limits and the HNSW build parameters.
 * Unlike the flat files it caches nothing: other service instances write the same database, so
 * every read goes to it.
 */
export class PgContext {
  closed = false;
  /** Bumped on every `vectorEpoch` call: other processes change rows, so no sync is ever current. */
  epoch = 0;

  constructor(
    readonly pool: Pool,
    readonly limits: StoreLimits,
    readonly hnsw: HnswBuild,
    readonly warn: (warning: StoreWarning) => void,
    /** The lexical analysis to record with the first chunks (search.stopwords, search.stemming). */
    readonly analysis: TermAnalysis = { stopwords: true, stemming: true },
  ) {}

  /** The database's recorded analysis once read: it never changes after it is recorded. */
  recordedAnalysis: TermAnalysis | null = null;

  assertOpen(): void {
    if (this.closed) throw new MemexError('MEMEX_STORE_CLOSED', 'this store is closed');
  }

  sessionIds(userId: string, sessionId: string): [UserId, SessionId] {
    this.assertOpen();
    return [parseId('user', userId), parseId('session', sessionId)];
  }

  /**
   * Runs `fn` as `userId` in one transaction (one logical write, all or nothing): the role drops to
   * memex_app and `memex.user_id` is set, both LOCAL, so row-level security decides what it sees.
   */
  as<T>(userId: UserId, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    return translate(withUser(this.pool, userId, fn));
  }

  /** Runs `fn` as memex_admin: it may read every profile and nothing under them. */
  admin<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    return translate(withRole(this.pool, ADMIN_ROLE, fn));
  }

  /** Runs `fn` as the connecting role (schema work: recording the model). */
  owner<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    this.assertOpen();
    return translate(inTransaction(this.pool, fn));
  }
}

/** The SQLSTATE of a driver error, if it has one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Driver and server errors as coded MemexErrors: a lost or refused connection is
 * MEMEX_DATABASE_UNAVAILABLE (the transaction was rolled back: nothing half-written), a full disk
 * MEMEX_DISK_FULL, a value the schema refuses MEMEX_INVALID_INPUT. MemexErrors pass as they are.
 */
export async function translate<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw asMemexError(error);
  }
}

export function asMemexError(error: unknown): MemexError {
  if (error instanceof MemexError) return error;
  const state = sqlState(error);
  const message = error instanceof Error ? error.message : String(error);
  if (state === undefined && !lostConnection(error)) return new MemexError('MEMEX_INTERNAL', message, { cause: error });
  if (state === undefined || state.startsWith('08') || state.startsWith('57P') || state === '53300') {
    return new MemexError('MEMEX_DATABASE_UNAVAILABLE', `the database connection failed: ${message}; nothing of this operation was kept`, {
      cause: error,
      ...(state ? { details: { sqlState: state } } : {}),
    });
  }
  if (state === '53100') return new MemexError('MEMEX_DISK_FULL', `the database is out of disk space: ${message}`, { cause: error });
  if (state.startsWith('22') || state.startsWith('23')) {
    return new MemexError('MEMEX_INVALID_INPUT', `the database refused a value: ${message}`, { cause: error, details: { sqlState: state } });
  }
  return new MemexError('MEMEX_INTERNAL', `the database failed: ${message}`, { cause: error, details: { sqlState: state } });
}

/** A socket error, or the driver's word for a connection that ended or never came. */
function lostConnection(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /connection terminated|connection error|terminating connection|timeout exceeded when trying to connect|not queryable/i.test(message);
}

export function iso(value: Date | string): string {
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

export function isoOrNull(value: Date | string | null): string | null {
  return value === null ? null : iso(value);
}
