import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { inspect } from 'node:util';
import { loadConfig } from '../../src/core/index.js';
import { ChatModel, chatModelFromConfig, ReplyFold, type ChatChunk, type ChatModelOptions } from '../../src/llm/index.js';
import { expectCode } from '../helpers/errors.js';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.js';

let fake: FakeLlm;
beforeAll(async () => {
  fake = await startFakeLlm();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
});

const KEY = 'sk-test-secret-key-0123456789';
/** Tiny backoff so retry tests take milliseconds. */
function client(options: Partial<ChatModelOptions> = {}): ChatModel {
  return new ChatModel({ baseUrl: fake.baseUrl, model: 'fake-model', retryBaseMs: 1, retryMaxMs: 5, timeoutMs: 2_000, idleTimeoutMs: 2_000, ...options });
}
const hello = { messages: [{ role: 'user', content: 'hello' }] };

async function collect(iterable: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const chunk of iterable) out.push(chunk);
  return out;
}

describe('ChatModel.complete', () => {
  it('returns the whole reply with usage, sending the configured model, the key and extra headers', async () => {
    fake.script({ kind: 'text', text: 'Hello there', usage: { prompt: 5, completion: 2 } });
    const reply = await client({ apiKey: KEY, headers: { 'x-org': 'memex' } }).complete(hello);
    expect(reply).toMatchObject({ content: 'Hello there', finishReason: 'stop', model: 'fake-model', usage: { promptTokens: 5, completionTokens: 2, totalTokens: 7 }, toolCalls: [] });
    expect(reply.raw).toMatchObject({ object: 'chat.completion' });
    const [request] = fake.requests;
    expect(request?.body).toMatchObject({ model: 'fake-model', stream: false, messages: hello.messages });
    expect(request?.body).not.toHaveProperty('stream_options');
    expect(request?.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(request?.headers['x-org']).toBe('memex');
  });

  it('sends no Authorization header without a key', async () => {
    await client().complete(hello);
    expect(fake.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('passes unknown request fields, multi-part content and tool messages through unchanged', async () => {
    const request = {
      model: 'other-model',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: '42' },
      ],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      tool_choice: 'auto',
      seed: 7,
      user: 'u-1',
    };
    await client().complete(request);
    expect(fake.requests[0]?.body).toEqual({ ...request, stream: false });
  });

  it('returns tool calls', async () => {
    fake.script({ kind: 'tool_calls', calls: [{ id: 'call_9', name: 'lookup', arguments: '{"q":"lisbon"}' }] });
    const reply = await client().complete(hello);
    expect(reply.content).toBeNull();
    expect(reply.finishReason).toBe('tool_calls');
    expect(reply.toolCalls).toEqual([{ id: 'call_9', type: 'function', function: { name: 'lookup', arguments: '{"q":"lisbon"}' } }]);
  });

  it('retries 500 and 429 (honouring Retry-After) and then succeeds', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'status', status: 429, headers: { 'retry-after': '0' } }, { kind: 'text', text: 'third time' });
    const reply = await client({ maxRetries: 2 }).complete(hello);
    expect(reply.content).toBe('third time');
    expect(fake.requests).toHaveLength(3);
  });

  it('gives MEMEX_LLM_UNAVAILABLE after the retries on 5xx, and MEMEX_LLM_RATE_LIMITED on 429', async () => {
    fake.script({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    const error = await expectCode(client({ maxRetries: 1 }).complete(hello), 'MEMEX_LLM_UNAVAILABLE');
    expect(error.details).toMatchObject({ upstreamStatus: 503, attempts: 2 });
    expect(fake.requests).toHaveLength(2);
    fake.script({ kind: 'status', status: 429 }, { kind: 'status', status: 429 });
    await expectCode(client({ maxRetries: 1 }).complete(hello), 'MEMEX_LLM_RATE_LIMITED');
  });

  it('does not wait for a Retry-After longer than maxRetryAfterMs', async () => {
    fake.script({ kind: 'status', status: 429, headers: { 'retry-after': '3600' } });
    await expectCode(client({ maxRetries: 3, maxRetryAfterMs: 1000 }).complete(hello), 'MEMEX_LLM_RATE_LIMITED');
    expect(fake.requests).toHaveLength(1);
  });

  it('retries a refused connection, then gives MEMEX_LLM_UNAVAILABLE', async () => {
    const closed = await startFakeLlm();
    const baseUrl = closed.baseUrl;
    await closed.close();
    await expectCode(new ChatModel({ baseUrl, model: 'm', maxRetries: 2, retryBaseMs: 1, retryMaxMs: 2 }).complete(hello), 'MEMEX_LLM_UNAVAILABLE');
  });

  it('401 gives MEMEX_LLM_REFUSED with the upstream status and message, never the key, and is not retried', async () => {
    fake.script({ kind: 'status', status: 401, message: `Incorrect API key provided: ${KEY}` });
    const error = await expectCode(client({ apiKey: KEY, maxRetries: 3 }).complete(hello), 'MEMEX_LLM_REFUSED');
    expect(error.details).toMatchObject({ upstreamStatus: 401 });
    expect(error.message).toContain('Incorrect API key');
    const model = client({ apiKey: KEY });
    const shown = `${error.message} ${JSON.stringify(error)} ${inspect(error, { depth: 5 })} ${inspect(model, { depth: 5 })} ${JSON.stringify(model)}`;
    expect(shown).not.toContain(KEY);
    expect(fake.requests).toHaveLength(1);
  });

  it('times out a server that never answers with MEMEX_LLM_TIMEOUT, and the upstream request is closed', async () => {
    fake.script({ kind: 'hang' });
    await expectCode(client({ timeoutMs: 150, maxRetries: 2 }).complete(hello), 'MEMEX_LLM_TIMEOUT');
    expect(fake.requests).toHaveLength(1);
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(true);
  });

  it('a body that is not JSON gives MEMEX_LLM_BAD_RESPONSE', async () => {
    fake.script({ kind: 'garbage', body: '<html>proxy error</html>' });
    await expectCode(client().complete(hello), 'MEMEX_LLM_BAD_RESPONSE');
    fake.script({ kind: 'garbage', body: '{"object":"list","data":[]}' });
    await expectCode(client().complete(hello), 'MEMEX_LLM_BAD_RESPONSE');
  });

  it('an abort during the backoff wait ends the call at once with MEMEX_ABORTED', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'status', status: 500 });
    const controller = new AbortController();
    const call = client({ retryBaseMs: 60_000, retryMaxMs: 60_000, maxRetries: 1 }).complete(hello, { signal: controller.signal });
    while (fake.requests.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await fake.requests[0]?.closed;
    controller.abort();
    await expectCode(call, 'MEMEX_ABORTED');
    expect(fake.requests).toHaveLength(1);
  });
});

