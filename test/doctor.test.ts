import { existsSync } from 'node:fs';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type MemexWarning } from '../src/index.js';
import { expectCode } from './helpers/errors.js';
import { modelEnv } from './helpers/model.js';
import { tempDir } from './helpers/tmp.js';

const PDF = fileURLToPath(new URL('../../shared/eval/pdfs/tracemonkey.pdf', import.meta.url));

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

/** The hashed embedder is a real (lexical) embedder: fast and deterministic, for repair mechanics. */
const hashed = new HashedEmbedder();

async function open(dataDir: string, warnings: MemexWarning[] = []): Promise<Memex> {
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: hashed, onWarning: (w) => warnings.push(w) });
  opened.push(memex);
  return memex;
}

async function close(memex: Memex): Promise<void> {
  opened.splice(opened.indexOf(memex), 1);
  await memex.close();
}

async function seed(dataDir: string, messages = 5): Promise<{ sessionId: string; dir: string }> {
  const memex = await open(dataDir);
  await memex.users.create({ id: 'alice', name: 'Alice' });
  const session = await memex.sessions.create('alice', { title: 'kept' });
  await memex.messages.appendMany(
    'alice',
    session.id,
    Array.from({ length: messages }, (_, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `turn ${i} about the lighthouse` })),
  );
  await close(memex);
  return { sessionId: session.id, dir: join(dataDir, 'users', 'alice', 'sessions', session.id) };
}

