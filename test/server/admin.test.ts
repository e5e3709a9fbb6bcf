import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newLocalSecret } from '../../src/server/announce.js';
import { body, expectProblem, served, type Served } from './setup.js';

/** The local-admin secret (server.json) and the routes only it may use: the CLI beside a server. */
describe('local admin', () => {
  const secret = newLocalSecret();
  const local = (user: string): Record<string, string> => ({ authorization: `Bearer ${secret}`, 'x-memex-user': user });
  let s: Served;
  beforeAll(async () => {
    s = await served({ localSecret: secret });
  });
  afterAll(() => s.close());

  it('acts as the named user, and does not create a user by naming it', async () => {
    body(await s.app.inject({ url: '/v1/me', headers: s.alice }), 200); // alice's key makes her
    const created = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: local('alice'), payload: {} }), 201);
    const listed = body<{ sessions: { id: string }[] }>(await s.app.inject({ url: '/v1/sessions', headers: s.alice }), 200);
    expect(listed.sessions.map((x) => x.id)).toContain(created.id);
    expectProblem(await s.app.inject({ url: '/v1/me', headers: local('ghost') }), 404, 'MEMEX_USER_NOT_FOUND');
    expectProblem(await s.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${secret}` } }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await s.app.inject({ url: '/v1/me', headers: local('../x') }), 400, 'MEMEX_INVALID_ID');
  });

  it('alone may use the admin routes: an API key gets 403', async () => {
    expectProblem(await s.app.inject({ method: 'PUT', url: '/v1/admin/users/carol', headers: s.alice }), 403, 'MEMEX_FORBIDDEN');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/admin/doctor', headers: s.alice, payload: {} }), 403, 'MEMEX_FORBIDDEN');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: s.alice, payload: {} }), 403, 'MEMEX_FORBIDDEN');
    expect(body<{ id: string }>(await s.app.inject({ method: 'PUT', url: '/v1/admin/users/carol', headers: local('carol') }), 200).id).toBe('carol');
    expect(body<{ ok: boolean }>(await s.app.inject({ method: 'POST', url: '/v1/admin/doctor', headers: local('carol'), payload: { userId: 'carol' } }), 200).ok).toBe(true);
    expect(body<{ sessionsTotal: number }>(await s.app.inject({ method: 'POST', url: '/v1/admin/reindex', headers: local('carol'), payload: { userId: 'alice' } }), 200).sessionsTotal).toBe(1);
  });

  it('is not a secret a wrong token of the same shape matches', async () => {
    const wrong = `${secret.slice(0, -4)}AAAA`;
    expectProblem(await s.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${wrong}`, 'x-memex-user': 'alice' } }), 401, 'MEMEX_UNAUTHORIZED');
  });
});
