import type { Pool, PoolClient } from 'pg';
import { MemexError } from '../../core/errors.js';
import { SCHEMA_V1 } from './schema-v1.js';
import { SCHEMA_V2 } from './schema-v2.js';
import { SCHEMA_V3 } from './schema-v3.js';
import { SCHEMA_V4, SCHEMA_V4_TRASHED_MESSAGES } from './schema-v4.js';
import { SCHEMA_V5 } from './schema-v5.js';
import { SCHEMA_V6 } from './schema-v6.js';
import { inTransaction } from './transaction.js';

/** One step of the schema. Released migrations are never edited: a change is a new version. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** The schema's history, oldest first; versions count up from 1 without gaps. */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  { version: 1, name: 'initial schema', sql: SCHEMA_V1 },
  { version: 2, name: 'lexical postings and statistics; imports', sql: SCHEMA_V2 },
  { version: 3, name: 'import jobs', sql: SCHEMA_V3 },
  { version: 4, name: 'session tags and trash', sql: SCHEMA_V4 + SCHEMA_V4_TRASHED_MESSAGES },
  { version: 5, name: 'session lineage and panels', sql: SCHEMA_V5 },
  { version: 6, name: 'session archives', sql: SCHEMA_V6 },
]);

/**
 * The advisory lock every schema change takes ('memex' in ASCII). Two instances opening an empty
 * database at once queue on it: the second finds the first's work recorded and applies nothing.
 */
export const SCHEMA_LOCK = 0x6d656d6578;

export interface MigrationResult {
  /** The database's version before, and after. */
  from: number;
  to: number;
  applied: number[];
}

/**
 * Brings the database to the newest schema this code knows, in one transaction: after a failure
 * nothing of a half-applied migration remains. Refuses a database migrated by a newer Memex
 * (MEMEX_SCHEMA_NEWER) rather than running against tables it does not understand; refuses one
 * where pgvector cannot be enabled (MEMEX_PGVECTOR_MISSING).
 */
export async function migrate(pool: Pool, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrationResult> {
  checkHistory(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await enablePgvector(client);
    await client.query('CREATE SCHEMA IF NOT EXISTS memex');
    await client.query(`CREATE TABLE IF NOT EXISTS memex.memex_schema (
      version integer PRIMARY KEY CHECK (version > 0),
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const from = await schemaVersion(client);
    if (from > latest) {
      throw new MemexError('MEMEX_SCHEMA_NEWER', `the database's schema is version ${from}; this Memex knows versions up to ${latest}`, {
        details: { databaseVersion: from, codeVersion: latest },
      });
    }
    const applied: number[] = [];
    for (const migration of migrations.filter((m) => m.version > from)) {
      await client.query(migration.sql);
      await client.query('INSERT INTO memex.memex_schema (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      applied.push(migration.version);
    }
    return { from, to: Math.max(from, latest), applied };
  });
}

/** The database's schema version: 0 for a database Memex has not touched. */
export async function schemaVersion(client: Pool | PoolClient): Promise<number> {
  const exists = await client.query<{ found: boolean }>("SELECT to_regclass('memex.memex_schema') IS NOT NULL AS found");
  if (exists.rows[0]?.found !== true) return 0;
  const result = await client.query<{ version: number | null }>('SELECT max(version) AS version FROM memex.memex_schema');
  return result.rows[0]?.version ?? 0;
}

async function enablePgvector(client: PoolClient): Promise<void> {
  try {
    await client.query('CREATE EXTENSION IF NOT EXISTS vector');
  } catch (error) {
    throw new MemexError('MEMEX_PGVECTOR_MISSING', `the database cannot enable pgvector: ${(error as Error).message}`, {
      cause: error,
      details: { sqlState: (error as { code?: unknown }).code },
    });
  }
}

function checkHistory(migrations: readonly Migration[]): void {
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) {
      throw new MemexError('MEMEX_INTERNAL', `migration ${i + 1} is numbered ${migration.version}: versions must count up from 1 without gaps`);
    }
  });
}
