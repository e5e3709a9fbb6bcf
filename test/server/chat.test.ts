import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/index.js';
import { sseData } from '../../src/llm/index.js';
import { BACKENDS } from '../helpers/backends.js';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.js';
import { body, expectProblem, served, type Served } from './setup.js';

// POST /v1/chat against a FAKE OpenAI-compatible server (test/helpers/fake-llm.ts), on both backends.

interface Session {
  id: string;
  title: string | null;
  metadata: Record<string, unknown>;
}
interface Message {
  id: string;
  role: string;
  content: string;
  metadata: Record<string, unknown>;
}

/** The events of an SSE body, parsed. */
async function eventsOf(text: string): Promise<ChatEvent[]> {
  const events: ChatEvent[] = [];
  for await (const data of sseData((async function* () {
    yield new TextEncoder().encode(text);
  })())) events.push(JSON.parse(data) as ChatEvent);
  return events;
}

let fake: FakeLlm;
beforeAll(async () => {
  fake = await startFakeLlm();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => fake.reset());

describe.each(BACKENDS)('POST /v1/chat on %s', (backend) => {
  let s: Served;
  beforeAll(async () => {
    s = await served({ backend, config: { llm: { baseUrl: fake.baseUrl, model: 'fake-model', maxRetries: 0, timeoutMs: 500, idleTimeoutMs: 300 } } });
  });
  afterAll(async () => {
    await s.close();
  });

  it('streams session, context, deltas and done as server-sent events; the session route shows the usage totals', async () => {
    fake.script({ kind: 'text', text: 'Porto is two hours north.', usage: { prompt: 40, completion: 8 } }, { kind: 'text', text: 'Day trip to Porto' });
    const response = await s.app.inject({ method: 'POST', url: '/v1/chat', headers: s.alice, payload: { text: 'How far is Porto from Lisbon?' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(response.body).toMatch(/^event: session\n/);
    const events = await eventsOf(response.body);
    expect([...new Set(events.map((e) => e.type))]).toEqual(['session', 'context', 'delta', 'done']);
    const done = events.at(-1);
    if (done?.type !== 'done') throw new Error('no done event');
    expect(done.message.content).toBe('Porto is two hours north.');
    expect(done.message.metadata).toMatchObject({ model: 'fake-model', usage: { promptTokens: 40, completionTokens: 8 } });
    const session = body<Session>(await s.app.inject({ url: `/v1/sessions/${done.session.id}`, headers: s.alice }), 200);
    expect(session.title).toBe('Day trip to Porto');
    expect(session.metadata.usage).toEqual({ promptTokens: 40, completionTokens: 8, replies: 1 });

    // Continued, the whole turn at once.
    fake.script({ kind: 'text', text: 'By train, about 3 hours.', usage: { prompt: 60, completion: 7 } });
    const whole = body<{ created: boolean; session: Session; message: Message; usage: unknown; context: { memories: unknown[] } }>(
      await s.app.inject({ method: 'POST', url: '/v1/chat', headers: { ...s.alice, accept: 'application/json' }, payload: { text: 'And by train?', sessionId: session.id } }),
      200,
    );
    expect(whole.created).toBe(false);
    expect(whole.message.content).toBe('By train, about 3 hours.');
    expect(whole.session.metadata.usage).toEqual({ promptTokens: 100, completionTokens: 15, replies: 2 });
    const listed = body<{ sessions: Session[] }>(await s.app.inject({ url: '/v1/sessions', headers: s.alice }), 200);
    expect(listed.sessions.find((x) => x.id === session.id)?.metadata.usage).toEqual({ promptTokens: 100, completionTokens: 15, replies: 2 });
  });

  it('answers the coded error of an upstream failure, keeping the user turn (JSON and SSE)', async () => {
    fake.script({ kind: 'status', status: 429 });
    const json = await s.app.inject({ method: 'POST', url: '/v1/chat', headers: { ...s.alice, accept: 'application/json' }, payload: { text: 'Are you there?' } });
    expectProblem(json, 429, 'MEMEX_LLM_RATE_LIMITED');
    const { details } = json.json<{ details: { sessionId: string; userMessageId: string } }>();
    const kept = body<{ messages: Message[] }>(await s.app.inject({ url: `/v1/sessions/${details.sessionId}/messages`, headers: s.alice }), 200);
    expect(kept.messages.map((m) => [m.role, m.id])).toEqual([['user', details.userMessageId]]);

    fake.script({ kind: 'status', status: 500 });
    const sse = await s.app.inject({ method: 'POST', url: '/v1/chat', headers: s.alice, payload: { text: 'Still there?', sessionId: details.sessionId } });
    expect(sse.statusCode).toBe(200);
    const last = (await eventsOf(sse.body)).at(-1);
    expect(last?.type === 'error' && last.error.code).toBe('MEMEX_LLM_UNAVAILABLE');
  });

  it("bob cannot chat into alice's session (404), and bad bodies are MEMEX_INVALID_INPUT", async () => {
    const session = body<Session>(await s.app.inject({ method: 'POST', url: '/v1/sessions', headers: s.alice }), 201);
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat', headers: s.bob, payload: { text: 'Let me in', sessionId: session.id } }), 404, 'MEMEX_SESSION_NOT_FOUND');
    expect(body<{ total: number }>(await s.app.inject({ url: `/v1/sessions/${session.id}/messages`, headers: s.alice }), 200).total).toBe(0);
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat', headers: s.alice, payload: { text: '' } }), 400, 'MEMEX_INVALID_INPUT');
    expectProblem(await s.app.inject({ method: 'POST', url: '/v1/chat', headers: s.alice, payload: { text: 'hi', extra: 1 } }), 400, 'MEMEX_INVALID_INPUT');
    expect(fake.requests).toHaveLength(0);
  });

  it('a client that disconnects mid-stream aborts the upstream call; the partial reply is stored marked incomplete', async () => {
    await s.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = s.app.server.address() as AddressInfo;
    fake.script({ kind: 'stall', before: 2 });
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/v1/chat`, {
      method: 'POST',
      headers: { ...s.alice, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Tell me everything about Lisbon' }),
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    let sessionId = '';
    try {
      for await (const data of sseData(response.body as AsyncIterable<Uint8Array>)) {
        const event = JSON.parse(data) as ChatEvent;
        if (event.type === 'session') sessionId = event.session.id;
        if (event.type === 'delta') controller.abort();
      }
    } catch (cause) {
      expect((cause as Error).name).toBe('AbortError');
    }
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(true);
    let messages: Message[] = [];
    for (let tries = 0; tries < 100 && messages.length < 2; tries++) {
      messages = body<{ messages: Message[] }>(await s.app.inject({ url: `/v1/sessions/${sessionId}/messages`, headers: s.alice }), 200).messages;
      if (messages.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[1]?.content.length).toBeGreaterThan(0);
    expect(messages[1]?.metadata).toMatchObject({ incomplete: true, error: 'MEMEX_ABORTED' });
  });
});

// The refusal comes before the store is touched (the library's test runs it on both backends);
// one served data dir per backend and file, so this one is on flat files.
describe('POST /v1/chat without a model', () => {
  let bare: Served;
  beforeAll(async () => {
    bare = await served();
  });
  afterAll(async () => {
    await bare.close();
  });

  it('is MEMEX_LLM_NOT_CONFIGURED (503) without a model, with nothing written', async () => {
    const response = await bare.app.inject({ method: 'POST', url: '/v1/chat', headers: bare.alice, payload: { text: 'Hello' } });
    expectProblem(response, 503, 'MEMEX_LLM_NOT_CONFIGURED');
    expect(body<{ total: number }>(await bare.app.inject({ url: '/v1/sessions', headers: bare.alice }), 200).total).toBe(0);
  });

});
