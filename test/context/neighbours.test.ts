import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, requestTokens, tiktokenTokenizer, type ContextWindow, type Message } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

/** The hashed embedder is a real lexical embedder: fast, for the window's mechanics. */
const hashed = new HashedEmbedder();

async function open(backend: Backend, neighbours?: { before: number; after: number }): Promise<Memex> {
  const dataDir = await tempDir('memex-neighbours-');
  const config = { ...(await backendConfig(backend, dataDir)), ...(neighbours ? { context: { neighbours } } : {}) };
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: hashed, onWarning: () => undefined, config });
  opened.push(memex);
  await memex.users.create({ id: 'alice' });
  return memex;
}

const QUESTION = 'Where should we go for dinner on Friday?';
const ANSWER = 'Try the harbour oyster bar near the old lighthouse.';
const AFTER = 'Lovely, I will book a table for two.';

/** An earlier session holding a question, its answer (what recall finds) and the turn after. */
async function earlier(memex: Memex): Promise<Message[]> {
  const old = await memex.sessions.create('alice', { title: 'Friday' });
  return memex.messages.appendMany('alice', old.id, [
    { role: 'user', content: 'Good morning.' },
    { role: 'user', content: QUESTION },
    { role: 'assistant', content: ANSWER },
    { role: 'user', content: AFTER },
  ]);
}

function memoriesText(window: ContextWindow): string {
  const found = window.messages.find((m) => typeof m.content === 'string' && m.content.startsWith('Memories recalled'));
  return typeof found?.content === 'string' ? found.content : '';
}

describe.each(BACKENDS)('context at read time on %s', (backend) => {
  it('a neighbour turn arrives with its hit, in order, as one memory', async () => {
    const memex = await open(backend);
    const old = await earlier(memex);
    const now = await memex.sessions.create('alice');
    await memex.messages.append('alice', now.id, { role: 'user', content: 'Hello again.' });
    await memex.flush();
    const query = 'harbour oyster lighthouse';

    const before = await memex.buildContext('alice', { sessionId: now.id, budget: 2000, query, memories: 1, neighbours: { before: 1, after: 0 } });
    const text = memoriesText(before);
    expect(text).toContain(QUESTION);
    expect(text.indexOf(QUESTION)).toBeLessThan(text.indexOf(ANSWER));
    expect(text).not.toContain(AFTER);
    const memory = before.report.memories.find((m) => m.source.messageId === old[2]?.id);
    expect(memory?.neighbours).toEqual([old[1]?.id]);
    // One memory: the question is a continuation line under the answer's bullet, with its date and role.
    expect(text.split('\n').filter((line) => line.startsWith('- '))).toHaveLength(1);
    expect(text).toMatch(/\n {2}\[\d{4}-\d{2}-\d{2}\] assistant: Try the harbour/);

    const both = await memex.buildContext('alice', { sessionId: now.id, budget: 2000, query, memories: 1, neighbours: { before: 1, after: 1 } });
    const bothText = memoriesText(both);
    expect(bothText.indexOf(QUESTION)).toBeLessThan(bothText.indexOf(ANSWER));
    expect(bothText.indexOf(ANSWER)).toBeLessThan(bothText.indexOf(AFTER));
    expect(both.report.memories[0]?.neighbours).toEqual([old[1]?.id, old[3]?.id]);
  });

  it('a neighbour the window already shows is not repeated', async () => {
    const memex = await open(backend);
    const old = await earlier(memex);
    // The current session shows the same question: the memory does not repeat it.
    const now = await memex.sessions.create('alice');
    await memex.messages.appendMany('alice', now.id, [{ role: 'user', content: QUESTION }, { role: 'assistant', content: 'Let me think.' }]);
    await memex.flush();
    const window = await memex.buildContext('alice', { sessionId: now.id, budget: 2000, query: 'harbour oyster lighthouse', memories: 1, neighbours: { before: 1, after: 1 } });
    const text = memoriesText(window);
    expect(text).toContain(ANSWER);
    expect(text).not.toContain(QUESTION);
    expect(window.report.memories[0]?.neighbours).toEqual([old[3]?.id]);

    // In the window's own session: a recalled turn whose neighbour is a recent turn does not show it again.
    const long = await memex.sessions.create('alice');
    const filler = (i: number): string => `Filler turn ${i} about the weather and the garden and the river, nothing more to say today.`;
    const turns = await memex.messages.appendMany('alice', long.id, [
      ...Array.from({ length: 30 }, (_, i) => ({ role: 'user' as const, content: filler(i) })),
      // Not the earlier session's words: a duplicate text would be recalled from there instead.
      { role: 'assistant', content: 'The harbour oyster bar by the lighthouse opens at seven.' },
      { role: 'user', content: 'Then book it for seven, please.' },
      { role: 'assistant', content: 'Done.' },
    ]);
    await memex.flush();
    const afterId = turns[31]?.id as string;
    let seen = false;
    for (let budget = 40; budget <= 240 && !seen; budget += 2) {
      const w = await memex.buildContext('alice', { sessionId: long.id, budget, reserve: 0, query: 'harbour oyster lighthouse', neighbours: { before: 1, after: 1 }, include: { summary: false }, shares: { recent: 0.2, memories: 0.8 } });
      const recentIds = new Set<string>(turns.slice(turns.length - w.report.recent.messages).map((m) => m.id));
      const shownAnswer = w.report.memories.find((m) => m.source.messageId === turns[30]?.id);
      for (const memory of w.report.memories) for (const id of memory.neighbours) expect(recentIds.has(id)).toBe(false);
      if (shownAnswer && recentIds.has(afterId)) {
        seen = true;
        expect(shownAnswer.neighbours).toEqual([turns[29]?.id]);
        expect(memoriesText(w)).not.toContain('book it for seven');
      }
    }
    // Some budget puts the answer in memories and the turn after it in the recent turns.
    expect(seen).toBe(true);
  });

  it('neighbours=0 is exactly the window without neighbours: one line per hit, as configured off', async () => {
    const off = await open(backend, { before: 0, after: 0 });
    await earlier(off);
    const now = await off.sessions.create('alice');
    await off.messages.append('alice', now.id, { role: 'user', content: 'Which oyster bar did you suggest for Friday dinner?' });
    await off.flush();
    const configured = await off.buildContext('alice', { sessionId: now.id, budget: 2000 });
    const asked = await off.buildContext('alice', { sessionId: now.id, budget: 2000, neighbours: { before: 0, after: 0 } });
    expect(asked.messages).toEqual(configured.messages);
    const text = memoriesText(configured);
    expect(text).toContain(ANSWER);
    const lines = text.split('\n').slice(1);
    expect(lines.every((line) => /^- \[\d{4}-\d{2}-\d{2}\] (user|assistant): /.test(line))).toBe(true);
    expect(lines).toHaveLength(configured.report.memories.length);
    expect(configured.report.memories.every((m) => m.neighbours.length === 0)).toBe(true);
  });
});

