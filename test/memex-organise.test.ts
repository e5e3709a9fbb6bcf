import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Memex, type SessionSummary } from '../src/index.js';
import { BACKENDS, backendConfig, type Backend } from './helpers/backends.js';
import { expectCode } from './helpers/errors.js';
import { tempDir } from './helpers/tmp.js';

// The hashed embedder: listing and tags are the point here, not the model.
const env = { MEMEX_MODEL: 'hashed' };

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

async function openMemex(backend: Backend): Promise<Memex> {
  const dataDir = join(await tempDir(), 'data');
  const memex = await Memex.open({ dataDir, env, config: await backendConfig(backend, dataDir), onWarning: () => undefined });
  opened.push(memex);
  return memex;
}

type Sort = 'activity' | 'created' | 'title' | 'messages';

/** The order each sort promises, computed here independently of the stores. */
function expected(sessions: SessionSummary[], sort: Sort, order: 'asc' | 'desc'): string[] {
  const fold = (title: string | null): string => (title ?? '').normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
  const key = (s: SessionSummary): string | number =>
    sort === 'activity' ? (s.lastMessageAt ?? s.createdAt) : sort === 'created' ? s.createdAt : sort === 'title' ? fold(s.title) : s.messageCount;
  const sorted = [...sessions].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    return x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return (order === 'asc' ? sorted : sorted.reverse()).map((s) => s.id);
}

