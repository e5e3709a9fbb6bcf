import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type SessionSummary } from '../src/index.js';
import { BACKENDS, backendConfig, type Backend } from './helpers/backends.js';
import { expectCode } from './helpers/errors.js';
import { tempDir } from './helpers/tmp.js';

// The hashed embedder: these tests are about where rows go, not how good the model is.
const env = { MEMEX_MODEL: 'hashed' };
const DAY = 86_400_000;

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

async function openMemex(dataDir: string, backend: Backend): Promise<Memex> {
  const memex = await Memex.open({ dataDir, env, config: await backendConfig(backend, dataDir), onWarning: () => undefined });
  opened.push(memex);
  return memex;
}

async function closeMemex(memex: Memex): Promise<void> {
  opened.splice(opened.indexOf(memex), 1);
  await memex.close();
}

/** A small deterministic PRNG, so a failing case can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const TOPICS = ['lisbon tram tickets', 'sourdough starter feeding', 'quantum error correction', 'marathon training plan', 'beagle puppy biscuit', 'tax return deadline'];

/** Everything a session holds, as the library reads it back. */
async function snapshot(memex: Memex, sessionId: string): Promise<unknown> {
  const session = await memex.sessions.get('alice', sessionId);
  const messages = (await memex.messages.list('alice', sessionId, { limit: 1000 })).messages;
  const files = await memex.files.list('alice', sessionId);
  const bytes: string[] = [];
  for (const file of files) {
    const chunks: Buffer[] = [];
    for await (const chunk of await memex.files.read('alice', sessionId, file.id)) chunks.push(Buffer.from(chunk));
    bytes.push(Buffer.concat(chunks).toString('base64'));
  }
  const vectors = await memex.vectors.read('alice', sessionId);
  const summary = await memex.summaries.get('alice', sessionId);
  return { session: { ...session, trashedAt: null }, messages, files, bytes, lines: vectors.lines, vectors: Array.from(vectors.vectors), summary };
}

async function searchedSessions(memex: Memex, query: string): Promise<Set<string>> {
  return new Set((await memex.search('alice', query, { k: 200 })).hits.map((hit) => hit.sessionId));
}

