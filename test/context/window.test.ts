import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, isMemexError, requestTokens, tiktokenTokenizer, type ContextWindow, type MemexOptions, type Message, type NewMessage } from '../../src/index.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, modelEnv, SHARED_MODEL_MISSING } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

/** The hashed embedder is a real lexical embedder: fast, for the window's mechanics. */
const hashed = new HashedEmbedder();

async function open(dataDir: string, options: Partial<MemexOptions> = {}): Promise<Memex> {
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: hashed, onWarning: () => undefined, ...options });
  opened.push(memex);
  return memex;
}

const WORDS = 'the trip lisbon sister budget hotel cat allergy museum dinner train ticket weather rain sun beach book film music garden coffee tea bread market river bridge'.split(' ');

function sentence(seed: number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[(seed * 7 + i * 13 + ((seed * i) % 5)) % WORDS.length] as string);
  return `${out.join(' ')}.`;
}

/** The window's last `n` messages are the session's last `n` messages, in order. */
function expectRecentSuffix(window: ContextWindow, history: readonly Message[]): void {
  const n = window.report.recent.messages;
  const shown = window.messages.slice(window.messages.length - n);
  const expected = history.slice(history.length - n);
  expect(shown.map((m) => [m.role, m.content])).toEqual(expected.map((m) => [m.role, m.content]));
}

describe('buildContext', () => {
  let runs = 0;

  it('never exceeds the budget and keeps the order of turns, for random sessions, personas, notes and budgets', async () => {
    // Closed after the test, before its folder is removed (a store still open may be writing in it).
    const memex = await open(await tempDir('memex-context-'));
    const turn = fc.record({ role: fc.constantFrom('user' as const, 'assistant' as const), words: fc.integer({ min: 1, max: 120 }), seed: fc.nat(1000) });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          turns: fc.array(turn, { maxLength: 60 }),
          other: fc.array(turn, { maxLength: 20 }),
          persona: fc.option(fc.integer({ min: 1, max: 300 })),
          system: fc.option(fc.integer({ min: 1, max: 100 })),
          notes: fc.array(fc.record({ words: fc.integer({ min: 1, max: 40 }), pinned: fc.boolean() }), { maxLength: 5 }),
          budget: fc.integer({ min: 1, max: 3000 }),
          reserve: fc.integer({ min: 0, max: 400 }),
          encoding: fc.constantFrom('cl100k_base' as const, 'o200k_base' as const),
          shares: fc.record({ notes: fc.double({ min: 0, max: 1, noNaN: true }), summary: fc.double({ min: 0, max: 1, noNaN: true }), memories: fc.double({ min: 0, max: 1, noNaN: true }), recent: fc.double({ min: 0, max: 1, noNaN: true }) }),
          include: fc.record({ notes: fc.boolean(), summary: fc.boolean(), memories: fc.boolean(), recent: fc.boolean() }),
          query: fc.option(fc.integer({ min: 1, max: 8 })),
        }),
        async (c) => {
          const user = `u${runs++}`;
          await memex.users.create({ id: user });
          const toNew = (t: { role: 'user' | 'assistant'; words: number; seed: number }): NewMessage => ({ role: t.role, content: sentence(t.seed, t.words) });
          if (c.other.length > 0) await memex.messages.appendMany(user, (await memex.sessions.create(user)).id, c.other.map(toNew));
          const persona = c.persona ? await memex.personas.create(user, { name: 'p', instructions: sentence(3, c.persona) }) : null;
          const session = await memex.sessions.create(user, { personaId: persona?.id ?? null });
          const history = c.turns.length > 0 ? await memex.messages.appendMany(user, session.id, c.turns.map(toNew)) : [];
          for (const note of c.notes) await memex.notes.add(user, { text: sentence(note.words, note.words), pinned: note.pinned });
          const system = c.system ? sentence(5, c.system) : undefined;
          const tokenizer = tiktokenTokenizer(c.encoding);
          const systemText = [system, c.persona ? sentence(3, c.persona) : undefined].filter(Boolean).join('\n\n');
          const systemTokens = systemText ? requestTokens(tokenizer, [{ role: 'system', content: systemText }]) : 3;

          let window: ContextWindow;
          try {
            window = await memex.buildContext(user, {
              sessionId: session.id,
              budget: c.budget,
              reserve: c.reserve,
              encoding: c.encoding,
              shares: c.shares,
              include: c.include,
              ...(system ? { system } : {}),
              ...(c.query ? { query: sentence(c.query, c.query) } : {}),
            });
          } catch (error) {
            if (!isMemexError(error, 'MEMEX_CONTEXT_BUDGET_TOO_SMALL')) throw error;
            // Only when the system prompt (or the latest turn) cannot fit, or nothing but the reply
            // priming would (fast-check found budget 5, reserve 2: an empty window is refused).
            const latest = history.at(-1);
            const latestTokens = latest && c.include.recent ? requestTokens(tokenizer, [{ role: latest.role, content: latest.content }]) - 3 : 0;
            if (c.budget - c.reserve > 3) expect(systemTokens + latestTokens).toBeGreaterThan(c.budget - c.reserve);
            return;
          }
          const { messages, report } = window;
          // Exact, recounted independently, and within the budget less the reply reserve.
          expect(requestTokens(tokenizer, messages)).toBe(report.tokens);
          expect(report.tokens).toBeLessThanOrEqual(c.budget - c.reserve);
          expect(systemTokens).toBeLessThanOrEqual(c.budget - c.reserve);
          if (systemText) expect(messages[0]).toEqual({ role: 'system', content: systemText });
          expectRecentSuffix(window, history);
          if (c.include.recent && history.length > 0) expect(report.recent.messages).toBeGreaterThan(0);
          if (!c.include.recent) expect(report.recent.messages).toBe(0);
          // The summary covers exactly the turns outside the window.
          if (report.summary) {
            expect(report.summary.coveredMessages).toBe(history.length - report.recent.messages);
            expect(report.summary.coversThroughMessageId).toBe(history[history.length - report.recent.messages - 1]?.id);
          }
          // Recalled memories never repeat a turn the window shows.
          const shown = new Set(history.slice(history.length - report.recent.messages).map((m) => m.id));
          for (const memory of report.memories) {
            expect(memory.source.kind === 'message' && shown.has(memory.source.messageId)).toBe(false);
          }
          const partSum = Object.values(report.parts).reduce((s, p) => s + p.tokens, 0);
          expect(partSum + report.format.replyPriming).toBe(report.tokens);
        },
      ),
      { numRuns: 150 },
    );
  }, 240_000);
});

