import type pg from 'pg';
import { MemexError } from '../../core/errors.js';
import { migrate, type MigrationResult } from './migrations.js';

export interface ConnectOptions {
  /** Connections in the pool. Each runs one transaction at a time; 10 is pg's default. */
  maxConnections?: number;
  /**
   * How long to wait for a connection before MEMEX_DATABASE_UNAVAILABLE (default 10 s). Without a
   * bound, a firewall that drops packets would stall every request instead of failing it.
   */
  connectTimeoutMs?: number;
}

export interface Database {
  readonly pool: pg.Pool;
  readonly migration: MigrationResult;
  close(): Promise<void>;
}

/**
 * Opens a pool on a PostgreSQL URL, checks that the server answers, enables pgvector and brings the
 * schema up to date. Every failure is coded: a URL that is not a PostgreSQL URL is
 * MEMEX_CONFIG_INVALID; a server that cannot be reached or refuses the login is
 * MEMEX_DATABASE_UNAVAILABLE; then MEMEX_PGVECTOR_MISSING and MEMEX_SCHEMA_NEWER from migrate().
 * The password never appears in a message.
 */
export async function openDatabase(url: string, options: ConnectOptions = {}): Promise<Database> {
  const where = describeUrl(url);
  // Loaded here, not with the module: a CLI on flat files starts without the PostgreSQL client.
  const { default: postgres } = await import('pg');
  const pool = new postgres.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
  });
  // An idle pooled connection that the server drops (a restart, a failover) is reported here; with
  // no listener Node would end the process. The pool discards it and the next query reconnects.
  pool.on('error', () => undefined);
  try {
    await pool.query('SELECT 1');
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw new MemexError('MEMEX_DATABASE_UNAVAILABLE', `cannot connect to PostgreSQL at ${where}: ${reason(error)}`, {
      cause: error,
      details: { database: where, ...errorFacts(error) },
    });
  }
  try {
    const migration = await migrate(pool);
    return { pool, migration, close: () => pool.end() };
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }
}

/** host:port/database of a URL, for messages: never the user's password. */
export function describeUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new MemexError('MEMEX_CONFIG_INVALID', 'the database URL is not a URL (expected postgres://user:password@host:port/database)', { cause: error });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new MemexError('MEMEX_CONFIG_INVALID', `the database URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`, {
      details: { protocol: parsed.protocol },
    });
  }
  return `${parsed.host || 'localhost'}${parsed.pathname || '/'}`;
}

function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(reason).join('; ');
  return error instanceof Error ? error.message || error.name : String(error);
}

/** The error's code (ECONNREFUSED, or a SQLSTATE such as 28P01 for a refused password). */
function errorFacts(error: unknown): Record<string, unknown> {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? { errorCode: code } : {};
}
