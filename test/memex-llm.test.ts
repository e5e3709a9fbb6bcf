import { afterEach, describe, expect, it } from 'vitest';
import { ChatModel, HashedEmbedder, Memex, type MemexOptions } from '../src/index.js';
import { expectCode } from './helpers/errors.js';
import { useFakeLlm } from './helpers/fake-llm.js';
import { modelEnv } from './helpers/model.js';
import { tempDir } from './helpers/tmp.js';

// The facade's chat model client (the store is not involved, so the flat files stand for both backends).

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});
const fakeLlm = useFakeLlm();

async function open(options: Partial<MemexOptions> = {}): Promise<Memex> {
  const memex = await Memex.open({ dataDir: await tempDir(), env: modelEnv, embedder: new HashedEmbedder(), onWarning: () => undefined, ...options });
  opened.push(memex);
  return memex;
}

describe('Memex.chatModel', () => {
  it('is MEMEX_LLM_NOT_CONFIGURED without llm.baseUrl', async () => {
    const memex = await open();
    const error = await expectCode(() => memex.chatModel(), 'MEMEX_LLM_NOT_CONFIGURED');
    expect(error.statusCode).toBe(503);
  });

  it('is the client the llm config describes', async () => {
    const memex = await open({ config: { llm: { baseUrl: fakeLlm().baseUrl, model: 'configured-model' } } });
    const reply = await memex.chatModel().complete({ messages: [{ role: 'user', content: 'hi' }] });
    expect(reply.content).toBe('ok');
    expect(fakeLlm().requests[0]?.body.model).toBe('configured-model');
  });

  it('options.chatModel wins, and the model summarizer uses it', async () => {
    const chatModel = new ChatModel({ baseUrl: fakeLlm().baseUrl, model: 'injected-model', maxRetries: 0 });
    const memex = await open({ chatModel, config: { context: { summarizer: 'model' } } });
    expect(memex.chatModel()).toBe(chatModel);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    await memex.messages.appendMany('alice', session.id, Array.from({ length: 30 }, (_, i) => ({ role: 'user' as const, content: `Turn ${i}: ${'we talked about the lisbon trip and the hotel budget '.repeat(3)}` })));
    await memex.buildContext('alice', { sessionId: session.id, budget: 600, reserve: 0, include: { memories: false } });
    expect(fakeLlm().requests.length).toBeGreaterThan(0);
    expect(fakeLlm().requests.every((r) => r.body.model === 'injected-model')).toBe(true);
  });
});
