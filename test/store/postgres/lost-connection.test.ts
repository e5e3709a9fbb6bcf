import { afterAll, describe, expect, it } from 'vitest';
import { isMemexError } from '../../../src/core/index.js';
import { PostgresStore } from '../../../src/store/index.js';
import { expectCode } from '../../helpers/errors.js';
import { startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

let database: TestDatabase | null = null;
afterAll(async () => {
  await database?.stop().catch(() => undefined);
});

describe('a database that goes away under an open store', () => {
  it('answers MEMEX_DATABASE_UNAVAILABLE for every call, never a crash or a hang (regression: a connection dropping while checked out ended the process)', async () => {
    database = await startTestDatabase({ forcePglite: true });
    const store = await PostgresStore.open({ url: database.url, connectTimeoutMs: 2_000 });
    try {
      await store.createUser({ id: 'alice' });
      const session = await store.createSession('alice');
      await database.stop();
      database = null;
      await expectCode(store.appendMessages('alice', session.id, [{ role: 'user', content: 'lost?' }]), 'MEMEX_DATABASE_UNAVAILABLE');
      await expectCode(store.listSessions('alice'), 'MEMEX_DATABASE_UNAVAILABLE');
      const error = await store.getUser('alice').catch((cause: unknown) => cause);
      expect(isMemexError(error, 'MEMEX_DATABASE_UNAVAILABLE')).toBe(true);
      // The password never appears in what a caller sees.
      expect(String((error as Error).message)).not.toContain('postgres:postgres');
    } finally {
      await store.close();
    }
  }, 60_000);
});
