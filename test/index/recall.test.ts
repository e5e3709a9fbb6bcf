import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type MemexOptions, type MemexWarning, type SearchReport, type Where } from '../../src/index.js';
import { expectCode } from '../helpers/errors.js';
import { hasSharedModel, modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

/** The hashed embedder is a real (lexical) embedder: fast and deterministic, for index mechanics. */
const hashed = new HashedEmbedder();

async function open(dataDir: string, options: Partial<MemexOptions> & { warnings?: MemexWarning[] } = {}): Promise<Memex> {
  const { warnings, ...rest } = options;
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: hashed, onWarning: (w) => warnings?.push(w), ...rest });
  opened.push(memex);
  return memex;
}

async function close(memex: Memex): Promise<void> {
  opened.splice(opened.indexOf(memex), 1);
  await memex.close();
}

const FILLER = [
  'We watched a documentary about octopuses last night.',
  'My manager moved the quarterly review to Thursday.',
  'The bakery on the corner sells the best sourdough.',
  'I keep forgetting to water the basil on the balcony.',
  'Traffic on the ring road was terrible this morning.',
  'Our team switched the build from webpack to vite.',
  'The library extended its opening hours for exams.',
  'I started learning to juggle with three tennis balls.',
];

/** A user with a few sessions of filler talk; returns the session ids. */
async function seed(memex: Memex, userId: string, sessions = 3, perSession = 8): Promise<string[]> {
  await memex.users.ensure(userId);
  const ids: string[] = [];
  for (let s = 0; s < sessions; s++) {
    const session = await memex.sessions.create(userId, { title: `chat ${s}` });
    ids.push(session.id);
    if (perSession === 0) continue;
    await memex.messages.appendMany(
      userId,
      session.id,
      Array.from({ length: perSession }, (_, i) => ({
        role: i % 2 === 0 ? ('user' as const) : ('assistant' as const),
        content: `${FILLER[(s * 3 + i) % FILLER.length] as string} (note ${s}.${i})`,
        createdAt: new Date(Date.UTC(2025, s, 1 + i)).toISOString(),
      })),
    );
  }
  await memex.flush();
  return ids;
}

function summary(report: SearchReport): { chunkId: string; score: number }[] {
  return report.hits.map((hit) => ({ chunkId: hit.chunkId, score: Number(hit.score.toFixed(6)) }));
}