describe('buildContext behaviour', () => {
  it('refuses a budget too small for the system prompt with a coded error', async () => {
    const memex = await open(await tempDir());
    await memex.users.create({ id: 'alice' });
    const persona = await memex.personas.create('alice', { name: 'long', instructions: 'Always answer with care. '.repeat(40) });
    const session = await memex.sessions.create('alice', { personaId: persona.id });
    await memex.messages.append('alice', session.id, { role: 'user', content: 'hi' });
    await expectCode(memex.buildContext('alice', { sessionId: session.id, budget: 100, reserve: 0 }), 'MEMEX_CONTEXT_BUDGET_TOO_SMALL');
    await expectCode(memex.buildContext('alice', { sessionId: session.id, budget: 1000, reserve: 1000 }), 'MEMEX_CONTEXT_BUDGET_TOO_SMALL');
    // Without the persona it fits.
    const { report } = await memex.buildContext('alice', { sessionId: session.id, budget: 100, reserve: 0, include: { persona: false } });
    expect(report.left).toContainEqual({ part: 'persona', reason: 'excluded', id: persona.id, count: 1 });
    await expectCode(memex.buildContext('alice', { sessionId: session.id, budget: 0 }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.buildContext('alice', { sessionId: '../bob', budget: 1000 }), 'MEMEX_INVALID_ID');
    await memex.users.create({ id: 'bob' });
    await expectCode(memex.buildContext('bob', { sessionId: session.id, budget: 1000 }), 'MEMEX_SESSION_NOT_FOUND');
  });

  it('extends the summary incrementally: each turn is summarized once, and it covers exactly the turns outside the window', async () => {
    const memex = await open(await tempDir());
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    const history: Message[] = [];
    let lastUpdate = '';
    let covered = 0;
    for (let step = 0; step < 6; step++) {
      history.push(...(await memex.messages.appendMany('alice', session.id, Array.from({ length: 15 }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `Step ${step} turn ${i}: ${sentence(step * 15 + i, 30)}` })))));
      const window = await memex.buildContext('alice', { sessionId: session.id, budget: 900, reserve: 100, include: { memories: false } });
      const { report } = window;
      const outside = history.length - report.recent.messages;
      const summary = await memex.summaries.get('alice', session.id);
      if (outside === 0) {
        expect(summary).toBeNull();
        continue;
      }
      expect(report.summary).toMatchObject({ coveredMessages: outside, coversThroughMessageId: history[outside - 1]!.id, method: 'extractive' });
      // Stored: extended to the turns this window leaves out, or a little further when a short summary
      // left room for more turns after it was extended (their sentences are hidden, checked below);
      // never behind an earlier window's.
      expect(summary!.coveredMessages).toBeGreaterThanOrEqual(Math.max(outside, covered));
      expect(summary!.coveredMessages).toBeLessThan(history.length);
      expect(summary!.coversThroughMessageId).toBe(history[summary!.coveredMessages - 1]!.id);
      expect(summary!.tokens).toBeLessThanOrEqual(800);
      covered = summary!.coveredMessages;
      // The window shows only sentences of turns outside it.
      const outsideIds = new Set(history.slice(0, outside).map((m) => m.id));
      const shownSummary = window.messages.find((m) => typeof m.content === 'string' && m.content.startsWith('Summary of the earlier conversation'))?.content ?? '';
      for (const item of summary!.items!) if (!outsideIds.has(item.messageId)) expect(shownSummary).not.toContain(item.text);
      expect(summary!.updatedAt > lastUpdate).toBe(true);
      lastUpdate = summary!.updatedAt;
      // Asking again with nothing new changes nothing.
      const again = await memex.buildContext('alice', { sessionId: session.id, budget: 900, reserve: 100, include: { memories: false } });
      expect(again.report.summary!.extended).toBe(0);
      expect((await memex.summaries.get('alice', session.id))!.updatedAt).toBe(lastUpdate);
    }
    // A bigger budget shows more turns: the summary hides the sentences of turns now in the window.
    const wide = await memex.buildContext('alice', { sessionId: session.id, budget: 3000, reserve: 100, include: { memories: false } });
    const shownIds = new Set(history.slice(history.length - wide.report.recent.messages).map((m) => m.id));
    const summaryText = wide.messages.find((m) => typeof m.content === 'string' && m.content.startsWith('Summary of the earlier conversation'))?.content ?? '';
    for (const item of (await memex.summaries.get('alice', session.id))!.items!) {
      if (shownIds.has(item.messageId)) expect(summaryText).not.toContain(item.text);
    }
    expect(wide.report.summary?.coveredMessages ?? 0).toBe(history.length - wide.report.recent.messages);
  });

  it("extends the summary ahead, after the window: a chat's next window finds it covering the turns the exchange pushed out", async () => {
    const memex = await open(await tempDir());
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    const extended: number[] = [];
    for (let turn = 0; turn < 30; turn++) {
      await memex.messages.append('alice', session.id, { role: 'user', content: `Question ${turn}: ${sentence(turn, 20)}` });
      const window = await memex.buildContext('alice', { sessionId: session.id, budget: 700, reserve: 100, include: { memories: false } });
      expect(window.report.tokens).toBeLessThanOrEqual(600);
      if (window.report.summary) {
        extended.push(window.report.summary.extended);
        // What the window shows of the summary is never behind what it leaves out.
        expect(window.report.summary.stored).toBeGreaterThanOrEqual(window.report.summary.coveredMessages);
      }
      await memex.messages.append('alice', session.id, { role: 'assistant', content: `Answer ${turn}: ${sentence(turn + 100, 20)}` });
    }
    // The first window that leaves turns out extends it on its way; the next ones find it extended.
    expect(extended.length).toBeGreaterThan(10);
    expect(extended[0]).toBeGreaterThan(0);
    expect(extended.slice(1).filter((n) => n > 0)).toEqual([]);
  });

  it('hands the window back before saving the extended summary: a save that fails is a warning, and the summary is read back saved', async () => {
    const dir = await tempDir();
    const warnings: { kind: string }[] = [];
    const memex = await open(dir, { onWarning: (w) => warnings.push(w) });
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    const turns = (from: number): NewMessage[] => Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `Turn ${from + i}: ${sentence(from + i, 30)}` }));
    await memex.messages.appendMany('alice', session.id, turns(0));
    const first = await memex.buildContext('alice', { sessionId: session.id, budget: 900, reserve: 100, include: { memories: false } });
    expect(first.report.summary!.extended).toBeGreaterThan(0);
    // Read straight after the window: the save it started is waited for (with the turns the next
    // exchange will push out, extended after the window was handed back).
    expect((await memex.summaries.get('alice', session.id))!.coveredMessages).toBeGreaterThanOrEqual(first.report.summary!.stored);
    // summary.json cannot be replaced now (a directory stands in its place): the next window is still built.
    const file = join(dir, 'users', 'alice', 'sessions', session.id, 'summary.json');
    await rm(file);
    await mkdir(join(file, 'blocked'), { recursive: true });
    await memex.messages.appendMany('alice', session.id, turns(20));
    const second = await memex.buildContext('alice', { sessionId: session.id, budget: 900, reserve: 100, include: { memories: false } });
    expect(second.report.summary!.extended).toBeGreaterThan(0);
    expect(second.report.tokens).toBeLessThanOrEqual(800);
    await memex.flush();
    await memex.close();
    expect(warnings.filter((w) => w.kind === 'summary-not-saved')).toHaveLength(1);
  });

  it("passes each turn to a caller's model summarizer exactly once, with the summary so far", async () => {
    const calls: { previous: string | null; ids: string[] }[] = [];
    const { modelSummarizer } = await import('../../src/index.js');
    // A stand-in for an LLM (the hook is what is under test): it lists the turns' first words.
    const summarizer = modelSummarizer('test-llm', async ({ previous, messages }) => {
      calls.push({ previous, ids: messages.map((m) => m.content.split(':')[0] as string) });
      return [previous, ...messages.map((m) => m.content.split(':')[0])].filter(Boolean).join(', ');
    });
    const memex = await open(await tempDir(), { summarizer });
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    for (let step = 0; step < 4; step++) {
      await memex.messages.appendMany('alice', session.id, Array.from({ length: 10 }, (_, i) => ({ role: 'user' as const, content: `T${step * 10 + i}: ${sentence(i, 40)}` })));
      await memex.buildContext('alice', { sessionId: session.id, budget: 700, reserve: 0, include: { memories: false } });
    }
    // Read first: it waits for the extension the last window began after it was handed back.
    const summary = await memex.summaries.get('alice', session.id);
    const folded = calls.flatMap((c) => c.ids);
    expect(new Set(folded).size).toBe(folded.length);
    expect(calls.length).toBeGreaterThan(1);
    expect(calls[1]!.previous).toBe(calls[0]!.ids.join(', '));
    expect(summary).toMatchObject({ method: 'model', model: 'test-llm', coveredMessages: folded.length });
  });

  it('includes pinned notes first, and goes on without notes when their file is unreadable', async () => {
    const dataDir = await tempDir();
    const memex = await open(dataDir);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    await memex.messages.append('alice', session.id, { role: 'user', content: 'What should I cook tonight?' });
    await memex.notes.add('alice', { text: 'Likes spicy food', kind: 'preference', pinned: false });
    await memex.notes.add('alice', { text: 'Is vegetarian', kind: 'fact' });
    const { messages } = await memex.buildContext('alice', { sessionId: session.id, budget: 2000 });
    expect(messages[0]!.content).toBe('Notes about the user, kept across conversations:\n- (fact) Is vegetarian\n- (preference) Likes spicy food');
    // Room for the pinned note only.
    const tokenizer = tiktokenTokenizer('o200k_base');
    const budget = requestTokens(tokenizer, [
      { role: 'system', content: 'Notes about the user, kept across conversations:\n- (fact) Is vegetarian' },
      { role: 'user', content: 'What should I cook tonight?' },
    ]);
    const tight = await memex.buildContext('alice', { sessionId: session.id, budget, reserve: 0, encoding: 'o200k_base', include: { memories: false } });
    expect(tight.report.tokens).toBe(budget);
    expect(tight.messages[0]!.content).toContain('Is vegetarian');
    expect(tight.messages[0]!.content).not.toContain('spicy');
    expect(tight.report.left).toContainEqual(expect.objectContaining({ part: 'notes', reason: 'budget' }));

    // Damaged while closed (an open data dir keeps the notes it last read or wrote in memory).
    await memex.close();
    await writeFile(join(dataDir, 'users', 'alice', 'context_history.json'), '{"v":1,"userId":"alice","notes":[{"tex');
    const reopened = await open(dataDir);
    const broken = await reopened.buildContext('alice', { sessionId: session.id, budget: 2000 });
    expect(broken.messages.at(-1)!.content).toBe('What should I cook tonight?');
    expect(broken.report.left).toContainEqual(expect.objectContaining({ part: 'notes', reason: 'unreadable' }));
    // Nothing overwrites notes it cannot read.
    await expectCode(reopened.notes.add('alice', { text: 'x' }), 'MEMEX_USER_CORRUPT');
  });

  it('recalls memories from other sessions, never repeating text the window shows', async () => {
    const memex = await open(await tempDir());
    await memex.users.create({ id: 'alice' });
    const trip = await memex.sessions.create('alice', { title: 'Trip' });
    await memex.messages.appendMany('alice', trip.id, [
      { role: 'user', content: 'My hotel budget in Lisbon is 120 euros a night.' },
      { role: 'user', content: 'I am allergic to cats, so no cat cafes please.' },
    ]);
    const now = await memex.sessions.create('alice');
    await memex.messages.appendMany('alice', now.id, [
      { role: 'user', content: 'I am allergic to cats, so no cat cafes please.' },
      { role: 'assistant', content: 'Noted.' },
      { role: 'user', content: 'What hotel budget did I give for Lisbon?' },
    ]);
    const { messages, report } = await memex.buildContext('alice', { sessionId: now.id, budget: 2000 });
    expect(report.query).toEqual({ text: 'What hotel budget did I give for Lisbon?', from: 'latest-user-turn' });
    const memories = messages.find((m) => typeof m.content === 'string' && m.content.startsWith('Memories recalled'))!.content;
    expect(memories).toContain('120 euros');
    expect(memories).not.toContain('allergic');
    expect(report.memories.find((m) => m.text.includes('120 euros'))).toMatchObject({ sessionId: trip.id, source: { kind: 'message', role: 'user' } });
    expect(report.left).toContainEqual(expect.objectContaining({ part: 'memories', reason: 'in-window' }));
    // Off on request, and an explicit query wins over the latest turn.
    const off = await memex.buildContext('alice', { sessionId: now.id, budget: 2000, include: { memories: false } });
    expect(off.messages.some((m) => typeof m.content === 'string' && m.content.startsWith('Memories recalled'))).toBe(false);
    const asked = await memex.buildContext('alice', { sessionId: now.id, budget: 2000, query: 'cats' });
    expect(asked.report.query).toEqual({ text: 'cats', from: 'option' });
  });

  it.skipIf(!hasSharedModel)('with the real model, recalls the fact a question needs from an earlier session', async () => {
    const memex = await open(await tempDir(), { embedder: undefined as never });
    await memex.users.create({ id: 'alice' });
    const old = await memex.sessions.create('alice');
    await memex.messages.appendMany('alice', old.id, [
      { role: 'user', content: 'We adopted a beagle puppy and named him Biscuit.' },
      { role: 'user', content: 'The quarterly report is due on the fifth of March.' },
      { role: 'user', content: 'I have been learning to play the cello since January.' },
    ]);
    const session = await memex.sessions.create('alice');
    await memex.messages.append('alice', session.id, { role: 'user', content: "What is my dog's name?" });
    const { report } = await memex.buildContext('alice', { sessionId: session.id, budget: 4096 });
    expect(report.memories.map((m) => m.text)).toContain('We adopted a beagle puppy and named him Biscuit.');
  });
  it('minRelevance leaves out a memory that shares only a weak word with the query, and keeps the only match', async () => {
    const memex = await open(await tempDir());
    await memex.users.ensure('alice');
    const old = await memex.sessions.create('alice');
    await memex.messages.appendMany('alice', old.id, ['The grey heron nests by the river.', 'The river floods every spring.', 'We bought a new kettle for the office.'].map((content) => ({ role: 'user' as const, content })));
    const now = await memex.sessions.create('alice');
    await memex.messages.append('alice', now.id, { role: 'user', content: 'hello' });
    await memex.flush();
    const texts = async (query: string, minRelevance: number | null): Promise<string[]> =>
      (await memex.buildContext('alice', { sessionId: now.id, budget: 4096, query, minScore: null, minRelevance })).report.memories.map((m) => m.text).sort();
    expect(await texts('grey heron nests river', null)).toContain('The river floods every spring.');
    expect(await texts('grey heron nests river', 0.5)).toEqual(['The grey heron nests by the river.']);
    // The only chunk that shares a word with the query stays, however weak the match.
    expect(await texts('kettle descaling vinegar citric', 0.9)).toEqual(['We bought a new kettle for the office.']);
  });
  if (!hasSharedModel) it.skip(SHARED_MODEL_MISSING, () => undefined);
});