describe.each(BACKENDS)('trash on %s', (backend) => {
  it('trash then restore gives back exactly what was there; a trashed session never appears in search or context windows, also after reopening', async () => {
    const dataDir = join(await tempDir(), 'data');
    let memex = await openMemex(dataDir, backend);
    await memex.users.create({ id: 'alice' });
    const next = random(19);
    const sessions: SessionSummary[] = [];
    for (const [i, topic] of TOPICS.entries()) {
      const session = await memex.sessions.create('alice', { title: `About ${topic}`, tags: [`t${i % 2}`] });
      const turns = 2 + Math.floor(next() * 3);
      for (let turn = 0; turn < turns; turn++) {
        await memex.messages.append('alice', session.id, { role: turn % 2 === 0 ? 'user' : 'assistant', content: `${topic} note ${turn} ${topic.split(' ')[0]}${i}` });
      }
      if (i % 3 === 0) await memex.files.put('alice', session.id, { source: { bytes: Buffer.from(`file of ${topic}`) }, name: 'notes.txt' });
      sessions.push(session);
    }
    await memex.flush();
    // A summary to keep: a window small enough that older turns are summarized.
    await memex.buildContext('alice', { sessionId: (sessions[0] as SessionSummary).id, budget: 120, reserve: 0 });
    const before = new Map<string, unknown>();
    for (const session of sessions) before.set(session.id, await snapshot(memex, session.id));
    // The flat search index is built and saved with every session in it before anything is trashed.
    expect(await searchedSessions(memex, 'note')).toEqual(new Set(sessions.map((s) => s.id)));

    const trashed = sessions.filter(() => next() < 0.5).map((s) => s.id);
    if (trashed.length === 0) trashed.push((sessions[1] as SessionSummary).id);
    const kept = sessions.map((s) => s.id).filter((id) => !trashed.includes(id));
    for (const id of trashed) await memex.sessions.delete('alice', id);

    const check = async (m: Memex): Promise<void> => {
      const listed = (await m.sessions.list('alice', { limit: 100 })).sessions.map((s) => s.id);
      expect(listed.sort()).toEqual([...kept].sort());
      const found = await searchedSessions(m, 'note');
      for (const id of trashed) expect(found.has(id)).toBe(false);
      for (const id of trashed) {
        const topic = TOPICS[sessions.findIndex((s) => s.id === id)] as string;
        expect(await searchedSessions(m, topic)).not.toContain(id);
        expect((await m.sessions.search('alice', topic)).sessions.map((match) => match.session.id)).not.toContain(id);
      }
      const window = await m.buildContext('alice', { sessionId: kept[0] as string, budget: 4000, query: 'note', minScore: null });
      for (const memory of window.report.memories) expect(trashed).not.toContain(memory.sessionId);
      await expectCode(m.buildContext('alice', { sessionId: trashed[0] as string, budget: 4000 }), 'MEMEX_SESSION_TRASHED');
      await expectCode(m.messages.append('alice', trashed[0] as string, { role: 'user', content: 'more' }), 'MEMEX_SESSION_TRASHED');
      expect((await m.trash.list('alice')).sessions.map((s) => s.id).sort()).toEqual([...trashed].sort());
    };
    await check(memex);
    await closeMemex(memex);
    memex = await openMemex(dataDir, backend);
    await check(memex);

    for (const id of trashed) await memex.sessions.restore('alice', id);
    for (const session of sessions) expect(await snapshot(memex, session.id)).toEqual(before.get(session.id));
    expect(await searchedSessions(memex, 'note')).toEqual(new Set(sessions.map((s) => s.id)));
    await expectCode(memex.sessions.restore('alice', trashed[0] as string), 'MEMEX_NOT_IN_TRASH');
  });

  it('a trashed message leaves the session, search and windows, and comes back in its place with its rows and summary', async () => {
    const dataDir = join(await tempDir(), 'data');
    let memex = await openMemex(dataDir, backend);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    const contents = ['we talk about lisbon', 'the zebra crossing story', 'paris in spring', 'rome for easter'];
    const written = await memex.messages.appendMany('alice', session.id, contents.map((content, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content })));
    await memex.flush();
    await memex.buildContext('alice', { sessionId: session.id, budget: 60, reserve: 0 });
    const before = await snapshot(memex, session.id);
    const zebra = (written[1] as { id: string }).id;
    expect((await memex.search('alice', 'zebra crossing')).hits.map((h) => h.source)).toContainEqual(expect.objectContaining({ messageId: zebra }));

    await memex.messages.delete('alice', session.id, zebra);
    const left = (await memex.messages.list('alice', session.id)).messages.map((m) => m.id);
    expect(left).not.toContain(zebra);
    expect((await memex.sessions.get('alice', session.id)).messageCount).toBe(3);
    const trash = await memex.trash.list('alice');
    expect(trash.messages.map((item) => [item.sessionId, item.message.id])).toEqual([[session.id, zebra]]);
    await closeMemex(memex);
    memex = await openMemex(dataDir, backend);
    for (const hit of (await memex.search('alice', 'zebra crossing', { k: 50 })).hits) expect(hit.source).not.toMatchObject({ messageId: zebra });
    const window = await memex.buildContext('alice', { sessionId: session.id, budget: 4000 });
    expect(JSON.stringify(window.messages)).not.toContain('zebra');

    await memex.messages.restore('alice', session.id, zebra);
    expect(await snapshot(memex, session.id)).toMatchObject({ ...(before as object), session: expect.objectContaining({ messageCount: 4 }) });
    const { session: now, ...rest } = (await snapshot(memex, session.id)) as { session: SessionSummary };
    const { session: then, ...restBefore } = before as { session: SessionSummary };
    expect(rest).toEqual(restBefore);
    expect({ ...now, updatedAt: null }).toEqual({ ...then, updatedAt: null });
    expect((await memex.search('alice', 'zebra crossing')).hits.map((h) => h.source)).toContainEqual(expect.objectContaining({ messageId: zebra }));
    await expectCode(memex.messages.restore('alice', session.id, zebra), 'MEMEX_NOT_IN_TRASH');
  });

  it('a message trashed before it was embedded, then restored, is embedded and found (it stayed unsearchable)', async () => {
    const dataDir = await tempDir();
    // The real hashed embedder behind a gate the test opens: the embedding of the next messages
    // waits until the middle one is in the trash.
    let open: () => void = () => undefined;
    let gate: Promise<void> = Promise.resolve();
    const hashed = new HashedEmbedder();
    const gated = new Proxy(hashed, {
      get(target, key) {
        if (key === 'embed') return async (...args: Parameters<HashedEmbedder['embed']>) => gate.then(() => target.embed(...args));
        const value: unknown = Reflect.get(target, key);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const memex = await Memex.open({ dataDir, env, embedder: gated, config: await backendConfig(backend, dataDir), onWarning: () => undefined });
    opened.push(memex);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    await memex.messages.append('alice', session.id, { role: 'user', content: 'We talked about lisbon tram tickets.' });
    await memex.flush();
    gate = new Promise((resolve) => (open = resolve));
    const [zebra, after] = await memex.messages.appendMany('alice', session.id, [
      { role: 'user', content: 'The zebra crossing near the bakery is being repainted.' },
      { role: 'assistant', content: 'Then the sourdough starter feeding can wait an hour.' },
    ]);
    await memex.messages.delete('alice', session.id, zebra!.id);
    open();
    await memex.flush();
    await memex.messages.restore('alice', session.id, zebra!.id);
    await memex.flush();
    const rows = await memex.vectors.read('alice', session.id);
    const order = rows.lines.map((line) => (line.source.kind === 'message' ? line.source.messageId : line.source.fileId));
    // Its rows sit in the session's order (the message's place), and nothing was embedded twice.
    expect([...new Set(order)]).toEqual((await memex.messages.list('alice', session.id)).messages.map((m) => m.id));
    expect(order.filter((id) => id === after!.id)).toHaveLength(1);
    expect((await memex.search('alice', 'zebra crossing repainted')).hits.map((h) => h.source)).toContainEqual(expect.objectContaining({ messageId: zebra!.id }));
    // A later append is embedded once too.
    const [later] = await memex.messages.appendMany('alice', session.id, [{ role: 'user', content: 'A marathon training plan for spring.' }]);
    await memex.flush();
    const again = (await memex.vectors.read('alice', session.id)).lines.map((line) => (line.source.kind === 'message' ? line.source.messageId : ''));
    expect(again.filter((id) => id === later!.id)).toHaveLength(1);
    expect(again.filter((id) => id === zebra!.id)).toHaveLength(1);
  });

  it('purges what passed trash.retentionDays (fake clock), and at once with purge', async () => {
    const dataDir = join(await tempDir(), 'data');
    const memex = await openMemex(dataDir, backend);
    await memex.users.create({ id: 'alice' });
    await memex.users.create({ id: 'bob' });
    const old = await memex.sessions.create('alice', { title: 'old' });
    const other = await memex.sessions.create('bob', { title: 'bob' });
    const keeper = await memex.sessions.create('alice', { title: 'keeper' });
    const [m1] = await memex.messages.appendMany('alice', keeper.id, [{ role: 'user', content: 'one' }, { role: 'user', content: 'two' }]);
    await memex.sessions.delete('alice', old.id);
    await memex.sessions.delete('bob', other.id);
    await memex.messages.delete('alice', keeper.id, (m1 as { id: string }).id);
    const now = Date.now();

    expect(await memex.trash.purgeExpired(undefined, { now: new Date(now + 29 * DAY) })).toEqual({ sessions: [], messages: [] });
    expect((await memex.trash.list('alice', { now: new Date(now + 29 * DAY) })).sessions.map((s) => s.id)).toEqual([old.id]);
    const purged = await memex.trash.purgeExpired('alice', { now: new Date(now + 31 * DAY) });
    expect(purged).toEqual({ sessions: [old.id], messages: [{ sessionId: keeper.id, messageId: (m1 as { id: string }).id }] });
    await expectCode(memex.sessions.get('alice', old.id), 'MEMEX_SESSION_NOT_FOUND');
    // Only alice's: bob's stays until his turn.
    expect((await memex.sessions.get('bob', other.id)).trashedAt).not.toBeNull();
    expect((await memex.trash.purgeExpired(undefined, { now: (new Date(now + 31 * DAY)).toISOString() })).sessions).toEqual([other.id]);

    await memex.sessions.delete('alice', keeper.id, { purge: true });
    await expectCode(memex.sessions.get('alice', keeper.id), 'MEMEX_SESSION_NOT_FOUND');
    const again = await memex.sessions.create('alice');
    await memex.sessions.delete('alice', again.id);
    expect((await memex.trash.empty('alice')).sessions).toEqual([again.id]);
    expect(await memex.trash.list('alice')).toMatchObject({ sessions: [], messages: [], retentionDays: 30 });
  });
});