describe('ChatModel.stream', () => {
  it('yields the chunks as sent, asks for usage, and folds to the text and usage', async () => {
    fake.script({ kind: 'text', text: 'The quick brown fox', chunks: 4, usage: { prompt: 9, completion: 4 } });
    const chunks = await collect(client().stream(hello));
    expect(fake.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(chunks.every((c) => (c as Record<string, unknown>).object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]).toHaveProperty('created', 1_700_000_000);
    const fold = new ReplyFold('fake-model');
    const deltas = chunks.map((c) => fold.add(c)).filter((d) => d !== '');
    expect(deltas.length).toBe(4);
    expect(fold.reply()).toMatchObject({ content: 'The quick brown fox', finishReason: 'stop', usage: { promptTokens: 9, completionTokens: 4, totalTokens: 13 } });
  });

  it('leaves usage null for a server that ignores stream_options, and keeps a caller\'s own stream_options', async () => {
    fake.script({ kind: 'text', text: 'no usage here', ignoreStreamOptions: true });
    const reply = await client().streamReply(hello);
    expect(reply.content).toBe('no usage here');
    expect(reply.usage).toBeNull();
    await collect(client().stream({ ...hello, stream_options: { include_usage: false } }));
    expect(fake.requests[1]?.body.stream_options).toEqual({ include_usage: false });
  });

  it('tolerates keep-alive comments, CRLF and a missing [DONE] after a finish reason', async () => {
    fake.script({ kind: 'text', text: 'abc def', preamble: ': ping\n\n: ping\n\n', crlf: true, noDone: true });
    const deltas: string[] = [];
    const reply = await client().streamReply(hello, { onDelta: (d) => deltas.push(d) });
    expect(reply.content).toBe('abc def');
    expect(deltas.join('')).toBe('abc def');
  });

  it('folds streamed tool calls whose arguments arrive in pieces', async () => {
    fake.script({
      kind: 'tool_calls',
      calls: [
        { id: 'call_a', name: 'search', arguments: '{"query":"lisbon trip","k":5}' },
        { id: 'call_b', name: 'weather', arguments: '{"city":"Porto"}' },
      ],
      chunks: 4,
    });
    const reply = await client().streamReply(hello);
    expect(reply.finishReason).toBe('tool_calls');
    expect(reply.content).toBeNull();
    expect(reply.toolCalls).toEqual([
      { id: 'call_a', type: 'function', function: { name: 'search', arguments: '{"query":"lisbon trip","k":5}' } },
      { id: 'call_b', type: 'function', function: { name: 'weather', arguments: '{"city":"Porto"}' } },
    ]);
    expect(reply.usage).toMatchObject({ promptTokens: 20 });
  });

  it('retries a 500 before the stream began', async () => {
    fake.script({ kind: 'status', status: 500 }, { kind: 'text', text: 'recovered' });
    expect((await client().streamReply(hello)).content).toBe('recovered');
    expect(fake.requests).toHaveLength(2);
  });

  it('never retries once streaming began: a dropped connection mid-stream is MEMEX_LLM_UNAVAILABLE', async () => {
    fake.script({ kind: 'drop', before: 2 }, { kind: 'text', text: 'must not be asked for' });
    const seen: ChatChunk[] = [];
    await expectCode(async () => {
      for await (const chunk of client({ maxRetries: 3 }).stream(hello)) seen.push(chunk);
    }, 'MEMEX_LLM_UNAVAILABLE');
    expect(seen.length).toBeLessThanOrEqual(2);
    expect(fake.requests).toHaveLength(1);
  });

  it('a connection dropped after the finish reason (no [DONE], no usage) still gives the whole reply', async () => {
    fake.script({ kind: 'drop', before: 2, finished: true });
    const reply = await client().streamReply(hello);
    expect(reply.finishReason).toBe('stop');
    expect(reply.content).toBe('partial reply text '.repeat(2));
    expect(reply.usage).toBeNull();
  });

  it('a malformed chunk gives MEMEX_LLM_BAD_RESPONSE and closes the upstream request', async () => {
    fake.script({ kind: 'malformed', before: 2 });
    const seen: ChatChunk[] = [];
    await expectCode(async () => {
      for await (const chunk of client().stream(hello)) seen.push(chunk);
    }, 'MEMEX_LLM_BAD_RESPONSE');
    expect(seen).toHaveLength(2);
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(true);
  });

  it('a stream that stalls past idleTimeoutMs gives MEMEX_LLM_TIMEOUT and is not retried', async () => {
    fake.script({ kind: 'stall', before: 1 });
    await expectCode(collect(client({ idleTimeoutMs: 150, maxRetries: 2 }).stream(hello)), 'MEMEX_LLM_TIMEOUT');
    expect(fake.requests).toHaveLength(1);
  });

  it('aborting mid-stream ends the iteration with MEMEX_ABORTED and aborts the upstream request', async () => {
    fake.script({ kind: 'text', text: 'a long reply that keeps coming in many pieces', chunks: 40, delayMs: 20 });
    const controller = new AbortController();
    const seen: ChatChunk[] = [];
    await expectCode(async () => {
      for await (const chunk of client().stream(hello, { signal: controller.signal })) {
        seen.push(chunk);
        if (seen.length === 2) controller.abort();
      }
    }, 'MEMEX_ABORTED');
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(true);
  });

  it('breaking out of the loop aborts the upstream request', async () => {
    fake.script({ kind: 'text', text: 'a long reply that keeps coming in many pieces', chunks: 40, delayMs: 20 });
    for await (const chunk of client().stream(hello)) {
      expect(chunk).toBeTruthy();
      break;
    }
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(true);
  });

  it('a completed stream is not reported as aborted upstream', async () => {
    await collect(client().stream(hello));
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.aborted).toBe(false);
  });

  it('an in-stream error object gives MEMEX_LLM_UNAVAILABLE', async () => {
    fake.script({ kind: 'garbage', body: 'data: {"error":{"message":"model overloaded"}}\n\n' });
    const error = await expectCode(collect(client().stream(hello)), 'MEMEX_LLM_UNAVAILABLE');
    expect(error.message).toContain('model overloaded');
  });
});