describe('OpenAI chat messages in windows', () => {
  it('renders content parts, names, assistant tool_calls and tool results in the OpenAI shape, counted within the budget', async () => {
    const memex = await open(await tempDir());
    await memex.users.ensure('alice');
    const session = await memex.sessions.create('alice');
    const call = { id: 'call_1', type: 'function' as const, function: { name: 'get_weather', arguments: '{"city":"Lisbon"}' } };
    const parts = [
      { type: 'text' as const, text: 'What is the weather where this photo was taken?' },
      { type: 'image_url' as const, image_url: { url: 'data:image/png;base64,iVBORw0KGgo=', detail: 'low' as const } },
    ];
    await memex.messages.appendMany('alice', session.id, [
      { role: 'user', name: 'alice_p', content: parts },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
      { role: 'assistant', content: 'It is 21 degrees in Lisbon.' },
    ]);
    const window = await memex.buildContext('alice', { sessionId: session.id, budget: 4096, include: { memories: false, notes: false } });
    expect(window.messages).toEqual([
      { role: 'user', name: 'alice_p', content: parts },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'tool', content: '{"temp":21}', tool_call_id: 'call_1' },
      { role: 'assistant', content: 'It is 21 degrees in Lisbon.' },
    ]);
    expect(window.report.tokens).toBe(requestTokens(tiktokenTokenizer('o200k_base'), window.messages));
    // The image (85 tokens at low detail) and the call's arguments are counted.
    const text = requestTokens(tiktokenTokenizer('o200k_base'), [{ role: 'user', name: 'alice_p', content: parts[0]?.text ?? '' }]);
    expect(requestTokens(tiktokenTokenizer('o200k_base'), [window.messages[0] as ContextWindow['messages'][number]])).toBe(text + 85);
  });
});