describe('one damaged record costs only itself', () => {
  it('a bad line in the middle of messages.jsonl: the session reads, exports and searches without it, and doctor quarantines it (regression: whole session unreadable)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { sessionId, dir } = await seed(dataDir);
    const lines = (await readFile(join(dir, 'messages.jsonl'), 'utf8')).split('\n');
    lines[2] = '{"this is": not json}';
    await writeFile(join(dir, 'messages.jsonl'), lines.join('\n'));

    const warnings: MemexWarning[] = [];
    const memex = await open(dataDir, warnings);
    const page = await memex.messages.list('alice', sessionId);
    expect(page.messages.map((m) => m.content)).toEqual(['turn 0 about the lighthouse', 'turn 1 about the lighthouse', 'turn 3 about the lighthouse', 'turn 4 about the lighthouse']);
    expect(warnings).toContainEqual(expect.objectContaining({ kind: 'corrupt-lines-skipped', lines: [3] }));
    let exported = '';
    for await (const piece of memex.sessions.export('alice', sessionId, 'md')) exported += piece;
    expect(exported).toContain('turn 4 about the lighthouse');
    await memex.messages.append('alice', sessionId, { role: 'user', content: 'after the damage' });
    expect((await memex.messages.list('alice', sessionId)).messages.at(-1)?.content).toBe('after the damage');
    const texts = (await memex.search('alice', 'lighthouse', { k: 10 })).hits.map((hit) => hit.text);
    expect(texts).toEqual(expect.arrayContaining(['turn 0 about the lighthouse', 'turn 4 about the lighthouse']));

    const report = await memex.doctor();
    expect(report.findings).toContainEqual(expect.objectContaining({ severity: 'repaired', where: `alice/${sessionId}`, what: expect.stringContaining('quarantine') }));
    expect(report.ok).toBe(true);
    const quarantined = (await readdir(dir)).find((name) => name.startsWith('messages.jsonl.quarantine-'));
    expect(await readFile(join(dir, quarantined ?? 'missing'), 'utf8')).toBe('{"this is": not json}\n');
    expect((await memex.sessions.get('alice', sessionId)).messageCount).toBe(5);
    expect((await memex.search('alice', 'lighthouse', { k: 10 })).hits.map((hit) => hit.text)).not.toContain('turn 2 about the lighthouse');
    expect((await memex.doctor()).findings.filter((f) => f.severity !== 'note')).toEqual([]);
  });

  it('a session in the trash is healthy: doctor rebuilds nothing and keeps its rows (regression: its rows were counted against the index, which leaves it out, so every run rebuilt the index)', async () => {
    const dataDir = await tempDir();
    const { sessionId } = await seed(dataDir);
    const memex = await open(dataDir);
    const other = await memex.sessions.create('alice');
    await memex.messages.append('alice', other.id, { role: 'user', content: 'a second session' });
    await memex.sessions.delete('alice', sessionId);
    const report = await memex.doctor();
    expect(report.findings.filter((f) => f.severity !== 'note')).toEqual([]);
    expect((await memex.vectors.status('alice', sessionId)).rows).toBeGreaterThan(0);
  });

  it('doctor finds and repairs a corrupt profile.json (regression: doctor said ok, the server answered 500)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { sessionId } = await seed(dataDir);
    await writeFile(join(dataDir, 'users', 'alice', 'profile.json'), '{"v":1,"id":"alice","na');
    const memex = await open(dataDir);
    expect((await memex.users.list()).map((u) => u.id)).toEqual([]);
    const report = await memex.doctor();
    expect(report.findings).toContainEqual(expect.objectContaining({ severity: 'repaired', where: 'alice', what: expect.stringContaining('profile.json') }));
    expect((await memex.users.get('alice')).id).toBe('alice');
    expect((await memex.sessions.get('alice', sessionId)).messageCount).toBe(5);
    expect((await readdir(join(dataDir, 'users', 'alice'))).some((name) => name.startsWith('profile.json.corrupt-'))).toBe(true);
  });

  it('doctor rebuilds a deleted or corrupt session_meta.json from the log (regression: 20 messages silently hidden)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { sessionId, dir } = await seed(dataDir, 20);
    await rm(join(dir, 'session_meta.json'));
    let memex = await open(dataDir);
    expect((await memex.sessions.list('alice')).sessions).toEqual([]);
    const report = await memex.doctor();
    expect(report.findings).toContainEqual(expect.objectContaining({ severity: 'repaired', where: `alice/${sessionId}`, what: expect.stringContaining('session_meta.json was missing') }));
    const [listed] = (await memex.sessions.list('alice')).sessions;
    expect(listed).toMatchObject({ id: sessionId, messageCount: 20, title: 'turn 0 about the lighthouse' });
    expect((await memex.search('alice', 'lighthouse', { k: 30 })).hits).toHaveLength(20);
    await close(memex);

    await writeFile(join(dir, 'session_meta.json'), '{"v":1, "id": trunc');
    memex = await open(dataDir);
    const again = await memex.doctor();
    expect(again.findings).toContainEqual(expect.objectContaining({ severity: 'repaired', what: expect.stringContaining('unreadable') }));
    expect((await memex.sessions.get('alice', sessionId)).messageCount).toBe(20);
    expect((await readdir(dir)).some((name) => name.startsWith('session_meta.json.corrupt-'))).toBe(true);
  });

  it.runIf(existsSync(PDF))('doctor embeds again an ingested file whose vector rows were lost (regression: unsearchable until reindex)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { sessionId, dir } = await seed(dataDir, 2);
    let memex = await open(dataDir);
    const ingested = await memex.ingestFile('alice', sessionId, { path: PDF });
    expect(ingested.chunks).toBeGreaterThan(0);
    await close(memex);
    await rm(join(dir, 'vector_index.jsonl'));
    await rm(join(dir, 'embeddings.npy'));
    memex = await open(dataDir);
    expect((await memex.search('alice', 'trace trees', { k: 5, sources: ['file'] })).hits).toEqual([]);
    const report = await memex.doctor();
    expect(report.findings).toContainEqual(expect.objectContaining({ severity: 'repaired', what: expect.stringContaining('ingested file') }));
    expect((await memex.search('alice', 'trace trees', { k: 5, sources: ['file'] })).hits.length).toBeGreaterThan(0);
  });

  it('doctor reports a torn last line repaired on open, and a user id that names no user is MEMEX_USER_NOT_FOUND (regression: repairs made while repairing went unreported)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { dir } = await seed(dataDir, 2);
    await writeFile(join(dir, 'messages.jsonl'), `${await readFile(join(dir, 'messages.jsonl'), 'utf8')}{"v":1,"id":"torn`);
    const memex = await open(dataDir);
    const report = await memex.doctor();
    expect(report.findings).toContainEqual(expect.objectContaining({ severity: 'repaired', what: expect.stringContaining('torn') }));
    await expectCode(memex.doctor({ userId: 'nobody' }), 'MEMEX_USER_NOT_FOUND');
  });

  it('a user whose profile.json cannot be read can still be deleted (regression: MEMEX_USER_CORRUPT after their keys were revoked)', async () => {
    const dataDir = join(await tempDir(), 'data');
    await seed(dataDir, 1);
    await writeFile(join(dataDir, 'users', 'alice', 'profile.json'), '{"v":1,"id":"alice","na');
    const memex = await open(dataDir);
    await memex.users.delete('alice');
    expect(existsSync(join(dataDir, 'users', 'alice'))).toBe(false);
  });
});
