import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChatModel, HashedEmbedder, Memex, type ChatEvent, type Embedder, type EmbedOptions, type MemexOptions } from '../../src/index.js';
import { requestTokens, tiktokenTokenizer, type ChatMessage } from '../../src/context/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { useFakeLlm } from '../helpers/fake-llm.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

// memex.chat against a FAKE OpenAI-compatible server (test/helpers/fake-llm.ts), on both backends.

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});
const fakeLlm = useFakeLlm();

export async function collect(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const all: ChatEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

function ofType<T extends ChatEvent['type']>(events: ChatEvent[], type: T): Extract<ChatEvent, { type: T }> {
  const found = events.find((e) => e.type === type);
  expect(found, `a ${type} event in ${events.map((e) => e.type).join(',')}`).toBeDefined();
  return found as Extract<ChatEvent, { type: T }>;
}

/** A FAKE embedder for one test: the hashed one, holding back texts `held` picks until `release()`. */
class HeldEmbedder implements Embedder {
  private readonly inner = new HashedEmbedder();
  readonly modelId = this.inner.modelId;
  readonly dimension = this.inner.dimension;
  readonly maxTokens = this.inner.maxTokens;
  private opened: () => void = () => undefined;
  private readonly gate = new Promise<void>((resolve) => (this.opened = resolve));
  constructor(private readonly held: (text: string) => boolean) {}
  countTokens(text: string): number {
    return this.inner.countTokens(text);
  }
  async embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]> {
    if (texts.some(this.held)) await this.gate;
    return this.inner.embed(texts, options);
  }
  release(): void {
    this.opened();
  }
}

