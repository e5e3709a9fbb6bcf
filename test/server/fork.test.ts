import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS } from '../helpers/backends.js';
import { body, expectProblem, served, type Served } from './setup.js';

interface Session {
  id: string;
  participants: string[];
  forkedFrom: { sessionId: string; messageId: string } | null;
  forks: string[];
  mergedFrom: string[];
}
interface Message {
  id: string;
  role: string;
  content: string;
  personaId?: string;
  metadata: Record<string, unknown>;
}

describe.each(BACKENDS)('fork, merge and panels over HTTP on %s', (backend) => {
  let s: Served;
  beforeAll(async () => {
    s = await served({ backend });
  }, 120_000);
  afterAll(async () => {
    await s?.close();
  });

  const post = async (url: string, payload: unknown, headers = s.alice) => s.app.inject({ method: 'POST', url, headers, payload: payload as Record<string, unknown> });

  it('starts a panel, takes participants\' turns and builds one participant\'s window', async () => {
    const critic = body<{ id: string }>(await post('/v1/personas', { name: 'Critic', instructions: 'Find the weak points.' }), 201);
    const optimist = body<{ id: string }>(await post('/v1/personas', { name: 'Optimist', instructions: 'Find the upside.' }), 201);
    const panel = body<Session>(await post('/v1/panels', { personas: ['Critic', optimist.id], title: 'Lisbon?' }), 201);
    expect(panel.participants).toEqual([critic.id, optimist.id]);
    body(await post(`/v1/sessions/${panel.id}/messages`, { role: 'user', content: 'Should we move to Lisbon?' }), 201);
    const turn = body<Message>(await post(`/v1/panels/${panel.id}/turns`, { persona: 'optimist', content: 'The food is wonderful.' }), 201);
    expect(turn).toMatchObject({ role: 'assistant', personaId: optimist.id });
    // A turn can also be appended as a plain message naming its persona.
    body(await post(`/v1/sessions/${panel.id}/messages`, { role: 'assistant', content: 'Rents doubled.', personaId: critic.id }), 201);

    const window = body<{ messages: { role: string; content: string }[] }>(await post(`/v1/sessions/${panel.id}/context`, { budget: 4000, memories: 0, participant: critic.id }), 200);
    expect(window.messages[0]?.content).toContain('Find the weak points.');
    expect(window.messages.slice(-2)).toEqual([
      { role: 'user', content: '[Optimist] The food is wonderful.' },
      { role: 'assistant', content: 'Rents doubled.' },
    ]);

    const other = body<{ id: string }>(await post('/v1/personas', { name: 'Bystander', instructions: '.' }), 201);
    expectProblem(await post(`/v1/panels/${panel.id}/turns`, { persona: other.id, content: 'hi' }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await post(`/v1/sessions/${panel.id}/context`, { budget: 4000, participant: other.id }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await post('/v1/panels', { personas: [] }), 400, 'MEMEX_INVALID_INPUT');
    const joined = body<Session>(await post(`/v1/panels/${panel.id}/participants`, { persona: 'Bystander' }), 200);
    expect(joined.participants).toEqual([critic.id, optimist.id, other.id]);
    const patched = body<Session>(await s.app.inject({ method: 'PATCH', url: `/v1/sessions/${panel.id}`, headers: s.alice, payload: { participants: [critic.id] } }), 200);
    expect(patched.participants).toEqual([critic.id]);
    expectProblem(await post(`/v1/sessions/${panel.id}/messages`, { role: 'user', content: 'x', personaId: critic.id }), 400, 'MEMEX_INVALID_INPUT');
    // Another user's panel is as missing as one that never was.
    expectProblem(await post(`/v1/panels/${panel.id}/turns`, { persona: 'x', content: 'hi' }, s.bob), 404, 'MEMEX_SESSION_NOT_FOUND');
  });

  it('forks at a message and merges, linked both ways, with coded refusals', async () => {
    const source = body<Session>(await post('/v1/sessions', { title: 'Trip' }), 201);
    const first = body<Message>(await post(`/v1/sessions/${source.id}/messages`, { role: 'user', content: 'Porto or Lisbon?' }), 201);
    body(await post(`/v1/sessions/${source.id}/messages`, { role: 'assistant', content: 'Lisbon for the light.' }), 201);
    const forked = await post(`/v1/sessions/${source.id}/fork`, { messageId: first.id, title: 'Porto instead' });
    const fork = body<{ session: Session & { title: string }; messages: number }>(forked, 201);
    expect(forked.headers.location).toBe(`/v1/sessions/${fork.session.id}`);
    expect(fork).toMatchObject({ messages: 1, session: { title: 'Porto instead', forkedFrom: { sessionId: source.id, messageId: first.id } } });
    expect(body<Session>(await s.app.inject({ url: `/v1/sessions/${source.id}`, headers: s.alice }), 200).forks).toEqual([fork.session.id]);

    const merged = body<{ session: Session; messages: number; shared: number }>(await post('/v1/sessions/merge', { sessionIds: [source.id, fork.session.id], mode: 'concat' }), 201);
    expect(merged).toMatchObject({ messages: 2, shared: 1, session: { mergedFrom: [source.id, fork.session.id] } });
    const page = body<{ messages: Message[] }>(await s.app.inject({ url: `/v1/sessions/${merged.session.id}/messages`, headers: s.alice }), 200);
    expect(page.messages.map((m) => m.metadata.mergedFrom)).toEqual([[source.id, fork.session.id], [source.id]]);

    expectProblem(await post(`/v1/sessions/${source.id}/fork`, { messageId: 'msg_nope' }), 404, 'MEMEX_MESSAGE_NOT_FOUND');
    expectProblem(await post(`/v1/sessions/${source.id}/fork`, {}), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await post('/v1/sessions/merge', { sessionIds: [source.id] }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await post('/v1/sessions/merge', { sessionIds: [source.id, fork.session.id], mode: 'sideways' }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await post(`/v1/sessions/${source.id}/fork`, { messageId: first.id }, s.bob), 404, 'MEMEX_SESSION_NOT_FOUND');
    const a = body<Session>(await post('/v1/sessions', {}), 201);
    const b = body<Session>(await post('/v1/sessions', {}), 201);
    body(await post(`/v1/sessions/${a.id}/messages`, { id: 'msg_twin', role: 'user', content: 'one' }), 201);
    body(await post(`/v1/sessions/${b.id}/messages`, { id: 'msg_twin', role: 'user', content: 'two' }), 201);
    expectProblem(await post('/v1/sessions/merge', { sessionIds: [a.id, b.id] }), 409, 'MEMEX_MERGE_CONFLICT');

    const removed = body<{ session: Session }>(await post('/v1/sessions/merge', { sessionIds: [source.id, fork.session.id], deleteSources: true }), 201);
    expect(removed.session.mergedFrom).toEqual([source.id, fork.session.id]);
    // Deleted as any session is: to the trash.
    expect(body<Session & { trashedAt: string | null }>(await s.app.inject({ url: `/v1/sessions/${source.id}`, headers: s.alice }), 200).trashedAt).not.toBeNull();
  });
});