describe('chatModelFromConfig', () => {
  it('MEMEX_LLM_NOT_CONFIGURED without llm.baseUrl, and nothing is called', async () => {
    const config = loadConfig({ env: {}, cwd: '/nonexistent-memex-cwd' });
    expect(config.llm.baseUrl).toBeNull();
    const error = await expectCode(() => chatModelFromConfig(config.llm), 'MEMEX_LLM_NOT_CONFIGURED');
    expect(error.hint).toContain('MEMEX_LLM_BASE_URL');
    expect(error.hint).toContain('llm.baseUrl');
  });

  it('MEMEX_LLM_NOT_CONFIGURED when neither the request nor llm.model names a model', async () => {
    const model = chatModelFromConfig(loadConfig({ env: { MEMEX_LLM_BASE_URL: fake.baseUrl }, cwd: '/nonexistent-memex-cwd' }).llm);
    await expectCode(model.complete(hello), 'MEMEX_LLM_NOT_CONFIGURED');
    expect(fake.requests).toHaveLength(0);
  });

  it('builds a working client from MEMEX_LLM_* and keeps the key out of printed config', async () => {
    const config = loadConfig({ env: { MEMEX_LLM_BASE_URL: fake.baseUrl, MEMEX_LLM_MODEL: 'env-model', MEMEX_LLM_API_KEY: KEY }, cwd: '/nonexistent-memex-cwd' });
    expect(JSON.stringify(config)).not.toContain(KEY);
    expect(inspect(config, { depth: 10 })).not.toContain(KEY);
    expect(String(config.llm.apiKey)).not.toContain(KEY);
    const reply = await chatModelFromConfig(config.llm).complete(hello);
    expect(reply.content).toBe('ok');
    expect(fake.requests[0]?.body.model).toBe('env-model');
    expect(fake.requests[0]?.headers.authorization).toBe(`Bearer ${KEY}`);
  });

  it('an invalid request gives MEMEX_INVALID_INPUT before anything is sent', async () => {
    await expectCode(client().complete({ messages: [] }), 'MEMEX_INVALID_INPUT');
    expect(fake.requests).toHaveLength(0);
  });
});
