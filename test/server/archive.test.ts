import { afterEach, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { body, expectProblem, served, type Served } from './setup.js';

const running: Served[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(options: Parameters<typeof served>[0]): Promise<Served> {
  const s = await served(options);
  running.push(s);
  return s;
}

interface Session {
  id: string;
  archivedAt: string | null;
}

describe.each(BACKENDS)('archive and retention over HTTP on %s', (backend) => {
  it('archives and unarchives a session; while archived it is listed (filterable) and its messages answer 409 MEMEX_SESSION_ARCHIVED', async () => {
    const { app, alice, bob } = await start({ backend });
    const session = body<Session>(await app.inject({ method: 'POST', url: '/v1/sessions', headers: alice, payload: { title: 'Lisbon' } }), 201);
    body(await app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/messages`, headers: alice, payload: { role: 'user', content: 'Book Lisbon for May' } }), 201);

    const archived = body<{ session: Session; archivedNow: boolean }>(await app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/archive`, headers: alice }), 200);
    expect(archived.archivedNow).toBe(true);
    expect(archived.session.archivedAt).not.toBeNull();
    expectProblem(await app.inject({ method: 'GET', url: `/v1/sessions/${session.id}/messages`, headers: alice }), 409, 'MEMEX_SESSION_ARCHIVED');
    expectProblem(await app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/messages`, headers: alice, payload: { role: 'user', content: 'more' } }), 409, 'MEMEX_SESSION_ARCHIVED');
    expect(body<{ sessions: Session[] }>(await app.inject({ method: 'GET', url: '/v1/sessions', headers: alice }), 200).sessions.map((s) => s.archivedAt)).toEqual([archived.session.archivedAt]);
    expect(body<{ sessions: Session[] }>(await app.inject({ method: 'GET', url: '/v1/sessions?archived=exclude', headers: alice }), 200).sessions).toEqual([]);
    // Another user's session is as missing as one that never was.
    expectProblem(await app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/unarchive`, headers: bob }), 404, 'MEMEX_SESSION_NOT_FOUND');

    const back = body<{ session: Session }>(await app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/unarchive`, headers: alice }), 200);
    expect(back.session.archivedAt).toBeNull();
    expect(body<{ total: number }>(await app.inject({ method: 'GET', url: `/v1/sessions/${session.id}/messages`, headers: alice }), 200).total).toBe(1);
  });

  it("POST /v1/maintain applies the policies to the caller's own sessions only; dryRun changes nothing; another user is 403", async () => {
    const { app, memex, alice, bob } = await start({ backend, config: { retention: { maxAgeDays: { limit: 30, action: 'archive' }, intervalMs: 0 } } });
    await memex.users.ensure('alice');
    await memex.users.ensure('bob');
    const old = await memex.sessions.create('alice', { createdAt: '2020-01-01T00:00:00.000Z' });
    const bobs = await memex.sessions.create('bob', { createdAt: '2020-01-01T00:00:00.000Z' });
    const dry = body<{ dryRun: boolean; actions: { sessionId: string; status: string }[] }>(await app.inject({ method: 'POST', url: '/v1/maintain', headers: alice, payload: { dryRun: true } }), 200);
    expect(dry.actions.map((a) => [a.sessionId, a.status])).toEqual([[old.id, 'planned']]);
    expect((await memex.sessions.get('alice', old.id)).archivedAt).toBeNull();
    expectProblem(await app.inject({ method: 'POST', url: '/v1/maintain', headers: alice, payload: { userId: 'bob' } }), 403, 'MEMEX_FORBIDDEN');
    const done = body<{ actions: { sessionId: string; status: string }[] }>(await app.inject({ method: 'POST', url: '/v1/maintain', headers: alice }), 200);
    expect(done.actions.map((a) => [a.sessionId, a.status])).toEqual([[old.id, 'done']]);
    expect((await memex.sessions.get('alice', old.id)).archivedAt).not.toBeNull();
    expect((await memex.sessions.get('bob', bobs.id)).archivedAt).toBeNull();
    void bob;
  });

  it('the server applies the policies on its schedule (a short interval here), and stops doing so when closed', async () => {
    const s = await start({ backend, config: { retention: { maxAgeDays: { limit: 30, action: 'archive' }, intervalMs: 20 } } });
    await s.memex.users.ensure('alice');
    const old = await s.memex.sessions.create('alice', { createdAt: '2020-01-01T00:00:00.000Z' });
    const fresh = await s.memex.sessions.create('alice');
    // Polled (no timing asserted): the schedule gets to it within a few intervals.
    for (let i = 0; i < 500 && (await s.memex.sessions.get('alice', old.id)).archivedAt === null; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await s.memex.sessions.get('alice', old.id)).archivedAt).not.toBeNull();
    expect((await s.memex.sessions.get('alice', fresh.id)).archivedAt).toBeNull();
    await s.app.close();
    const later = await s.memex.sessions.create('alice', { createdAt: '2020-01-01T00:00:00.000Z' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await s.memex.sessions.get('alice', later.id)).archivedAt).toBeNull();
  });
});
