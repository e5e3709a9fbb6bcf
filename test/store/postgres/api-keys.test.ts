import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PostgresKeyStore, withRole, withUser, type Database } from '../../../src/store/postgres/index.js';
import { expectCode } from '../../helpers/errors.js';
import { freshDatabases, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';
import { describeKeyStoreConformance } from '../api-keys.conformance.js';

let server: TestDatabase;
let db: Database | null = null;

beforeAll(async () => {
  server = await startTestDatabase();
});
const databases = freshDatabases(() => server.url);
afterAll(async () => {
  await databases.close();
  await server.stop();
});

async function freshDatabase(): Promise<Database> {
  db = await databases.fresh();
  return db;
}

describeKeyStoreConformance('PostgreSQL', async () => {
  const { pool } = await freshDatabase();
  return { keys: new PostgresKeyStore(pool), another: () => new PostgresKeyStore(pool) };
});

describe('API keys under row-level security', () => {
  let keys: PostgresKeyStore;
  let alice: { key: string; info: { id: string } };

  beforeEach(async () => {
    const { pool } = await freshDatabase();
    keys = new PostgresKeyStore(pool, { cacheMs: 0 });
    alice = await keys.create('alice', 'laptop');
    await keys.create('bob', 'phone');
  });

  it('with no user and no key hash set, memex_app sees no key', async () => {
    const client = await db!.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL ROLE memex_app');
      expect((await client.query('SELECT * FROM memex.api_keys')).rowCount).toBe(0);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it("user B can neither read nor revoke A's key, even knowing its id", async () => {
    await withUser(db!.pool, 'bob', async (c) => {
      expect((await c.query('SELECT * FROM memex.api_keys WHERE id = $1', [alice.info.id])).rowCount).toBe(0);
      expect((await c.query("UPDATE memex.api_keys SET revoked_at = now() WHERE user_id = 'alice' AND id = $1", [alice.info.id])).rowCount).toBe(0);
      expect((await c.query("DELETE FROM memex.api_keys WHERE user_id = 'alice'")).rowCount).toBe(0);
      // Setting a key hash B does not know the secret of shows nothing either.
      await c.query("SELECT set_config('memex.key_hash', $1, true)", ['0'.repeat(64)]);
      expect((await c.query('SELECT * FROM memex.api_keys WHERE id = $1', [alice.info.id])).rowCount).toBe(0);
    });
    expect(await keys.verify(alice.key)).toMatchObject({ userId: 'alice' });
    // Revoking through B's own listing of keys cannot reach A's.
    expect(await keys.revokeUser('bob')).toBe(1);
    expect(await keys.verify(alice.key)).not.toBeNull();
  });

  it("the key hash setting shows one key, read-only: it cannot revoke or change it", async () => {
    const { createHash } = await import('node:crypto');
    const hash = createHash('sha256').update(alice.key.slice(-43)).digest('hex');
    await withUser(db!.pool, 'bob', async (c) => {
      await c.query("SELECT set_config('memex.key_hash', $1, true)", [hash]);
      expect((await c.query('SELECT user_id FROM memex.api_keys WHERE id = $1', [alice.info.id])).rows).toEqual([{ user_id: 'alice' }]);
      expect((await c.query('UPDATE memex.api_keys SET revoked_at = now() WHERE id = $1', [alice.info.id])).rowCount).toBe(0);
    });
    expect(await keys.verify(alice.key)).not.toBeNull();
  });

  it("memex_admin lists every key but can never read a key's hash, nor change anything but revoked_at", async () => {
    await withRole(db!.pool, 'memex_admin', async (c) => {
      expect((await c.query('SELECT user_id FROM memex.api_keys ORDER BY user_id')).rows).toEqual([{ user_id: 'alice' }, { user_id: 'bob' }]);
    });
    await withRole(db!.pool, 'memex_admin', async (c) => {
      await expect(c.query('SELECT hash FROM memex.api_keys')).rejects.toMatchObject({ code: '42501' });
    });
    await withRole(db!.pool, 'memex_admin', async (c) => {
      await expect(c.query('UPDATE memex.api_keys SET admin = true')).rejects.toMatchObject({ code: '42501' });
    });
    await withRole(db!.pool, 'memex_admin', async (c) => {
      await expect(c.query("INSERT INTO memex.api_keys (user_id, id, hash) VALUES ('eve', 'eeeeeeeeeeee', $1)", ['e'.repeat(64)])).rejects.toMatchObject({ code: '42501' });
    });
  });

  it('a key cache longer than a second is refused', () => {
    expect(() => new PostgresKeyStore(db!.pool, { cacheMs: 5000 })).toThrow(expect.objectContaining({ code: 'MEMEX_CONFIG_INVALID' }));
  });

  it('keys are made for users that have no profile yet (their first request creates it)', async () => {
    const { key } = await keys.create('newcomer');
    expect(await keys.verify(key)).toMatchObject({ userId: 'newcomer' });
    await expectCode(keys.revoke('nothere12345'), 'MEMEX_KEY_NOT_FOUND');
  });
});