describe.each(BACKENDS)('memex.chat on %s', (backend: Backend) => {
  async function open(options: Partial<MemexOptions> = {}, model = true): Promise<Memex> {
    const dir = await tempDir();
    const memex = await Memex.open({
      dataDir: dir,
      env: modelEnv,
      onWarning: () => undefined,
      config: await backendConfig(backend, dir),
      ...(model ? { chatModel: new ChatModel({ baseUrl: fakeLlm().baseUrl, model: 'fake-model', maxRetries: 0, timeoutMs: 400, idleTimeoutMs: 300 }) } : {}),
      ...options,
    });
    opened.push(memex);
    await memex.users.create({ id: 'alice' });
    return memex;
  }

  it('creates a session, titles it by the model, then continues it; both turns stored with model, usage and timings', async () => {
    const memex = await open();
    fakeLlm().script({ kind: 'text', text: 'Lisbon in May is lovely.', usage: { prompt: 30, completion: 6 } }, { kind: 'text', text: '"Planning a Lisbon trip."' });
    const first = await collect(memex.chat('alice', { text: 'I want to plan a trip to Lisbon in May.' }));
    expect(first.map((e) => e.type).filter((t, i, all) => t !== all[i - 1])).toEqual(['session', 'context', 'delta', 'done']);
    const start = ofType(first, 'session');
    expect(start.created).toBe(true);
    expect(start.userMessage.content).toBe('I want to plan a trip to Lisbon in May.');
    const done = ofType(first, 'done');
    expect(first.filter((e) => e.type === 'delta').map((e) => (e.type === 'delta' ? e.text : '')).join('')).toBe('Lisbon in May is lovely.');
    expect(done.message.content).toBe('Lisbon in May is lovely.');
    expect(done.message.metadata).toMatchObject({ model: 'fake-model', usage: { promptTokens: 30, completionTokens: 6 }, finishReason: 'stop' });
    expect(typeof done.message.metadata.latencyMs).toBe('number');
    expect(done.session.title).toBe('Planning a Lisbon trip');
    expect(done.session.titleSource).toBe('auto');
    expect(done.session.metadata.usage).toEqual({ promptTokens: 30, completionTokens: 6, replies: 1 });
    const sessionId = done.session.id;

    fakeLlm().script({ kind: 'text', text: 'Try Alfama.', usage: { prompt: 50, completion: 3 } });
    const second = await collect(memex.chat('alice', { text: 'Which district should we stay in?', sessionId }));
    expect(ofType(second, 'session').created).toBe(false);
    const again = ofType(second, 'done');
    expect(again.session.id).toBe(sessionId);
    expect(again.session.title).toBe('Planning a Lisbon trip');
    expect(again.session.metadata.usage).toEqual({ promptTokens: 80, completionTokens: 9, replies: 2 });
    // Chat, title, chat: no title call for a continued session.
    expect(fakeLlm().requests).toHaveLength(3);
    const sent = fakeLlm().requests[2]?.body.messages as ChatMessage[];
    expect(sent.map((m) => m.content)).toContain('Lisbon in May is lovely.');

    const stored = (await memex.messages.list('alice', sessionId)).messages;
    expect(stored.map((m) => [m.role, m.content])).toEqual([
      ['user', 'I want to plan a trip to Lisbon in May.'],
      ['assistant', 'Lisbon in May is lovely.'],
      ['user', 'Which district should we stay in?'],
      ['assistant', 'Try Alfama.'],
    ]);
    expect((await memex.sessions.get('alice', sessionId)).metadata.usage).toEqual({ promptTokens: 80, completionTokens: 9, replies: 2 });
  });

  it('sends upstream a window that holds a fact recalled from an older session and fits the budget by tiktoken', async () => {
    const memex = await open();
    const older = await memex.sessions.create('alice', { title: 'Family' });
    await memex.messages.append('alice', older.id, { role: 'user', content: 'My sister Ottilie moved to Reykjavik last spring and keeps bees there.' });
    await memex.messages.append('alice', older.id, { role: 'assistant', content: 'Noted: Ottilie lives in Reykjavik with her bees.' });
    const budget = 1024;
    const events = await collect(memex.chat('alice', { text: 'Where does my sister Ottilie live now?', budget }));
    const report = ofType(events, 'context').report;
    expect(report.memories.some((m) => m.sessionId === older.id)).toBe(true);
    ofType(events, 'done');
    const request = fakeLlm().requests[0]?.body as { messages: ChatMessage[] };
    expect(JSON.stringify(request.messages)).toContain('Reykjavik');
    expect(request.messages.at(-1)).toMatchObject({ role: 'user', content: 'Where does my sister Ottilie live now?' });
    const tokens = requestTokens(tiktokenTokenizer(memex.config.context.encoding), request.messages);
    expect(tokens).toBeLessThanOrEqual(budget - memex.config.context.replyTokens);
    expect(tokens).toBe(report.tokens);
  });

  it('keeps the offline title when the model cannot title the session', async () => {
    const memex = await open();
    fakeLlm().script({ kind: 'text', text: 'Sure.' }, { kind: 'status', status: 500 });
    const done = ofType(await collect(memex.chat('alice', { text: 'Remind me to water the ferns on Sunday' })), 'done');
    expect(done.session.title).toBe('Remind me to water the ferns on Sunday');
    expect(done.session.titleSource).toBe('auto');
  });

  it.each([
    ['a 500', { kind: 'status', status: 500 } as const, 'MEMEX_LLM_UNAVAILABLE'],
    ['a 429', { kind: 'status', status: 429 } as const, 'MEMEX_LLM_RATE_LIMITED'],
    ['no answer', { kind: 'hang' } as const, 'MEMEX_LLM_TIMEOUT'],
    ['a stream that is not JSON', { kind: 'malformed', before: 0 } as const, 'MEMEX_LLM_BAD_RESPONSE'],
    ['garbage instead of events', { kind: 'garbage', body: '<html>upstream proxy error</html>' } as const, 'MEMEX_LLM_UNAVAILABLE'],
  ])('ends with a coded error event on %s, keeping the user turn', async (_name, reply, code) => {
    const memex = await open();
    fakeLlm().script(reply);
    const events = await collect(memex.chat('alice', { text: 'Hello?' }));
    const last = events.at(-1);
    expect(last?.type).toBe('error');
    if (last?.type !== 'error') return;
    expect(last.error.code).toBe(code);
    expect(last.partial).toBeNull();
    const sessionId = ofType(events, 'session').session.id;
    const stored = (await memex.messages.list('alice', sessionId)).messages;
    expect(stored.map((m) => m.role)).toEqual(['user']);
    expect(last.error.details.userMessageId).toBe(stored[0]?.id);
  });

  it('stores the partial reply marked incomplete when the model fails mid-reply', async () => {
    const memex = await open();
    fakeLlm().script({ kind: 'malformed', before: 2 });
    const events = await collect(memex.chat('alice', { text: 'Tell me a story' }));
    const last = events.at(-1);
    expect(last?.type === 'error' && last.error.code).toBe('MEMEX_LLM_BAD_RESPONSE');
    const stored = (await memex.messages.list('alice', ofType(events, 'session').session.id)).messages;
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(stored[1]?.metadata).toMatchObject({ incomplete: true, error: 'MEMEX_LLM_BAD_RESPONSE' });
    expect(last?.type === 'error' && last.partial?.id).toBe(stored[1]?.id);
  });

  it('an abort mid-stream cancels the upstream call and stores the partial reply marked incomplete', async () => {
    const memex = await open();
    fakeLlm().script({ kind: 'stall', before: 2 });
    const controller = new AbortController();
    const events: ChatEvent[] = [];
    for await (const event of memex.chat('alice', { text: 'Tell me a long story', signal: controller.signal })) {
      events.push(event);
      if (event.type === 'delta') controller.abort();
    }
    const last = events.at(-1);
    expect(last?.type === 'error' && last.error.code).toBe('MEMEX_ABORTED');
    await fakeLlm().requests[0]?.closed;
    expect(fakeLlm().requests[0]?.aborted).toBe(true);
    const stored = (await memex.messages.list('alice', ofType(events, 'session').session.id)).messages;
    expect(stored[1]?.role).toBe('assistant');
    expect(stored[1]?.content.length).toBeGreaterThan(0);
    expect(stored[1]?.metadata).toMatchObject({ incomplete: true, error: 'MEMEX_ABORTED' });
  });

  it('a consumer that stops iterating cancels the upstream call and the partial reply is kept', async () => {
    const memex = await open();
    fakeLlm().script({ kind: 'stall', before: 2 });
    let sessionId = '';
    for await (const event of memex.chat('alice', { text: 'Count to a thousand' })) {
      if (event.type === 'session') sessionId = event.session.id;
      if (event.type === 'delta') break;
    }
    await fakeLlm().requests[0]?.closed;
    expect(fakeLlm().requests[0]?.aborted).toBe(true);
    const stored = (await memex.messages.list('alice', sessionId)).messages;
    expect(stored.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(stored[1]?.metadata.incomplete).toBe(true);
  });

  it('without a model is MEMEX_LLM_NOT_CONFIGURED, with nothing written', async () => {
    const memex = await open({}, false);
    const error = await expectCode(collect(memex.chat('alice', { text: 'Hello' })), 'MEMEX_LLM_NOT_CONFIGURED');
    expect(error.statusCode).toBe(503);
    expect((await memex.sessions.list('alice')).total).toBe(0);
    expect(fakeLlm().requests).toHaveLength(0);
  });

  it("bob cannot chat into alice's session", async () => {
    const memex = await open();
    await memex.users.create({ id: 'bob' });
    const session = await memex.sessions.create('alice');
    await expectCode(collect(memex.chat('bob', { text: 'Let me in', sessionId: session.id })), 'MEMEX_SESSION_NOT_FOUND');
    expect((await memex.messages.list('alice', session.id)).total).toBe(0);
    expect((await memex.sessions.list('bob')).total).toBe(0);
    expect(fakeLlm().requests).toHaveLength(0);
  });

  it('refuses an imported session before writing anything', async () => {
    const memex = await open();
    const native = await memex.sessions.create('alice', { title: 'To export' });
    await memex.messages.append('alice', native.id, { role: 'user', content: 'An old conversation' });
    let text = '';
    for await (const piece of memex.sessions.export('alice', native.id, 'json')) text += piece;
    const file = join(await tempDir(), 'export.json');
    await writeFile(file, text);
    await memex.imports.run('alice', file);
    const [imported] = (await memex.sessions.list('alice', { origin: 'imported' })).sessions;
    expect(imported).toBeDefined();
    const before = (await memex.messages.list('alice', imported?.id as string)).total;
    await expectCode(collect(memex.chat('alice', { text: 'Go on', sessionId: imported?.id })), 'MEMEX_SESSION_READ_ONLY');
    expect((await memex.messages.list('alice', imported?.id as string)).total).toBe(before);
    expect(fakeLlm().requests).toHaveLength(0);
  });

  it('runTurn (what the memory proxy builds on): content parts stored, its own request sent, raw chunks handed over, tool calls stored', async () => {
    const memex = await open();
    fakeLlm().script({ kind: 'tool_calls', calls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Lisbon"}' }] });
    const chunks: unknown[] = [];
    const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
    const events = await collect(
      memex.runTurn('alice', {
        message: { role: 'user', content: [{ type: 'text', text: 'Weather in Lisbon?' }] },
        query: 'Weather in Lisbon?',
        request: (window) => ({ messages: window.messages.map((m) => ({ ...m })), tools, temperature: 0.2 }),
        onChunk: (chunk) => chunks.push(chunk),
        title: false,
      }),
    );
    const done = ofType(events, 'done');
    expect(fakeLlm().requests[0]?.body).toMatchObject({ tools, temperature: 0.2 });
    expect(fakeLlm().requests).toHaveLength(1);
    expect(chunks.length).toBeGreaterThan(1);
    expect(done.message.role).toBe('assistant');
    expect(done.message.role === 'assistant' && done.message.toolCalls).toEqual([{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Lisbon"}' } }]);
    expect(ofType(events, 'session').userMessage.parts).toEqual([{ type: 'text', text: 'Weather in Lisbon?' }]);
  });

  it("a chat turn does not wait for another user's messages to be embedded", async () => {
    const embedder = new HeldEmbedder((text) => text.includes('BOB'));
    const memex = await open({ embedder });
    await memex.users.create({ id: 'bob' });
    const bobs = await memex.sessions.create('bob');
    await memex.messages.append('bob', bobs.id, { role: 'user', content: 'BOB keeps this note to himself' });
    try {
      const events = await collect(memex.chat('alice', { text: 'Hello again' }));
      expect(events.at(-1)?.type).toBe('done');
    } finally {
      embedder.release();
    }
    await memex.flush();
  });

  it('refuses bad input with MEMEX_INVALID_INPUT', async () => {
    const memex = await open();
    await expectCode(collect(memex.chat('alice', { text: '   ' })), 'MEMEX_INVALID_INPUT');
    expect((await memex.sessions.list('alice')).total).toBe(0);
  });
});
