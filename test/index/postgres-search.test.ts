import { afterAll, beforeAll } from 'vitest';
import { PostgresSearch } from '../../src/index/index.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { describeSearchConformance } from './search-conformance.js';

let server: TestDatabase;
beforeAll(async () => {
  server = await startTestDatabase();
}, 60_000);
afterAll(async () => {
  await server.stop();
});

// The Postgres search (PostgresSearch) over a PostgresStore on an empty schema per test.
describeSearchConformance('PostgreSQL', async (config) => {
  await resetMemexSchema(server.url);
  const store = await PostgresStore.open({ url: server.url, hnsw: { m: config.index.m, efConstruction: config.index.efConstruction }, maxConnections: 4 });
  return { store, backend: new PostgresSearch({ pool: store.database.pool, config }), close: () => store.close() };
});
