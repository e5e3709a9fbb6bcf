import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS } from '../../src/store/postgres/migrations.js';
import { json, memex } from '../helpers/cli.js';
import { modelEnv } from '../helpers/model.js';
import { refusedUrl, resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await startTestDatabase();
  await resetMemexSchema(database.url);
}, 60_000);
afterAll(async () => {
  await database?.stop();
});

describe('the CLI on PostgreSQL', () => {
  it('migrates the schema with `memex db migrate`, once', async () => {
    const first = await json<{ from: number; to: number; applied: number[] }>(['db', 'migrate', '--database-url', database.url]);
    expect(first).toMatchObject({ from: 0, to: MIGRATIONS.length, applied: MIGRATIONS.map((m) => m.version) });
    expect(await json(['db', 'migrate', '--database-url', database.url])).toMatchObject({ from: MIGRATIONS.length, to: MIGRATIONS.length, applied: [] });
    const human = await memex(['db', 'migrate'], { env: { MEMEX_DATABASE_URL: database.url } });
    expect(human.stdout).toContain(`up to date (version ${MIGRATIONS.length})`);
    const missing = await memex(['db', 'migrate'], { env: { MEMEX_DATABASE_URL: '' } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('MEMEX_USAGE');
  });

  it('adds, lists, searches, reindexes and checks with --database-url or MEMEX_DATABASE_URL, nothing in the data dir', async () => {
    const dataDir = join(await tempDir(), 'data');
    const flag = ['--database-url', database.url];
    const env = { ...modelEnv, MEMEX_DATA_DIR: dataDir };
    const added = await json<{ sessionId: string }>([...flag, 'add', 'My cat is called Miso and she loves tuna.'], { env });
    await json([...flag, 'add', '-s', added.sessionId, 'The invoice number for the roof repair is 4471.'], { env });
    const viaEnv = { ...env, MEMEX_DATABASE_URL: database.url };
    const sessions = await json<{ sessions: { id: string; messageCount: number }[] }>(['session', 'list'], { env: viaEnv });
    expect(sessions.sessions).toEqual([expect.objectContaining({ id: added.sessionId, messageCount: 2 })]);
    const found = await json<{ hits: { text: string }[] }>(['search', 'what is the cat called'], { env: viaEnv });
    expect(found.hits[0]?.text).toContain('Miso');
    expect(await json(['reindex'], { env: viaEnv })).toMatchObject({ sessionsTotal: 1 });
    const doctor = await json<{ ok: boolean; rows: number }>(['doctor'], { env: viaEnv });
    expect(doctor).toMatchObject({ ok: true, rows: 2 });
    // Without the URL the CLI is back on the (empty) data dir: the messages went to the database.
    expect(await json(['session', 'list'], { env })).toMatchObject({ total: 0 });
  }, 120_000);

  it('says what is wrong with a bad URL or an unreachable server, with its code', async () => {
    const bad = await memex(['session', 'list', '--database-url', 'mysql://nope']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('MEMEX_CONFIG_INVALID');
    const refused = await memex(['session', 'list'], { env: { MEMEX_DATABASE_URL: await refusedUrl() } });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('MEMEX_DATABASE_UNAVAILABLE');
    expect(refused.stderr).not.toContain('secret-password');
  }, 60_000);
});
