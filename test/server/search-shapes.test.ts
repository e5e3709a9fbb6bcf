import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { body, expectProblem, served, type Served } from './setup.js';

/** The search options and message shapes of issue 15 reach HTTP through the shared schemas. */
describe('HTTP: where filters, minScore and OpenAI messages (inject)', () => {
  let s: Served;
  beforeAll(async () => {
    s = await served();
  });
  afterAll(async () => {
    await s.close();
  });

  it('takes OpenAI-shaped messages and answers them as stored; searches with where and minScore; refuses a bad filter with a code', async () => {
    const session = body<{ id: string }>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice, payload: {} }), 201);
    const call = { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } };
    const parts = [{ type: 'text', text: 'the sourdough starter needs feeding' }, { type: 'image_url', image_url: { url: 'https://example.com/jar.jpg' } }];
    const url = `/v1/sessions/${session.id}/messages`;
    const user = body<Record<string, unknown>>(await s.app.inject({ method: 'POST', url, headers: s.alice, payload: { role: 'user', name: 'ana', content: parts, metadata: { project: 'bread' } } }), 201);
    expect(user).toMatchObject({ v: 2, name: 'ana', content: 'the sourdough starter needs feeding', parts });
    const assistant = body<Record<string, unknown>>(await s.app.inject({ method: 'POST', url, headers: s.alice, payload: { role: 'assistant', content: null, tool_calls: [call] } }), 201);
    expect(assistant).toMatchObject({ toolCalls: [call], content: '' });
    body(await s.app.inject({ method: 'POST', url, headers: s.alice, payload: { role: 'user', content: 'sourdough bread recipe', metadata: { project: 'cake' } } }), 201);
    await s.memex.flush();
    const search = body<{ hits: { source: { messageId?: string } }[] }>(
      await s.app.inject({ method: 'POST', url: '/v1/search', headers: s.alice, payload: { query: 'sourdough', k: 5, where: { project: { $in: ['bread'] } }, minScore: 0.2 } }),
      200,
    );
    expect(search.hits.map((hit) => hit.source.messageId)).toEqual([user.id]);
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/search', headers: s.alice, payload: { query: 'sourdough', where: { project: { $regex: 'b' } } } }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await s.app.inject({ method: 'POST', url, headers: s.alice, payload: { role: 'user', content: 'x', tool_calls: [call] } }), 400, 'MEMEX_INVALID_INPUT');
  });
});