describe.each(BACKENDS)('organising sessions on %s', (backend) => {
  it('sorts by activity, creation, title and message count both ways; cursors and offsets page through each order exactly', async () => {
    const memex = await openMemex(backend);
    await memex.users.create({ id: 'alice' });
    const titles = ['Zebra', 'apple', 'Émile', 'banana', null, 'apple', 'cherry'];
    for (const [i, title] of titles.entries()) {
      const session = await memex.sessions.create('alice', { ...(title ? { title } : {}), createdAt: new Date(Date.UTC(2024, 0, 1 + ((i * 3) % 7))).toISOString() });
      // Message counts with ties; some sessions get a later activity than their creation.
      const count = i % 3;
      for (let m = 0; m < count; m++) await memex.messages.append('alice', session.id, { role: 'assistant', content: `reply ${m}`, createdAt: new Date(Date.UTC(2024, 1, 1 + i)).toISOString() });
    }
    const all = (await memex.sessions.list('alice', { limit: 100 })).sessions;
    expect(all).toHaveLength(titles.length);
    for (const sort of ['activity', 'created', 'title', 'messages'] as const) {
      for (const order of ['asc', 'desc'] as const) {
        const want = expected(all, sort, order);
        const byCursor: string[] = [];
        let cursor: string | undefined;
        for (;;) {
          const page = await memex.sessions.list('alice', { sort, order, limit: 2, ...(cursor ? { cursor } : {}) });
          expect(page.total).toBe(titles.length);
          expect(page.offset).toBe(byCursor.length);
          byCursor.push(...page.sessions.map((s) => s.id));
          if (!page.nextCursor) break;
          cursor = page.nextCursor;
        }
        expect(byCursor, `${sort} ${order}`).toEqual(want);
        const byOffset: string[] = [];
        for (let offset = 0; offset < titles.length; offset += 3) byOffset.push(...(await memex.sessions.list('alice', { sort, order, limit: 3, offset })).sessions.map((s) => s.id));
        expect(byOffset, `${sort} ${order}`).toEqual(want);
      }
    }
    // Activity, newest first, is the default.
    expect(all.map((s) => s.id)).toEqual(expected(all, 'activity', 'desc'));
    const first = await memex.sessions.list('alice', { sort: 'title', limit: 2 });
    await expectCode(memex.sessions.list('alice', { sort: 'created', cursor: first.nextCursor as string }), 'MEMEX_INVALID_CURSOR');
    await expectCode(memex.sessions.list('alice', { sort: 'title', order: 'asc', cursor: first.nextCursor as string }), 'MEMEX_INVALID_CURSOR');
    await expectCode(memex.sessions.list('alice', { sort: 'size' as 'title' }), 'MEMEX_INVALID_INPUT');
  });

  it('filters by title, tags, persona, origin and activity range, and keeps cursors right under a filter', async () => {
    const memex = await openMemex(backend);
    await memex.users.create({ id: 'alice' });
    const agent = await memex.personas.create('alice', { name: 'Agent', instructions: 'Plan.' });
    const day = (d: number): string => new Date(Date.UTC(2024, 2, d)).toISOString();
    const a = await memex.sessions.create('alice', { title: 'Lisbon trip', tags: ['travel', 'work'], createdAt: day(1) });
    const b = await memex.sessions.create('alice', { title: 'Porto trip', tags: ['travel'], personaId: agent.id, createdAt: day(5) });
    const c = await memex.sessions.create('alice', { title: 'Taxes', tags: ['work'], createdAt: day(9) });
    const d = await memex.sessions.create('alice', { title: 'Lisbon food', createdAt: day(12) });
    const ids = async (options: Parameters<Memex['sessions']['list']>[1]): Promise<string[]> => (await memex.sessions.list('alice', options)).sessions.map((s) => s.id).sort();
    expect(await ids({ title: 'lisbon' })).toEqual([a.id, d.id].sort());
    expect(await ids({ tags: ['travel'] })).toEqual([a.id, b.id].sort());
    expect(await ids({ tags: ['travel', 'work'] })).toEqual([a.id]);
    expect(await ids({ personaId: agent.id })).toEqual([b.id]);
    expect(await ids({ after: day(5), before: day(12) })).toEqual([b.id, c.id].sort());
    expect(await ids({ after: '2024-03-05T01:00:00+01:00' })).toEqual([b.id, c.id, d.id].sort());
    expect(await ids({ origin: 'imported' })).toEqual([]);
    expect(await ids({ title: 'trip', tags: ['work'] })).toEqual([a.id]);
    const page = await memex.sessions.list('alice', { tags: ['travel'], sort: 'created', order: 'asc', limit: 1 });
    expect(page.sessions.map((s) => s.id)).toEqual([a.id]);
    const rest = await memex.sessions.list('alice', { tags: ['travel'], sort: 'created', order: 'asc', limit: 1, cursor: page.nextCursor as string });
    expect(rest).toMatchObject({ offset: 1, total: 2, nextCursor: null });
    expect(rest.sessions.map((s) => s.id)).toEqual([b.id]);
    await expectCode(memex.sessions.list('alice', { tags: ['a,b'] }), 'MEMEX_INVALID_INPUT');
  });

  it('adds and removes tags; counts them per user, leaving the trash out', async () => {
    const memex = await openMemex(backend);
    await memex.users.create({ id: 'alice' });
    await memex.users.create({ id: 'bob' });
    const a = await memex.sessions.create('alice', { tags: ['work'] });
    const b = await memex.sessions.create('alice');
    const c = await memex.sessions.create('alice');
    await memex.sessions.create('bob', { tags: ['work', 'secret'] });
    expect((await memex.sessions.tag('alice', b.id, ['work', 'travel', 'work'])).tags).toEqual(['travel', 'work']);
    expect((await memex.sessions.tag('alice', c.id, ['travel'])).tags).toEqual(['travel']);
    expect((await memex.sessions.tag('alice', a.id, [' ideas '])).tags).toEqual(['ideas', 'work']);
    expect(await memex.sessions.tags('alice')).toEqual([
      { tag: 'travel', sessions: 2 },
      { tag: 'work', sessions: 2 },
      { tag: 'ideas', sessions: 1 },
    ]);
    expect((await memex.sessions.untag('alice', b.id, ['work', 'never-there'])).tags).toEqual(['travel']);
    await memex.sessions.delete('alice', c.id);
    expect(await memex.sessions.tags('alice')).toEqual([
      { tag: 'ideas', sessions: 1 },
      { tag: 'travel', sessions: 1 },
      { tag: 'work', sessions: 1 },
    ]);
    expect((await memex.sessions.get('alice', a.id)).tags).toEqual(['ideas', 'work']);
    await expectCode(memex.sessions.tag('alice', a.id, ['']), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.sessions.tags('nobody'), 'MEMEX_USER_NOT_FOUND');
  });

  it('keeps the models used and the token usage from the messages as they arrive', async () => {
    const memex = await openMemex(backend);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    await memex.messages.append('alice', session.id, { role: 'user', content: 'hello' });
    await memex.messages.append('alice', session.id, { role: 'assistant', content: 'hi', metadata: { model: 'gpt-4o', usage: { promptTokens: 10, completionTokens: 3 } } });
    await memex.messages.appendMany('alice', session.id, [
      { role: 'assistant', content: 'more', metadata: { model: 'llama-3', usage: { promptTokens: 20, completionTokens: 5 } } },
      { role: 'assistant', content: 'again', metadata: { model: 'gpt-4o', usage: { promptTokens: 'x' } } },
    ]);
    const { metadata } = await memex.sessions.get('alice', session.id);
    expect(metadata).toMatchObject({ models: ['gpt-4o', 'llama-3'], usage: { promptTokens: 30, completionTokens: 8, replies: 2 } });
  });

  it('finds the sessions best matching a query, grouped from the chunk search', async () => {
    const memex = await openMemex(backend);
    await memex.users.create({ id: 'alice' });
    const lisbon = await memex.sessions.create('alice', { title: 'Lisbon' });
    const bread = await memex.sessions.create('alice', { title: 'Bread' });
    await memex.messages.appendMany('alice', lisbon.id, [
      { role: 'user', content: 'which tram goes to the castle in lisbon' },
      { role: 'assistant', content: 'tram 28 climbs to the castle' },
      { role: 'user', content: 'lisbon tram tickets cost how much' },
    ]);
    await memex.messages.appendMany('alice', bread.id, [{ role: 'user', content: 'my sourdough starter smells of acetone' }]);
    const report = await memex.sessions.search('alice', 'lisbon tram', { hits: 2 });
    expect(report.sessions[0]?.session.id).toBe(lisbon.id);
    expect(report.sessions[0]?.hits).toHaveLength(2);
    expect(report.sessions[0]?.hits.every((hit) => hit.sessionId === lisbon.id)).toBe(true);
    expect(report.sessions[0]?.score).toBe(report.sessions[0]?.hits[0]?.score);
    expect(new Set(report.sessions.map((m) => m.session.id)).size).toBe(report.sessions.length);
    expect((await memex.sessions.search('alice', 'sourdough', { limit: 1, mode: 'lexical' })).sessions.map((m) => m.session.id)).toEqual([bread.id]);
    await memex.sessions.delete('alice', bread.id);
    expect((await memex.sessions.search('alice', 'sourdough', { mode: 'lexical' })).sessions).toEqual([]);
    await expectCode(memex.sessions.search('alice', 'x', { limit: 0 }), 'MEMEX_INVALID_INPUT');
  });
});
