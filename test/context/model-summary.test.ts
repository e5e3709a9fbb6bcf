import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type MemexOptions, type MemexWarning } from '../../src/index.js';
import { BACKENDS, backendConfig } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { startFakeLlm, type FakeLlm } from '../helpers/fake-llm.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

// context.summarizer: 'model' wires the configured chat model (here a fake OpenAI-compatible
// server) into the summarizer hook, with the extractive summarizer as its fallback.

let fake: FakeLlm;
beforeAll(async () => {
  fake = await startFakeLlm();
});
afterAll(async () => {
  await fake.close();
});
const MODEL_SUMMARY = 'SUMMARY FROM THE FAKE: the user planned a trip to Lisbon.';
beforeEach(() => {
  fake.reset();
  fake.fallback = () => ({ kind: 'text', text: MODEL_SUMMARY });
});

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

const WORDS = 'the trip lisbon sister budget hotel cat allergy museum dinner train ticket weather rain sun beach book film music garden coffee tea bread market river bridge'.split(' ');
function sentence(seed: number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[(seed * 7 + i * 13 + ((seed * i) % 5)) % WORDS.length] as string);
  return `${out.join(' ')}.`;
}

describe.each(BACKENDS)('model summarizer from config (%s)', (backend) => {
  async function open(options: Partial<MemexOptions> = {}, warnings: MemexWarning[] = []): Promise<Memex> {
    const dataDir = await tempDir();
    const memex = await Memex.open({
      dataDir,
      env: modelEnv,
      embedder: new HashedEmbedder(),
      onWarning: (w) => warnings.push(w),
      config: { ...(await backendConfig(backend, dataDir)), context: { summarizer: 'model' }, llm: { baseUrl: fake.baseUrl, model: 'fake-summary-model', maxRetries: 0 } },
      ...options,
    });
    opened.push(memex);
    return memex;
  }

  async function fill(memex: Memex, from: number, count: number): Promise<string> {
    const session = (await memex.sessions.list('alice')).sessions[0] ?? (await memex.sessions.create('alice'));
    await memex.messages.appendMany('alice', session.id, Array.from({ length: count }, (_, i) => ({ role: 'user' as const, content: `T${from + i}: ${sentence(from + i, 40)}` })));
    return session.id;
  }

  it('summarizes the turns that left the window with the configured model', async () => {
    const memex = await open();
    await memex.users.create({ id: 'alice' });
    const sessionId = await fill(memex, 0, 30);
    const window = await memex.buildContext('alice', { sessionId, budget: 700, reserve: 0, include: { memories: false } });
    expect(window.messages.some((m) => typeof m.content === 'string' && m.content.includes(MODEL_SUMMARY))).toBe(true);
    expect(fake.requests.length).toBeGreaterThan(0);
    const sent = fake.requests[0]!.body as { model: string; messages: { role: string; content: string }[]; stream: boolean };
    expect(sent.model).toBe('fake-summary-model');
    expect(sent.stream).toBe(false);
    expect(sent.messages.map((m) => m.content).join('\n')).toContain('T0: ');
    expect(await memex.summaries.get('alice', sessionId)).toMatchObject({ method: 'model', model: 'fake-summary-model', text: MODEL_SUMMARY });
  });

  it('falls back to the extractive summary for an extension the model fails, with a warning, and the model later rewrites it', async () => {
    const warnings: MemexWarning[] = [];
    const memex = await open({}, warnings);
    await memex.users.create({ id: 'alice' });
    const sessionId = await fill(memex, 0, 30);
    fake.fallback = () => ({ kind: 'status', status: 500, message: 'the fake model is down' });
    const window = await memex.buildContext('alice', { sessionId, budget: 700, reserve: 0, include: { memories: false } });
    expect(window.messages.length).toBeGreaterThan(0);
    expect(warnings).toContainEqual(expect.objectContaining({ kind: 'summary-fallback', sessionId, code: 'MEMEX_LLM_UNAVAILABLE' }));
    const fallback = await memex.summaries.get('alice', sessionId);
    expect(fallback?.method).toBe('model');
    const line = fallback?.text.split('\n').find((l) => l.startsWith('- user: T'));
    expect(line).toBeDefined();
    expect(window.messages.some((m) => typeof m.content === 'string' && m.content.includes(line!))).toBe(true);

    fake.fallback = () => ({ kind: 'text', text: MODEL_SUMMARY });
    fake.reset();
    await fill(memex, 30, 20);
    await memex.buildContext('alice', { sessionId, budget: 700, reserve: 0, include: { memories: false } });
    const prompt = (fake.requests[0]!.body as { messages: { content: string }[] }).messages[1]!.content;
    expect(prompt).toContain(line!);
    expect((await memex.summaries.get('alice', sessionId))?.text).toBe(MODEL_SUMMARY);
  });

  it('refuses context.summarizer "model" without a configured model: MEMEX_LLM_NOT_CONFIGURED', async () => {
    await expectCode(open({ config: { ...(await backendConfig(backend, await tempDir())), context: { summarizer: 'model' } } }), 'MEMEX_LLM_NOT_CONFIGURED');
    await expectCode(open({ config: { ...(await backendConfig(backend, await tempDir())), context: { summarizer: 'model' }, llm: { baseUrl: fake.baseUrl } } }), 'MEMEX_LLM_NOT_CONFIGURED');
    expect(fake.requests).toHaveLength(0);
  });
});
