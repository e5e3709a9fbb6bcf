import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { body, expectProblem, served, type Served } from './setup.js';

interface Session {
  id: string;
  title: string | null;
  tags: string[];
  trashedAt: string | null;
  messageCount: number;
}
interface Message {
  id: string;
  content: string;
}

describe.each(BACKENDS)('tags, sorting, session search and the trash over HTTP on %s', (backend) => {
  let s: Served;
  beforeAll(async () => {
    s = await served({ backend });
  });
  afterAll(async () => {
    await s.close();
  });

  const create = async (title: string, tags: string[] = []): Promise<Session> =>
    body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: { title, tags } }), 201);
  const say = async (session: Session, content: string): Promise<Message> =>
    body<Message>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${session.id}/messages`, headers: s.alice, payload: { role: 'user', content } }), 201);
  const list = async (query: string): Promise<{ sessions: Session[]; total: number; nextCursor: string | null }> => body(await s.app.inject({ url: `/v1/sessions?${query}`, headers: s.alice }), 200);

  it('tags sessions, counts tags, and lists sorted and filtered with cursors', async () => {
    const zoo = await create('Zoo visit', ['family']);
    const bank = await create('Bank call');
    const art = await create('Art class', ['family', 'hobby']);
    expect(body<Session>(await s.app.inject({ method: 'PUT', url: `/v1/sessions/${bank.id}/tags/money`, headers: s.alice }), 200).tags).toEqual(['money']);
    expect(body<Session>(await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${art.id}/tags/hobby`, headers: s.alice }), 200).tags).toEqual(['family']);
    expect(body<{ tags: unknown[] }>(await s.app.inject({ url: '/v1/tags', headers: s.alice }), 200).tags).toEqual([
      { tag: 'family', sessions: 2 },
      { tag: 'money', sessions: 1 },
    ]);
    expect(body<{ tags: unknown[] }>(await s.app.inject({ url: '/v1/tags', headers: s.bob }), 200).tags).toEqual([]);
    expectProblem(await s.app.inject({ method: 'PUT', url: `/v1/sessions/${bank.id}/tags/a,b`, headers: s.alice }), 400, 'MEMEX_INVALID_INPUT');

    const first = await list('sort=title&order=asc&limit=2');
    expect(first.sessions.map((x) => x.title)).toEqual(['Art class', 'Bank call']);
    const second = await list(`sort=title&order=asc&limit=2&cursor=${first.nextCursor}`);
    expect(second.sessions.map((x) => x.title)).toEqual(['Zoo visit']);
    expect(second.nextCursor).toBeNull();
    expectProblem(await s.app.inject({ url: `/v1/sessions?sort=created&cursor=${first.nextCursor}`, headers: s.alice }), 400, 'MEMEX_INVALID_CURSOR');
    expect((await list('tag=family&sort=title')).sessions.map((x) => x.id)).toEqual([zoo.id, art.id]);
    expect((await list('tag=family,hobby')).sessions).toEqual([]);
    expect((await list(`after=${encodeURIComponent('2000-01-01T00:00:00Z')}&before=${encodeURIComponent('2000-01-02T00:00:00Z')}`)).total).toBe(0);
    expectProblem(await s.app.inject({ url: '/v1/sessions?sort=size', headers: s.alice }), 400, 'MEMEX_INVALID_INPUT');
  });

  it('finds sessions by content', async () => {
    const tram = await create('Trams');
    await say(tram, 'the yellow tram 28 climbs through Alfama');
    await say(tram, 'tram tickets are cheaper on the card');
    const cake = await create('Cake');
    await say(cake, 'carrot cake with walnuts');
    const found = body<{ sessions: { session: Session; hits: { sessionId: string }[] }[] }>(
      await s.app.inject({ method: 'POST', url: '/v1/sessions/search', headers: s.alice, payload: { query: 'tram tickets', limit: 1, hits: 2, mode: 'lexical' } }),
      200,
    );
    expect(found.sessions.map((m) => m.session.id)).toEqual([tram.id]);
    expect(found.sessions[0]?.hits.length).toBe(2);
    expect(body<{ sessions: unknown[] }>(await s.app.inject({ method: 'POST', url: '/v1/sessions/search', headers: s.bob, payload: { query: 'tram tickets' } }), 200).sessions).toEqual([]);
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/sessions/search', headers: s.alice, payload: { query: 'x', limit: 0 } }), 400, 'MEMEX_INVALID_INPUT');
  });

  it('moves sessions and messages to the trash, lists, restores and empties it; ?purge=true deletes at once', async () => {
    const trip = await create('Trip to trash');
    const [kept, dropped] = [await say(trip, 'keep this line'), await say(trip, 'drop this line')];
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${trip.id}/messages/${dropped.id}`, headers: s.alice })).statusCode).toBe(204);
    expect(body<{ messages: Message[] }>(await s.app.inject({ url: `/v1/sessions/${trip.id}/messages`, headers: s.alice }), 200).messages.map((m) => m.id)).toEqual([kept.id]);
    let trash = body<{ sessions: Session[]; messages: { sessionId: string; message: Message }[]; retentionDays: number }>(await s.app.inject({ url: '/v1/trash', headers: s.alice }), 200);
    expect(trash.messages.map((m) => m.message.id)).toEqual([dropped.id]);
    expect(trash.retentionDays).toBe(30);
    expect(body<Message>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${trip.id}/messages/${dropped.id}/restore`, headers: s.alice }), 200).id).toBe(dropped.id);
    expect(body<{ messages: Message[] }>(await s.app.inject({ url: `/v1/sessions/${trip.id}/messages`, headers: s.alice }), 200).messages.map((m) => m.id)).toEqual([kept.id, dropped.id]);

    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${trip.id}`, headers: s.alice })).statusCode).toBe(204);
    expect((await list('limit=100')).sessions.map((x) => x.id)).not.toContain(trip.id);
    expectProblem(await s.app.inject({ method: 'POST', url: `/v1/sessions/${trip.id}/messages`, headers: s.alice, payload: { role: 'user', content: 'more' } }), 409, 'MEMEX_SESSION_TRASHED');
    expectProblem(await s.app.inject({ method: 'POST', url: `/v1/sessions/${trip.id}/context`, headers: s.alice, payload: { budget: 2000 } }), 409, 'MEMEX_SESSION_TRASHED');
    // Another user cannot see or restore it.
    expectProblem(await s.app.inject({ method: 'POST', url: `/v1/sessions/${trip.id}/restore`, headers: s.bob }), 404, 'MEMEX_SESSION_NOT_FOUND');
    trash = body(await s.app.inject({ url: '/v1/trash', headers: s.alice }), 200);
    expect(trash.sessions.map((x) => x.id)).toEqual([trip.id]);
    const restored = body<Session>(await s.app.inject({ method: 'POST', url: `/v1/sessions/${trip.id}/restore`, headers: s.alice }), 200);
    expect(restored).toMatchObject({ id: trip.id, trashedAt: null, messageCount: 2 });
    expectProblem(await s.app.inject({ method: 'POST', url: `/v1/sessions/${trip.id}/restore`, headers: s.alice }), 404, 'MEMEX_NOT_IN_TRASH');

    const doomed = await create('Doomed');
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${doomed.id}?purge=true`, headers: s.alice })).statusCode).toBe(204);
    expectProblem(await s.app.inject({ url: `/v1/sessions/${doomed.id}`, headers: s.alice }), 404, 'MEMEX_SESSION_NOT_FOUND');
    expect((await s.app.inject({ method: 'DELETE', url: `/v1/sessions/${trip.id}`, headers: s.alice })).statusCode).toBe(204);
    expect(body(await s.app.inject({ method: 'DELETE', url: '/v1/trash', headers: s.alice }), 200)).toEqual({ sessions: [trip.id], messages: [] });
    expectProblem(await s.app.inject({ url: `/v1/sessions/${trip.id}`, headers: s.alice }), 404, 'MEMEX_SESSION_NOT_FOUND');
  });
});
