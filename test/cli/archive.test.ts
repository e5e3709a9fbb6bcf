import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKENDS, type Backend } from '../helpers/backends.js';
import { json, memex, spawnMemex } from '../helpers/cli.js';
import { modelEnv } from '../helpers/model.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

let database: Promise<TestDatabase> | null = null;
afterAll(async () => {
  if (database) await (await database).stop();
});

/** The environment that runs the CLI on `backend`, with a config file of retention policies. */
async function setup(backend: Backend): Promise<NodeJS.ProcessEnv> {
  const dir = await tempDir();
  const config = join(dir, 'memex.config.json');
  await writeFile(config, JSON.stringify({ retention: { maxSessionsPerUser: { limit: 1, action: 'archive' } } }));
  const env: NodeJS.ProcessEnv = { ...modelEnv, MEMEX_DATA_DIR: join(dir, 'data'), MEMEX_CONFIG: config };
  if (backend === 'postgres') {
    database ??= startTestDatabase();
    const { url } = await database;
    await resetMemexSchema(url);
    env.MEMEX_DATABASE_URL = url;
  }
  return env;
}

describe.each(BACKENDS)('memex session archive|unarchive and memex maintain on %s', (backend) => {
  it('archives and unarchives by id, and maintain --dry-run prints what it would do without doing it', async () => {
    const env = await setup(backend);
    const first = await json<{ sessionId: string }>(['add', 'The boiler service is booked for March.'], { env });
    const second = await json<{ id: string }>(['session', 'new', '--title', 'later'], { env });
    await json(['add', '-s', second.id, 'A newer note about the garden.'], { env });

    const dry = await memex(['maintain', '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('Would do 1 actions');
    expect(dry.stdout).toContain(first.sessionId);
    const listed = await json<{ sessions: { id: string; archivedAt: string | null }[] }>(['session', 'list'], { env });
    expect(listed.sessions.every((s) => s.archivedAt === null)).toBe(true);

    const done = await json<{ dryRun: boolean; actions: { sessionId: string; action: string; status: string }[] }>(['maintain'], { env });
    expect(done.actions).toEqual([expect.objectContaining({ sessionId: first.sessionId, action: 'archive', status: 'done' })]);
    const archived = await memex(['messages', '-s', first.sessionId], { env });
    expect(archived.code).not.toBe(0);
    expect(archived.stderr).toContain('MEMEX_SESSION_ARCHIVED');

    const back = await json<{ archivedNow: boolean; session: { archivedAt: string | null } }>(['session', 'unarchive', first.sessionId], { env });
    expect(back).toMatchObject({ archivedNow: true, session: { archivedAt: null } });
    const again = await memex(['session', 'archive', second.id], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(`Archived session ${second.id}`);
    const only = await json<{ sessions: { id: string }[] }>(['session', 'list', '--archived', 'only'], { env });
    expect(only.sessions.map((s) => s.id)).toEqual([second.id]);
    // Regression: `add` without --session took the latest session even when it was archived, and failed.
    const added = await json<{ sessionId: string }>(['add', 'The boiler man comes at nine.'], { env });
    expect(added.sessionId).toBe(first.sessionId);
  });
});

describe('memex session archive and memex maintain beside a running memex serve (over HTTP)', () => {
  it('archive, maintain --dry-run and unarchive go through the server that owns the data dir', async () => {
    const env = await setup('flat');
    const first = await json<{ sessionId: string }>(['add', 'The boiler service is booked for March.'], { env });
    const second = await json<{ id: string }>(['session', 'new', '--title', 'later'], { env });
    const child = spawnMemex(['serve', '--port', '0', '--log-level', 'silent'], { env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    try {
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', () => {
          if (/listening on http/.test(stderr)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`memex serve exited with ${code}: ${stderr}`)));
      });
      const dry = await json<{ dryRun: boolean; actions: { sessionId: string; status: string }[] }>(['maintain', '--dry-run'], { env });
      expect(dry).toMatchObject({ dryRun: true, actions: [{ sessionId: first.sessionId, status: 'planned' }] });
      const archived = await json<{ archivedNow: boolean }>(['session', 'archive', second.id], { env });
      expect(archived.archivedNow).toBe(true);
      const listed = await json<{ sessions: { id: string }[] }>(['session', 'list', '--archived', 'only'], { env });
      expect(listed.sessions.map((s) => s.id)).toEqual([second.id]);
      expect((await json<{ archivedNow: boolean }>(['session', 'unarchive', second.id], { env })).archivedNow).toBe(true);
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
  });
});