describe('context at read time, budgets', () => {
  it('never goes over budget, and never shows a turn twice, for random budgets and neighbour counts', async () => {
    const memex = await open('flat');
    await earlier(memex);
    const topics = 'oyster harbour lighthouse dinner friday table garden river weather museum ticket train'.split(' ');
    const other = await memex.sessions.create('alice');
    await memex.messages.appendMany(
      'alice',
      other.id,
      Array.from({ length: 40 }, (_, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `${topics[i % topics.length]} ${topics[(i * 5) % topics.length]} ${'and more words '.repeat(i % 7)}turn ${i}.` })),
    );
    const now = await memex.sessions.create('alice');
    const history = await memex.messages.appendMany('alice', now.id, [{ role: 'user', content: 'What about the oyster bar by the harbour?' }]);
    await memex.flush();
    const tokenizer = tiktokenTokenizer('o200k_base');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 60, max: 3000 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), async (budget, before, after) => {
        const window = await memex.buildContext('alice', { sessionId: now.id, budget, reserve: 0, neighbours: { before, after } });
        expect(window.report.tokens).toBeLessThanOrEqual(budget);
        expect(requestTokens(tokenizer, window.messages)).toBe(window.report.tokens);
        const ids = window.report.memories.flatMap((m) => [`${m.sessionId}/${m.source.messageId ?? m.chunkId}`, ...m.neighbours.map((id) => `${m.sessionId}/${id}`)]);
        expect(new Set(ids).size).toBe(ids.length);
        for (const m of window.report.memories) expect(m.neighbours.length).toBeLessThanOrEqual(before + after);
        expect(history.length).toBe(1);
      }),
      { numRuns: 40 },
    );
  });
});
