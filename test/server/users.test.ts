import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { KeyStore } from '../../src/server/index.js';
import { tempDir } from '../helpers/tmp.js';
import { body, expectProblem, multipart, served, type Served } from './setup.js';

const BIN = fileURLToPath(new URL('../../bin/memex.js', import.meta.url));

/** A served app, and the headers of an admin key (user `root`). */
async function servedWithAdmin(): Promise<{ s: Served; admin: Record<string, string> }> {
  const s = await served();
  return { s, admin: { authorization: `Bearer ${(await s.keys.create('root', 'admin', { admin: true })).key}` } };
}

describe('deleting a user', () => {
  let s: Served;
  let admin: Record<string, string>;
  beforeAll(async () => ({ s, admin } = await servedWithAdmin()));
  afterAll(() => s.close());

  it("revokes the user's keys (they kept working and re-created the user) and cancels their ingest jobs", async () => {
    const carolKey = (await s.keys.create('carol')).key;
    const carol = { authorization: `Bearer ${carolKey}` };
    const session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: carol, payload: { title: 'Mine' } }), 201).id;
    // Two uploads: one runs, one waits; both are carol's and both must end when she goes.
    const jobs: string[] = [];
    for (const size of [600, 620]) {
      const png = await sharp({ create: { width: size, height: size, channels: 3, background: '#fff' } }).png().toBuffer();
      const upload = multipart({ name: `${size}.png`, bytes: png });
      jobs.push(body<{ job: { id: string } }>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session}/files`, headers: { ...carol, ...upload.headers }, payload: upload.payload }), 202).job.id);
    }

    expectProblem(await s.app.inject({ method: 'DELETE', url: '/v1/users/carol', headers: s.alice }), 403, 'MEMEX_FORBIDDEN');
    expect((await s.app.inject({ method: 'DELETE', url: '/v1/users/carol', headers: admin })).statusCode).toBe(204);

    expectProblem(await s.app.inject({ url: '/v1/me', headers: carol }), 401, 'MEMEX_UNAUTHORIZED');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: carol, payload: {} }), 401, 'MEMEX_UNAUTHORIZED');
    await expect(s.memex.users.get('carol')).rejects.toMatchObject({ code: 'MEMEX_USER_NOT_FOUND' });
    expect((await s.keys.list('carol')).every((key) => key.revokedAt !== null)).toBe(true);
    // Their jobs ended with them (cancelled, not left to run on into a deleted user), as the journal says.
    const journal = (await readFile(join(s.dataDir, 'ingest_jobs.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { id: string; state: string });
    for (const jobId of jobs) expect(journal.filter((job) => job.id === jobId).at(-1)?.state).toBe('cancelled');
    expect(body<{ users: { id: string }[] }>(await s.app.inject({ url: '/v1/users', headers: admin }), 200).users.map((u) => u.id)).not.toContain('carol');
    expectProblem(await s.app.inject({ method: 'DELETE', url: '/v1/users/carol', headers: admin }), 404, 'MEMEX_USER_NOT_FOUND');
  });

  it('through the library too: the key of a user deleted with memex.users.delete answers 401 and never re-creates the user', async () => {
    const { key } = await s.keys.create('dave');
    const dave = { authorization: `Bearer ${key}` };
    expect((await s.app.inject({ url: '/v1/me', headers: dave })).statusCode).toBe(200);
    await s.memex.users.delete('dave');
    expectProblem(await s.app.inject({ url: '/v1/me', headers: dave }), 401, 'MEMEX_UNAUTHORIZED');
    await expect(s.memex.users.get('dave')).rejects.toMatchObject({ code: 'MEMEX_USER_NOT_FOUND' });
  });
});

describe('admin user routes (the seed API)', () => {
  let s: Served;
  let admin: Record<string, string>;
  beforeAll(async () => ({ s, admin } = await servedWithAdmin()));
  afterAll(() => s.close());

  it('creates a user, gives them a key, and the user sees the same profile at /v1/me', async () => {
    const created = await s.app.inject({ method: 'POST', url: '/v1/users', headers: admin, payload: { id: 'erin', name: 'Erin', metadata: { plan: 'pro' } } });
    const erin = body<{ id: string; name: string; metadata: Record<string, unknown> }>(created, 201);
    expect(created.headers.location).toBe('/v1/users/erin');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/users', headers: admin, payload: { id: 'erin' } }), 409, 'MEMEX_USER_EXISTS');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/users', headers: s.alice, payload: { id: 'mallory' } }), 403, 'MEMEX_FORBIDDEN');
    expectProblem(await s.app.inject({ url: '/v1/users', headers: s.alice }), 403, 'MEMEX_FORBIDDEN');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/users', headers: admin, payload: { id: '../x' } }), 400, 'MEMEX_INVALID_ID');

    const made = body<{ key: string; admin: boolean }>(await s.app.inject({ method: 'POST', url: '/v1/users/erin/keys', headers: admin, payload: { name: 'app' } }), 201);
    expect(made.admin).toBe(false);
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/users/nobody/keys', headers: admin, payload: {} }), 404, 'MEMEX_USER_NOT_FOUND');
    const me = body(await s.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${made.key}` } }), 200);
    expect(me).toEqual(erin);
    // GET and PATCH /v1/me have one shape.
    const patched = body(await s.app.inject({ method: 'PATCH', url: '/v1/me', headers: { authorization: `Bearer ${made.key}` }, payload: { name: 'Erin E.' } }), 200);
    expect(Object.keys(patched).sort()).toEqual(Object.keys(me).sort());
    expect(body<{ id: string }>(await s.app.inject({ url: '/v1/users/erin', headers: admin }), 200).id).toBe('erin');

    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { users: { id: string }[]; total: number; nextCursor: string | null } = body(await s.app.inject({ url: `/v1/users?limit=1${cursor ? `&cursor=${cursor}` : ''}`, headers: admin }), 200);
      ids.push(...page.users.map((u) => u.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(ids).toEqual(['alice', 'erin', 'root']);
    expect(body<{ users: { id: string }[] }>(await s.app.inject({ url: '/v1/users?offset=1&limit=1', headers: admin }), 200).users.map((u) => u.id)).toEqual([ids[1]]);
  });
});

describe('memex keys create --admin', () => {
  it('makes a key that may manage users; keys without the flag may not', async () => {
    const dataDir = await tempDir();
    const run = async (...args: string[]): Promise<{ key: string; admin: boolean }> => {
      const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'keys', 'create', '--data-dir', dataDir, '--json', ...args], { env: { ...process.env, MEMEX_DATA_DIR: '', MEMEX_CONFIG: '' } });
      return JSON.parse(stdout) as { key: string; admin: boolean };
    };
    const admin = await run('--user', 'root', '--admin');
    const plain = await run('--user', 'alice');
    expect([admin.admin, plain.admin]).toEqual([true, false]);
    const keys = new KeyStore(dataDir);
    expect(await keys.verify(admin.key)).toMatchObject({ userId: 'root', admin: true });
    expect(await keys.verify(plain.key)).toMatchObject({ userId: 'alice', admin: false });
  });
});
