import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../../src/store/postgres/index.js';
import { expectCode } from '../../helpers/errors.js';
import { refusedUrl, startTestDatabase, type TestDatabase } from '../../helpers/postgres.js';

describe('openDatabase', () => {
  it('a URL where no server listens is MEMEX_DATABASE_UNAVAILABLE, without the password in the message', async () => {
    const url = await refusedUrl();
    const error = await expectCode(openDatabase(url), 'MEMEX_DATABASE_UNAVAILABLE');
    expect(error.message).not.toContain('secret-password');
    expect(JSON.stringify(error.toJSON())).not.toContain('secret-password');
    expect(error.details).toMatchObject({ errorCode: 'ECONNREFUSED' });
  });

  it('a URL that is not a PostgreSQL URL is MEMEX_CONFIG_INVALID', async () => {
    await expectCode(openDatabase('mysql://root@127.0.0.1/memex'), 'MEMEX_CONFIG_INVALID');
    await expectCode(openDatabase('not a url'), 'MEMEX_CONFIG_INVALID');
  });

  // Always PGlite: the point is a server where the vector extension is not installed.
  describe('on a database without pgvector', () => {
    let bare: TestDatabase;
    beforeAll(async () => {
      bare = await startTestDatabase({ pgvector: false });
    });
    afterAll(async () => {
      await bare.stop();
    });

    it('is MEMEX_PGVECTOR_MISSING and creates nothing', async () => {
      await expectCode(openDatabase(bare.url), 'MEMEX_PGVECTOR_MISSING');
      const client = new pg.Client({ connectionString: bare.url });
      await client.connect();
      try {
        const schema = await client.query("SELECT 1 FROM pg_namespace WHERE nspname = 'memex'");
        expect(schema.rowCount).toBe(0);
      } finally {
        await client.end();
      }
    });
  });
});
