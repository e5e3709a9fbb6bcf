import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestTokens, tiktokenTokenizer, type ChatMessage } from '../../src/context/tokenizer.js';
import { BACKENDS } from '../helpers/backends.js';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.js';
import { body, expectProblem, served, type Served } from './setup.js';

let fake: FakeLlm;
beforeAll(async () => {
  fake = await startFakeLlm();
});
afterAll(async () => {
  await fake.close();
});

interface StoredMessage {
  id: string;
  role: string;
  content: unknown;
  toolCalls?: unknown[];
  metadata: Record<string, unknown>;
}

describe.each(BACKENDS)('the memory proxy (POST /v1/chat/completions) on %s', (backend) => {
  let s: Served;
  let url: string;
  const client = (headers: Record<string, string>, extra: Record<string, string> = {}): OpenAI =>
    new OpenAI({ baseURL: `${url}/v1`, apiKey: headers.authorization?.slice('Bearer '.length) ?? '', maxRetries: 0, defaultHeaders: extra });
  const messagesOf = async (sessionId: string): Promise<StoredMessage[]> =>
    body<{ messages: StoredMessage[] }>(await s.app.inject({ url: `/v1/sessions/${sessionId}/messages?limit=100`, headers: s.alice }), 200).messages;

  beforeAll(async () => {
    s = await served({ backend, config: { llm: { baseUrl: fake.baseUrl, model: 'upstream-model', maxRetries: 0 } } });
    url = await s.app.listen({ port: 0, host: '127.0.0.1' });
    // Users are made on their key's first use; an older session holds a fact the proxy's window must recall.
    await s.app.inject({ url: '/v1/me', headers: s.alice });
    await s.app.inject({ url: '/v1/me', headers: s.bob });
    const older = await s.memex.sessions.create('alice', { title: 'Moving' });
    await s.memex.messages.append('alice', older.id, { role: 'user', content: 'I moved to Lisbon in March 2023 and I adopted a grey cat called Pixel.' });
    await s.memex.flush();
  });
  afterAll(async () => {
    await s.close();
  });

  it('answers an OpenAI client, creating the session, with a window that recalls an older session within the budget; both turns are stored', async () => {
    fake.reset();
    fake.script({ kind: 'text', text: 'Your cat is called Pixel.', usage: { prompt: 120, completion: 6 } });
    const { data, response } = await client(s.alice, { 'x-memex-budget': '1500' })
      .chat.completions.create({ model: 'upstream-model', messages: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: "What is my cat's name?" }] })
      .withResponse();
    expect(data.choices[0]?.message.content).toBe('Your cat is called Pixel.');
    const sessionId = response.headers.get('x-memex-session') as string;
    expect(sessionId).toBeTruthy();

    const sent = fake.requests[0]?.body as { model: string; messages: ChatMessage[] };
    expect(sent.model).toBe('upstream-model');
    expect(sent.messages[0]).toMatchObject({ role: 'system' });
    expect(JSON.stringify(sent.messages[0]?.content)).toContain('Answer briefly.');
    expect(JSON.stringify(sent.messages)).toContain('Pixel');
    expect(sent.messages.at(-1)).toMatchObject({ role: 'user', content: "What is my cat's name?" });
    expect(requestTokens(tiktokenTokenizer('cl100k_base'), sent.messages)).toBeLessThanOrEqual(1500);

    const stored = await messagesOf(sessionId);
    expect(stored.map((m) => [m.role, m.content])).toEqual([
      ['user', "What is my cat's name?"],
      ['assistant', 'Your cat is called Pixel.'],
    ]);
    expect(stored[1]?.metadata).toMatchObject({ via: 'proxy', model: 'upstream-model', usage: { promptTokens: 120, completionTokens: 6, totalTokens: 126 } });
    // The session's running totals count proxied replies as they count chat turns.
    expect(body<{ metadata: { usage: unknown } }>(await s.app.inject({ url: `/v1/sessions/${sessionId}`, headers: s.alice }), 200).metadata.usage).toMatchObject({ promptTokens: 120, completionTokens: 6, replies: 1 });
  });

  it('streams the upstream chunks back, continues the session from the header, and passes tool calls and multi-part content through', async () => {
    fake.reset();
    const session = (await s.memex.sessions.create('alice')).id;
    const headers = { 'x-memex-session': session };
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'weather', arguments: '{"city":"Lisbon"}' }] }, { kind: 'text', text: 'It is sunny in Lisbon today.', chunks: 4 });
    const tools = [{ type: 'function' as const, function: { name: 'weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
    const question = [
      { type: 'text' as const, text: 'What is the weather where I live? Here is my street:' },
      { type: 'image_url' as const, image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' as const } },
    ];

    const first = await client(s.alice, headers).chat.completions.create({ model: 'upstream-model', stream: true, tools, messages: [{ role: 'user', content: question }] });
    const calls: unknown[] = [];
    let usageChunks = 0;
    for await (const chunk of first) {
      if (chunk.choices.length === 0) usageChunks++;
      for (const call of chunk.choices[0]?.delta.tool_calls ?? []) calls.push(call);
    }
    expect(calls.length).toBeGreaterThan(0);
    // The client did not ask for usage: the chunk Memex asked for (to store it) is not passed on.
    expect(usageChunks).toBe(0);
    expect(fake.requests[0]?.body.tools).toEqual(tools);
    expect((fake.requests[0]?.body.messages as ChatMessage[]).at(-1)).toEqual({ role: 'user', content: question });

    const [, called] = await messagesOf(session);
    expect(called).toMatchObject({ role: 'assistant', toolCalls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Lisbon"}' } }] });
    expect(called?.metadata.usage).toBeTruthy();

    // The app runs the tool and sends its result: only that is new.
    const second = await client(s.alice, headers).chat.completions.create({
      model: 'upstream-model',
      stream: true,
      stream_options: { include_usage: true },
      tools,
      messages: [
        { role: 'user', content: question },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Lisbon"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 24°C' },
      ],
    });
    let text = '';
    let usage: unknown = null;
    for await (const chunk of second) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe('It is sunny in Lisbon today.');
    expect(usage).toMatchObject({ prompt_tokens: expect.any(Number) });
    const upstream = fake.requests[1]?.body.messages as ChatMessage[];
    expect(upstream.slice(-3).map((m) => m.role)).toEqual(['user', 'assistant', 'tool']);
    expect(upstream.at(-1)).toMatchObject({ role: 'tool', tool_call_id: 'call_1', content: 'sunny, 24°C' });
    const stored = await messagesOf(session);
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(stored[3]).toMatchObject({ content: 'It is sunny in Lisbon today.', metadata: { via: 'proxy' } });
  });

  it('a client that goes away mid-stream aborts the upstream request; the partial reply is stored marked incomplete', async () => {
    fake.reset();
    const session = (await s.memex.sessions.create('alice')).id;
    fake.script({ kind: 'stall', before: 2 });
    const controller = new AbortController();
    const stream = await client(s.alice, { 'x-memex-session': session }).chat.completions.create({ model: 'upstream-model', stream: true, messages: [{ role: 'user', content: 'Tell me a long story.' }] }, { signal: controller.signal });
    let received = 0;
    // The SDK ends the iteration (or throws) on abort; either way the client has gone.
    await (async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) received++;
        if (received === 2) controller.abort();
      }
    })().catch(() => undefined);
    expect(received).toBe(2);
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(true);
    for (const deadline = Date.now() + 10_000; (await messagesOf(session)).length < 2 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
    const stored = await messagesOf(session);
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(stored[1]?.metadata).toMatchObject({ incomplete: true });
    expect(String(stored[1]?.content).length).toBeGreaterThan(0);
  });

  it('an upstream failure is a coded error with the user turn kept; another user’s session is not found; bad requests are refused before anything is written', async () => {
    fake.reset();
    const session = (await s.memex.sessions.create('alice')).id;
    fake.script({ kind: 'status', status: 500, message: 'upstream exploded' });
    const failed = await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { ...s.alice, 'x-memex-session': session }, payload: { messages: [{ role: 'user', content: 'Hello?' }] } });
    expectProblem(failed, 502, 'MEMEX_LLM_UNAVAILABLE');
    expect(failed.json<{ error: { code: string; message: string } }>().error).toMatchObject({ code: 'MEMEX_LLM_UNAVAILABLE', message: expect.any(String) });
    expect((await messagesOf(session)).map((m) => [m.role, m.content])).toEqual([['user', 'Hello?']]);

    // Through the OpenAI SDK, the same error is an APIError with its status and message.
    fake.script({ kind: 'status', status: 500 });
    await expect(client(s.alice, { 'x-memex-session': session }).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Again?' }] })).rejects.toMatchObject({ status: 502, code: 'MEMEX_LLM_UNAVAILABLE' });

    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { ...s.bob, 'x-memex-session': session }, payload: { messages: [{ role: 'user', content: 'Mine now' }] } }), 404, 'MEMEX_SESSION_NOT_FOUND');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: s.alice, payload: { messages: [] } }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { ...s.alice, 'x-memex-session': '../etc' }, payload: { messages: [{ role: 'user', content: 'x' }] } }), 400, 'MEMEX_INVALID_ID');
    const before = body<{ sessions: unknown[] }>(await s.app.inject({ url: '/v1/sessions?limit=1000', headers: s.bob }), 200).sessions.length;
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: s.bob, payload: { messages: [{ role: 'assistant', content: 'only me' }] } }), 400, 'MEMEX_INVALID_INPUT');
    expect(body<{ sessions: unknown[] }>(await s.app.inject({ url: '/v1/sessions?limit=1000', headers: s.bob }), 200).sessions.length).toBe(before);
    expect(fake.requests.filter((r) => JSON.stringify(r.body).includes('Mine now'))).toEqual([]);
  });
});

