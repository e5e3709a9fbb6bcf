import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { buildApp, type App } from '../../src/server/index.js';
import { openDatabase, PostgresKeyStore, type Database } from '../../src/store/postgres/index.js';
import { modelEnv } from '../helpers/model.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { expectProblem } from './setup.js';

/**
 * Two service instances whose API keys are the database's. (Their sessions are still in two flat
 * data dirs here: this file is about keys; the same over one PostgresStore is the end-to-end test.)
 */
describe('API keys in PostgreSQL, shared by two servers', () => {
  let server: TestDatabase;
  let db: Database;
  const apps: { app: App; memex: Memex; keys: PostgresKeyStore; dataDir: string }[] = [];

  beforeAll(async () => {
    server = await startTestDatabase();
    await resetMemexSchema(server.url);
    db = await openDatabase(server.url);
    for (let i = 0; i < 2; i++) {
      const keys = new PostgresKeyStore(db.pool);
      // Not tempDir(): these live across the tests of the file, and go in afterAll.
      const dataDir = await mkdtemp(join(tmpdir(), 'memex-keys-pg-'));
      const memex = await Memex.open({ dataDir, env: modelEnv, keys });
      apps.push({ app: await buildApp(memex), memex, keys, dataDir });
    }
  }, 60_000);
  afterAll(async () => {
    for (const { app, memex, dataDir } of apps) {
      await app.close();
      await memex.close();
      await rm(dataDir, { recursive: true, force: true });
    }
    await db.close();
    await server.stop();
  });

  const me = (app: App, key: string): Promise<{ statusCode: number }> => app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${key}` } });
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  it('a key revoked on one server is refused by the other within a second', async () => {
    const [a, b] = apps as [(typeof apps)[0], (typeof apps)[0]];
    const { key, info } = await a.keys.create('alice');
    expect((await me(a.app, key)).statusCode).toBe(200);
    expect((await me(b.app, key)).statusCode).toBe(200);
    await a.keys.revoke(info.id);
    expectProblem(await a.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${key}` } }), 401, 'MEMEX_UNAUTHORIZED');
    await sleep(1050);
    expectProblem(await b.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${key}` } }), 401, 'MEMEX_UNAUTHORIZED');
  });

  it("deleting a user on one server revokes their keys on both; an admin key made on one works on the other", async () => {
    const [a, b] = apps as [(typeof apps)[0], (typeof apps)[0]];
    const admin = (await b.keys.create('root', 'ops', { admin: true })).key;
    const carol = (await a.keys.create('carol')).key;
    expect((await me(a.app, carol)).statusCode).toBe(200);
    expect((await me(b.app, carol)).statusCode).toBe(200);
    const deleted = await a.app.inject({ method: 'DELETE', url: '/v1/users/carol', headers: { authorization: `Bearer ${admin}` } });
    expect(deleted.statusCode, deleted.body).toBe(204);
    await sleep(1050);
    expectProblem(await b.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${carol}` } }), 401, 'MEMEX_UNAUTHORIZED');
    expect((await a.keys.list('carol')).every((k) => k.revokedAt !== null)).toBe(true);
  });
});
