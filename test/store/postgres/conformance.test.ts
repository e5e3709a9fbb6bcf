import { afterAll, afterEach, beforeAll } from 'vitest';
import { PostgresStore } from '../../../src/store/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { describeStoreConformance } from '../conformance.js';
import { describeVectorConformance } from '../vector-conformance.js';

let database: TestDatabase;
const open: PostgresStore[] = [];

beforeAll(async () => {
  database = await startTestDatabase();
}, 60_000);
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});
afterAll(async () => {
  await database?.stop();
});

async function openStore(): Promise<PostgresStore> {
  const store = await PostgresStore.open({ url: database.url, hnsw: { m: 8, efConstruction: 32 } });
  open.push(store);
  return store;
}

describeStoreConformance('PostgreSQL (pgvector)', async () => {
  await resetMemexSchema(database.url);
  let store = await openStore();
  return {
    get store() {
      return store;
    },
    async reopen() {
      await store.close();
      store = await openStore();
      return store;
    },
  };
});

describeVectorConformance('PostgreSQL (pgvector)', {
  async open() {
    await resetMemexSchema(database.url);
    let store = await openStore();
    const reopen = async (): Promise<PostgresStore> => {
      await store.close();
      store = await openStore();
      return store;
    };
    return { store, reopen };
  },
});