describe('the memory proxy without a model', () => {
  it('answers MEMEX_LLM_NOT_CONFIGURED and writes nothing', async () => {
    const s = await served();
    try {
      const response = await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: s.alice, payload: { model: 'x', messages: [{ role: 'user', content: 'Hi' }] } });
      expectProblem(response, 503, 'MEMEX_LLM_NOT_CONFIGURED');
      expect(body<{ sessions: unknown[] }>(await s.app.inject({ url: '/v1/sessions', headers: s.alice }), 200).sessions).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

describe('the memory proxy with memory.extract', () => {
  it('after the exchange, the model proposes what to remember and it becomes a note, without holding up the reply', async () => {
    fake.reset();
    const s = await served({ config: { llm: { baseUrl: fake.baseUrl, model: 'upstream-model', maxRetries: 0 }, memory: { extract: true } } });
    try {
      await s.app.inject({ url: '/v1/me', headers: s.alice });
      fake.script({ kind: 'text', text: 'Noted, you prefer aisle seats.' }, { kind: 'text', text: JSON.stringify({ operations: [{ op: 'add', kind: 'preference', text: 'Alice prefers aisle seats.' }] }) });
      const answered = await s.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: s.alice, payload: { messages: [{ role: 'user', content: 'Remember that I always want an aisle seat.' }] } });
      expect(answered.json<{ choices: { message: { content: string } }[] }>().choices[0]?.message.content).toBe('Noted, you prefer aisle seats.');
      for (const deadline = Date.now() + 10_000; (await s.memex.notes.list('alice')).length === 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await s.memex.notes.list('alice')).toMatchObject([{ text: 'Alice prefers aisle seats.', kind: 'preference', metadata: { memory: { source: 'extraction' } } }]);
      expect(JSON.stringify(fake.requests[1]?.body.messages)).toContain('aisle seat');
    } finally {
      await s.close();
    }
  });
});