describe('relevance floor', () => {
  it.runIf(hasSharedModel)('a context for an unrelated query recalls no noise memories (regression: windows padded with OCR fragments)', async () => {
    const memex = await open(await tempDir(), { embedder: undefined as never });
    await memex.users.ensure('alice');
    const old = await memex.sessions.create('alice');
    const fragments = ['Pagel', 'Pagel 12', 'fl', 'ii 3 Ss', '|||', 'Fig. 2 —', 'ISBN 978-3-16', 'Table of contents', 'My manager likes spreadsheets.', 'Traffic was terrible this morning.', 'The quarterly budget review moved to Thursday.'];
    await memex.messages.appendMany('alice', old.id, fragments.map((content) => ({ role: 'user' as const, content })));
    const now = await memex.sessions.create('alice');
    await memex.messages.append('alice', now.id, { role: 'user', content: 'hello' });
    await memex.flush();
    const window = await memex.buildContext('alice', { sessionId: now.id, budget: 4096, query: 'wine' });
    expect(window.report.memories.map((m) => m.text)).toEqual([]);
    // The floor is the default, not the absence of matches: without it, the window is padded.
    const unfloored = await memex.buildContext('alice', { sessionId: now.id, budget: 4096, query: 'wine', minScore: null, minRelevance: null });
    expect(unfloored.report.memories.length).toBeGreaterThan(5);
    // And it keeps what is relevant.
    await memex.messages.append('alice', old.id, { role: 'user', content: 'We opened a bottle of red wine from Bordeaux at dinner.' });
    await memex.flush();
    const relevant = await memex.buildContext('alice', { sessionId: now.id, budget: 4096, query: 'wine' });
    expect(relevant.report.memories.map((m) => m.text)).toEqual(['We opened a bottle of red wine from Bordeaux at dinner.']);
  }, 60_000);
  if (!hasSharedModel) it.skip(SHARED_MODEL_MISSING, () => undefined);
});