describe('cross-session recall', () => {
  it.runIf(hasSharedModel)('returns a fact seeded in another session (real model, every mode)', async () => {
    const memex = await open(await tempDir(), { embedder: undefined as never });
    const [, second] = await seed(memex, 'alice');
    const fact = await memex.messages.append('alice', second as string, { role: 'user', content: 'My sister Priya is getting married in Lisbon on the 14th of May.' });
    const current = await memex.sessions.create('alice', { title: 'today' });
    await memex.flush();
    for (const mode of ['hybrid', 'vector', 'lexical'] as const) {
      const { hits } = await memex.search('alice', "When is Priya's wedding?", { k: 3, mode, excludeSessionIds: [current.id] });
      expect(hits.map((hit) => hit.source.kind === 'message' && hit.source.messageId), mode).toContain(fact.id);
    }
    const { hits } = await memex.search('alice', 'sister wedding in Portugal', { k: 1, mode: 'vector' });
    expect(hits[0]).toMatchObject({ sessionId: second, text: fact.content, span: { start: 0, end: fact.content.length }, part: { index: 0, count: 1 } });
    expect(hits[0]?.scores.vector).toBeGreaterThan(0.3);
  });

  it('a first search that saved an empty index does not break the user (regression: resizeIndex failed)', async () => {
    const dir = join(await tempDir(), 'data');
    let memex = await open(dir);
    await memex.users.create({ id: 'new' });
    expect((await memex.search('new', 'foo')).hits).toEqual([]);
    await close(memex);
    memex = await open(dir);
    const session = await memex.sessions.create('new');
    await memex.messages.append('new', session.id, { role: 'user', content: 'hello there' });
    expect((await memex.search('new', 'hello')).hits.map((hit) => hit.text)).toEqual(['hello there']);
    expect((await memex.doctor()).findings.filter((finding) => finding.severity === 'problem')).toEqual([]);
  });

  it('a corrupt session_meta.json costs only its own session in search and context (regression: the whole user failed)', async () => {
    const dir = join(await tempDir(), 'data');
    let memex = await open(dir);
    await memex.users.create({ id: 'alice' });
    const good = await memex.sessions.create('alice');
    await memex.messages.append('alice', good.id, { role: 'user', content: 'the heron nests by the river' });
    const bad = await memex.sessions.create('alice');
    await memex.messages.append('alice', bad.id, { role: 'user', content: 'the heron flew over the bridge' });
    expect((await memex.search('alice', 'heron')).hits).toHaveLength(2);
    await close(memex);
    await writeFile(join(dir, 'users', 'alice', 'sessions', bad.id, 'session_meta.json'), '{"v":1, "id": trunc');
    const warnings: MemexWarning[] = [];
    memex = await open(dir, { warnings });
    expect((await memex.search('alice', 'heron')).hits.map((hit) => hit.sessionId)).toEqual([good.id]);
    const window = await memex.buildContext('alice', { sessionId: good.id, budget: 2048, query: 'heron' });
    expect(window.messages.length).toBeGreaterThan(0);
    // Broken while the index is in memory, then another session grows: the sync skips the broken one.
    await rm(join(dir, 'users', 'alice', 'sessions', bad.id, 'session_meta.json'));
    await memex.messages.append('alice', good.id, { role: 'user', content: 'a heron again' });
    expect((await memex.search('alice', 'heron')).hits.map((hit) => hit.sessionId)).toEqual([good.id, good.id]);
    expect(warnings.some((w) => w.kind === 'unreadable')).toBe(true);
  });

  it('carries text, provenance and each component score', async () => {
    const memex = await open(await tempDir());
    const [first] = await seed(memex, 'alice');
    const { hits, mode } = await memex.search('alice', 'sourdough bakery', { k: 5 });
    expect(mode).toBe('hybrid');
    const top = hits[0];
    expect(top?.text).toContain('sourdough');
    expect(top?.source).toMatchObject({ kind: 'message', role: expect.any(String) as string, createdAt: expect.any(String) as string });
    expect(top?.scores.vectorRank).toBeGreaterThan(0);
    expect(top?.scores.lexicalRank).toBe(1);
    expect(top?.scores.lexical).toBeGreaterThan(0);
    expect(top?.scores.recency).toBe(1);
    const message = await memex.messages.get('alice', top?.sessionId as string, top?.source.kind === 'message' ? top.source.messageId : '');
    expect(message.content.slice(top?.span.start, top?.span.end)).toBe(top?.text);
    expect(first).toBeDefined();
  });

  it('holds every filter, alone and combined', async () => {
    const memex = await open(await tempDir());
    const ids = await seed(memex, 'alice', 4, 10);
    // A conversation imported from a ChatGPT export (conversations.json, one message).
    const exported = join(await tempDir(), 'conversations.json');
    const message = { id: 'm1', author: { role: 'user' }, create_time: Date.parse('2024-06-01T00:00:00.000Z') / 1000, content: { content_type: 'text', parts: ['The bakery story, imported from ChatGPT.'] } };
    await writeFile(exported, JSON.stringify([{ id: 'c1', title: 'Bakery', current_node: 'n1', mapping: { root: { id: 'root', parent: null, children: ['n1'], message: null }, n1: { id: 'n1', parent: 'root', children: [], message } } }]));
    const report = await memex.imports.run('alice', exported);
    const imported = { id: report.record.sessions[0] as string };
    const query = 'bakery sourdough documentary basil';
    const all = await memex.search('alice', query, { k: 100, mode: 'vector' });
    expect(all.hits).toHaveLength(41);
    const check = async (options: Parameters<Memex['search']>[2], ok: (hit: SearchReport['hits'][number]) => boolean): Promise<void> => {
      const expected = all.hits.filter(ok).length;
      const { hits } = await memex.search('alice', query, { ...options, k: 100 });
      expect(hits.every(ok), JSON.stringify(options)).toBe(true);
      if (options?.mode !== 'lexical') expect(hits, JSON.stringify(options)).toHaveLength(expected);
    };
    const [a, b] = ids as [string, string];
    await check({ mode: 'vector', sessionIds: [a, b] }, (hit) => hit.sessionId === a || hit.sessionId === b);
    await check({ mode: 'hybrid', excludeSessionIds: [a] }, (hit) => hit.sessionId !== a);
    await check({ mode: 'vector', roles: ['assistant'] }, (hit) => hit.source.kind === 'message' && hit.source.role === 'assistant');
    await check({ mode: 'vector', origin: 'imported' }, (hit) => hit.sessionId === imported.id);
    await check({ mode: 'vector', origin: 'native' }, (hit) => hit.sessionId !== imported.id);
    await check({ mode: 'vector', sources: ['file'] }, () => false);
    const after = '2025-02-01T00:00:00.000Z';
    const before = '2025-03-05T00:00:00.000Z';
    const inRange = (hit: SearchReport['hits'][number]): boolean => hit.source.kind === 'message' && hit.source.createdAt >= after && hit.source.createdAt < before;
    await check({ mode: 'vector', after, before }, inRange);
    await check({ mode: 'hybrid', after, before, roles: ['user'], excludeSessionIds: [b] }, (hit) => inRange(hit) && hit.source.kind === 'message' && hit.source.role === 'user' && hit.sessionId !== b);
    await check({ mode: 'lexical', sessionIds: [b] }, (hit) => hit.sessionId === b);
    await expectCode(memex.search('alice', query, { sessionIds: ['../bob'] }), 'MEMEX_INVALID_ID');
    await expectCode(memex.search('alice', query, { k: 0 }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.search('alice', '   '), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.search('nobody', query), 'MEMEX_USER_NOT_FOUND');
  });

  it('never returns fewer than k when k chunks match, on the exact path and on the filtered graph walk', async () => {
    for (const exactBelow of [2000, 0]) {
      const memex = await open(await tempDir(), { config: { index: { exactBelow, efSearch: 10 } } });
      const [big, small] = await seed(memex, 'alice', 2, 0);
      await memex.messages.appendMany('alice', big as string, Array.from({ length: 300 }, (_, i) => ({ role: 'user' as const, content: `bakery sourdough loaf number ${i}` })));
      await memex.messages.appendMany('alice', small as string, Array.from({ length: 12 }, (_, i) => ({ role: 'assistant' as const, content: `unrelated octopus fact ${i}` })));
      await memex.flush();
      for (const mode of ['vector', 'hybrid'] as const) {
        const bySession = await memex.search('alice', 'bakery sourdough', { k: 10, mode, sessionIds: [small as string] });
        expect(bySession.hits, `${mode} exactBelow=${exactBelow}`).toHaveLength(10);
        expect(bySession.hits.every((hit) => hit.sessionId === small)).toBe(true);
        const byRole = await memex.search('alice', 'bakery sourdough', { k: 12, mode, roles: ['assistant'] });
        expect(byRole.hits).toHaveLength(12);
        if (exactBelow > 0) expect(byRole.vectorPath).toBe('exact');
        expect(await memex.search('alice', 'bakery sourdough', { k: 20, mode, sessionIds: [small as string] }).then((r) => r.hits.length)).toBe(12);
      }
      await close(memex);
    }
  });

  it('keeps users apart: identical content, only your own chunks', async () => {
    const memex = await open(await tempDir());
    const alice = await seed(memex, 'alice');
    const bob = await seed(memex, 'bob');
    for (const [user, own] of [['alice', alice], ['bob', bob]] as const) {
      const { hits } = await memex.search(user, 'bakery sourdough basil octopus', { k: 100, mode: 'hybrid' });
      expect(hits).toHaveLength(24);
      expect(hits.every((hit) => own.includes(hit.sessionId))).toBe(true);
    }
    // Another user's session id as a filter matches nothing of theirs.
    expect((await memex.search('alice', 'bakery', { sessionIds: [bob[0] as string] })).hits).toEqual([]);
  });

  it('takes in appended messages, and drops deleted messages and sessions', async () => {
    const memex = await open(await tempDir());
    const [a, b] = (await seed(memex, 'alice')) as [string, string];
    await memex.search('alice', 'warm up the index', { k: 1 });
    const added = await memex.messages.append('alice', a, { role: 'user', content: 'The zeppelin museum opens in Friedrichshafen.' });
    const found = await memex.search('alice', 'zeppelin museum', { k: 1 });
    expect(found.hits[0]?.chunkId).toBe(`${added.id}:0`);
    await memex.messages.delete('alice', a, added.id);
    expect((await memex.search('alice', 'zeppelin museum', { k: 50 })).hits.some((hit) => hit.chunkId.startsWith(added.id))).toBe(false);
    await memex.sessions.delete('alice', b);
    const rest = await memex.search('alice', 'bakery sourdough basil', { k: 100 });
    expect(rest.hits.some((hit) => hit.sessionId === b)).toBe(false);
    expect(rest.hits).toHaveLength(16);
  });

  it('gives identical results after the index folder is deleted and rebuilt', async () => {
    const dataDir = await tempDir();
    const warnings: MemexWarning[] = [];
    let memex = await open(dataDir, { warnings });
    await seed(memex, 'alice', 4);
    const queries = ['sourdough bakery', 'juggling tennis balls', 'quarterly review'];
    const before = await Promise.all(queries.map((q) => memex.search('alice', q, { k: 8 }).then(summary)));
    await close(memex);
    const indexDir = join(dataDir, 'users', 'alice', 'index');
    expect((await readdir(indexDir)).sort()).toEqual(expect.arrayContaining(['manifest.json']));
    await rm(indexDir, { recursive: true });
    memex = await open(dataDir, { warnings });
    const after = await Promise.all(queries.map((q) => memex.search('alice', q, { k: 8 }).then(summary)));
    expect(after).toEqual(before);
    expect(warnings).toEqual([]);
  });

  it('rebuilds a corrupt or stale index instead of failing, with a warning', async () => {
    const dataDir = await tempDir();
    let memex = await open(dataDir);
    await seed(memex, 'alice');
    const expected = summary(await memex.search('alice', 'sourdough basil', { k: 8 }));
    await close(memex);
    const indexDir = join(dataDir, 'users', 'alice', 'index');
    const manifestPath = join(indexDir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { model: string; files: { hnsw: { name: string }; meta: { name: string } } };
    const damages: [string, () => Promise<void>, string][] = [
      ['hnsw file', () => writeFile(join(indexDir, manifest.files.hnsw.name), Buffer.alloc(64, 7)), 'corrupt'],
      ['meta file', () => writeFile(join(indexDir, manifest.files.meta.name), 'garbage'), 'corrupt'],
      ['manifest', () => writeFile(manifestPath, '{"v": 1, "kind": "memex-ind'), 'corrupt'],
      ['model', async () => writeFile(manifestPath, JSON.stringify({ ...(JSON.parse(await readFile(manifestPath, 'utf8')) as object), model: 'someone/else' })), 'stale-model'],
    ];
    for (const [what, damage, reason] of damages) {
      await damage();
      const warnings: MemexWarning[] = [];
      memex = await open(dataDir, { warnings });
      expect(summary(await memex.search('alice', 'sourdough basil', { k: 8 })), what).toEqual(expected);
      expect(warnings, what).toEqual([expect.objectContaining({ kind: 'index-rebuilt', userId: 'alice', reason, rows: 24 })]);
      await close(memex);
    }
  });

  it('rebuilds when the index settings change (BM25 stemming, HNSW M), and finds the same', async () => {
    const dataDir = await tempDir();
    let memex = await open(dataDir);
    await seed(memex, 'alice');
    const { hits } = await memex.search('alice', 'juggling', { k: 3, mode: 'lexical' });
    // "juggling" finds "juggle" only through the stemmer.
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((hit) => hit.text.includes('juggle'))).toBe(true);
    const before = hits.map((hit) => hit.chunkId);
    await close(memex);
    for (const config of [{ search: { stemming: false } }, { index: { m: 8 } }]) {
      const warnings: MemexWarning[] = [];
      memex = await open(dataDir, { warnings, config });
      const after = (await memex.search('alice', 'juggling', { k: 3, mode: 'lexical' })).hits.map((hit) => hit.chunkId);
      expect(after).toEqual('search' in config ? [] : before);
      expect(warnings).toEqual([expect.objectContaining({ kind: 'index-rebuilt', reason: 'stale-params' })]);
      await close(memex);
    }
  });

  it('saves on close and loads without rebuilding; compacts once removed rows pass the threshold', async () => {
    const dataDir = await tempDir();
    const warnings: MemexWarning[] = [];
    let memex = await open(dataDir, { warnings, config: { index: { compactAt: 0.3 } } });
    await memex.users.ensure('alice');
    const keep = await memex.sessions.create('alice');
    const drop = await memex.sessions.create('alice');
    await memex.messages.appendMany('alice', keep.id, Array.from({ length: 700 }, (_, i) => ({ role: 'user' as const, content: `kept note ${i}` })));
    await memex.messages.appendMany('alice', drop.id, Array.from({ length: 500 }, (_, i) => ({ role: 'user' as const, content: `dropped note ${i}` })));
    expect(await memex.index.prepare('alice')).toMatchObject({ rows: 1200, removed: 0, sessions: 2 });
    await memex.sessions.delete('alice', drop.id);
    // 500 of 1200 removed passes 0.3: the next sync rebuilds from the session files.
    expect(await memex.index.prepare('alice')).toMatchObject({ rows: 700, removed: 0, sessions: 1 });
    await close(memex);
    memex = await open(dataDir, { warnings, config: { index: { compactAt: 0.3 } } });
    expect(await memex.index.prepare('alice')).toMatchObject({ rows: 700, removed: 0 });
    expect(warnings).toEqual([]);
  });
});

describe('relevance floor (minScore)', () => {
  it('drops what only the vector search found below the cosine floor; chunks sharing a word with the query stay', async () => {
    const memex = await open(await tempDir());
    await seed(memex, 'alice', 3, 8);
    const query = 'sourdough from the bakery';
    const all = await memex.search('alice', query, { k: 100, mode: 'vector' });
    const floor = ((all.hits[0]?.scores.vector ?? 0) + (all.hits[all.hits.length - 1]?.scores.vector ?? 0)) / 2;
    const vector = await memex.search('alice', query, { k: 100, mode: 'vector', minScore: floor });
    expect(vector.hits.map((h) => h.chunkId)).toEqual(all.hits.filter((h) => (h.scores.vector ?? -1) >= floor).map((h) => h.chunkId));
    expect(vector.hits.length).toBeGreaterThan(0);
    expect(vector.hits.length).toBeLessThan(all.hits.length);
    const hybrid = await memex.search('alice', query, { k: 100, mode: 'hybrid', minScore: 0.999 });
    expect(hybrid.hits.length).toBeGreaterThan(0);
    expect(hybrid.hits.every((h) => h.scores.lexical !== null)).toBe(true);
    const lexical = await memex.search('alice', query, { k: 100, mode: 'lexical' });
    expect((await memex.search('alice', query, { k: 100, mode: 'lexical', minScore: 0.999 })).hits).toEqual(lexical.hits);
    await expectCode(memex.search('alice', query, { minScore: 1.5 }), 'MEMEX_INVALID_INPUT');
  });
});

describe('metadata filters (where)', () => {
  const PROJECTS = ['apollo', 'gemini', 'mercury'];

  /** 30 messages over two sessions; message i has project PROJECTS[i % 3], priority i % 5, tags, and every 4th has no metadata. */
  async function seedMetadata(memex: Memex): Promise<{ id: string; metadata: Record<string, unknown> }[]> {
    await memex.users.ensure('alice');
    const sessions = [await memex.sessions.create('alice'), await memex.sessions.create('alice')];
    const written: { id: string; metadata: Record<string, unknown> }[] = [];
    for (let i = 0; i < 30; i++) {
      const metadata: Record<string, unknown> =
        i % 4 === 3 ? {} : { project: PROJECTS[i % 3], priority: i % 5, tags: i % 2 === 0 ? ['even', 'x'] : ['odd'], due: `2025-0${1 + (i % 9)}-01`, ...(i % 6 === 0 ? { reviewed: true } : {}) };
      const message = await memex.messages.append('alice', (sessions[i % 2] as { id: string }).id, { role: 'user', content: `bakery sourdough planning note ${i}`, metadata });
      written.push({ id: message.id, metadata });
    }
    await memex.flush();
    return written;
  }

  const cases: [string, Where, (m: Record<string, unknown>) => boolean][] = [
    ['equality', { project: 'apollo' }, (m) => m.project === 'apollo'],
    ['equality inside an array', { tags: 'even' }, (m) => Array.isArray(m.tags) && m.tags.includes('even')],
    ['$in', { project: { $in: ['apollo', 'mercury'] } }, (m) => m.project === 'apollo' || m.project === 'mercury'],
    ['$nin (missing keys pass)', { project: { $nin: ['apollo'] } }, (m) => m.project !== 'apollo'],
    ['range', { priority: { $gte: 1, $lt: 3 } }, (m) => typeof m.priority === 'number' && m.priority >= 1 && m.priority < 3],
    ['string range (ISO dates)', { due: { $gt: '2025-05-01' } }, (m) => typeof m.due === 'string' && m.due > '2025-05-01'],
    ['$ne (missing keys pass)', { project: { $ne: 'gemini' } }, (m) => m.project !== 'gemini'],
    ['$exists', { reviewed: { $exists: true } }, (m) => 'reviewed' in m],
    ['$exists false', { project: { $exists: false } }, (m) => !('project' in m)],
    ['$or', { $or: [{ project: 'gemini' }, { priority: { $gt: 3 } }] }, (m) => m.project === 'gemini' || (typeof m.priority === 'number' && m.priority > 3)],
    [
      'nested $and/$or with a field',
      { tags: 'even', $and: [{ $or: [{ project: 'apollo' }, { project: 'mercury' }] }, { priority: { $lte: 2 } }] },
      (m) => Array.isArray(m.tags) && m.tags.includes('even') && (m.project === 'apollo' || m.project === 'mercury') && typeof m.priority === 'number' && m.priority <= 2,
    ],
    ['no match', { project: 'vostok' }, () => false],
  ];

  it('holds equality, $in, ranges, $ne, $exists and $and/$or, in every mode, and keeps them across a reload', async () => {
    const dataDir = await tempDir();
    let memex = await open(dataDir);
    const written = await seedMetadata(memex);
    const check = async (round: string): Promise<void> => {
      for (const [name, where, ok] of cases) {
        const expected = written.filter((m) => ok(m.metadata)).map((m) => m.id).sort();
        for (const mode of ['vector', 'hybrid', 'lexical'] as const) {
          const { hits } = await memex.search('alice', 'bakery sourdough planning', { k: 100, mode, where });
          const got = hits.map((hit) => hit.source.messageId ?? '').sort();
          expect(got, `${round} ${name} ${mode}`).toEqual(expected);
        }
      }
    };
    await check('fresh');
    await close(memex);
    memex = await open(dataDir);
    await check('reloaded');
  });

  it('never returns fewer than k when k chunks match a where filter, on the exact path and on the filtered graph walk', async () => {
    for (const exactBelow of [2000, 0]) {
      const memex = await open(await tempDir(), { config: { index: { exactBelow, efSearch: 10 } } });
      await memex.users.ensure('alice');
      const session = await memex.sessions.create('alice');
      await memex.messages.appendMany('alice', session.id, Array.from({ length: 300 }, (_, i) => ({ role: 'user' as const, content: `bakery sourdough loaf number ${i}`, metadata: { project: 'big' } })));
      await memex.messages.appendMany('alice', session.id, Array.from({ length: 12 }, (_, i) => ({ role: 'user' as const, content: `unrelated octopus fact ${i}`, metadata: { project: 'small', n: i } })));
      await memex.flush();
      for (const mode of ['vector', 'hybrid'] as const) {
        const small = await memex.search('alice', 'bakery sourdough', { k: 10, mode, where: { project: 'small' } });
        expect(small.hits, `${mode} exactBelow=${exactBelow}`).toHaveLength(10);
        expect(small.matching).toBe(12);
        if (exactBelow > 0) expect(small.vectorPath).toBe('exact');
        const some = await memex.search('alice', 'bakery sourdough', { k: 20, mode, where: { $or: [{ project: 'small', n: { $gte: 6 } }, { project: 'nobody' }] } });
        expect(some.hits.map((hit) => hit.text).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `unrelated octopus fact ${i + 6}`).sort());
      }
      await close(memex);
    }
  });

  it('rebuilds an index saved before where filters existed (no metadata columns), and filters after it', async () => {
    const dataDir = await tempDir();
    let memex = await open(dataDir);
    const written = await seedMetadata(memex);
    await memex.index.prepare('alice');
    await close(memex);
    // Make the saved index look like one of the earlier format: the same files without the metadata columns.
    const indexDir = join(dataDir, 'users', 'alice', 'index');
    const manifestPath = join(indexDir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as { files: { meta: { name: string; bytes: number; sha256: string } } };
    const packr = new Packr({ moreTypes: true });
    const meta = packr.unpack(await readFile(join(indexDir, manifest.files.meta.name))) as Record<string, unknown>;
    delete meta.metaRef;
    delete meta.metadata;
    const bytes = packr.pack(meta);
    await writeFile(join(indexDir, manifest.files.meta.name), bytes);
    manifest.files.meta = { ...manifest.files.meta, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
    await writeFile(manifestPath, JSON.stringify(manifest));
    const warnings: MemexWarning[] = [];
    memex = await open(dataDir, { warnings });
    const { hits } = await memex.search('alice', 'bakery sourdough planning', { k: 100, mode: 'vector', where: { project: 'apollo' } });
    expect(hits.map((hit) => hit.source.messageId).sort()).toEqual(written.filter((m) => m.metadata.project === 'apollo').map((m) => m.id).sort());
    expect(warnings).toEqual([expect.objectContaining({ kind: 'index-rebuilt', reason: 'stale-params' })]);
  });

  it('refuses bad filters with MEMEX_INVALID_INPUT: unknown operators, deep nesting, too many conditions, wrong operand types', async () => {
    const memex = await open(await tempDir());
    await seed(memex, 'alice', 1, 2);
    let deep: Record<string, unknown> = { a: 1 };
    for (let i = 0; i < 8; i++) deep = { $and: [deep] };
    const bad: unknown[] = [
      { project: { $regex: 'a.*' } },
      { $where: 'this.a' },
      { project: { $in: 'apollo' } },
      { project: { $in: Array.from({ length: 1001 }, (_, i) => i) } },
      { priority: { $gt: { $lt: 2 } } },
      { priority: { $gt: Number.NaN } },
      { project: ['a', 'b'] },
      { project: {} },
      { $or: [] },
      { $or: [1] },
      { reviewed: { $exists: 'yes' } },
      Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i])),
      { ['x'.repeat(201)]: 1 },
      deep,
      [],
      'project=apollo',
    ];
    for (const where of bad) {
      await expectCode(memex.search('alice', 'bakery', { where: where as never }), 'MEMEX_INVALID_INPUT');
    }
  });
});
