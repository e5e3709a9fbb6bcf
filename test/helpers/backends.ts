import { afterAll } from 'vitest';
import type { ConfigInput } from '../../src/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from './postgres.js';

/**
 * Suites that run on both backends (the facade, the server routes) take their store config from
 * here, so one test body runs against the flat files and against PostgreSQL (PGlite with pgvector
 * over the wire protocol, or MEMEX_TEST_DATABASE_URL). One database per test file, started on first
 * use and stopped after the file; each new data dir gets an empty `memex` schema, and reopening the
 * same data dir finds its data again, as on flat files.
 */
export const BACKENDS = ['flat', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

let database: Promise<TestDatabase> | null = null;
const seen = new Set<string>();

afterAll(async () => {
  if (database) await (await database).stop();
  database = null;
  seen.clear();
});

/** The config that puts `dataDir`'s data on `backend`. */
export async function backendConfig(backend: Backend, dataDir: string): Promise<Partial<ConfigInput>> {
  if (backend === 'flat') return {};
  database ??= startTestDatabase();
  const { url } = await database;
  if (!seen.has(dataDir)) {
    seen.add(dataDir);
    await resetMemexSchema(url);
  }
  return { store: { kind: 'postgres', url } };
}
