import { cp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { FlatFileStore, migrateStore } from '../../src/store/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { snapshot as storeSnapshot } from './migrate-helpers.js';

const open: Memex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memex) => memex.close()));
});

async function openMemex(backend: Backend, dataDir: string): Promise<Memex> {
  const memex = await Memex.open({ dataDir, env: modelEnv, config: await backendConfig(backend, dataDir) });
  open.push(memex);
  await memex.users.ensure('alice');
  return memex;
}

async function reopen(backend: Backend, memex: Memex, dataDir: string): Promise<Memex> {
  open.splice(open.indexOf(memex), 1);
  await memex.close();
  return openMemex(backend, dataDir);
}

const TOPICS = ['the zeppelin hangar in Friedrichshafen', 'sourdough starter feeding', 'the marimba recital', 'a kayak trip on the Danube', 'tax forms for the bakery', 'the violin bow rehair'];

/** A session with turns, a stored file, vector rows and a summary: everything archiving must keep. */
async function fullSession(memex: Memex, title: string): Promise<{ id: string; fileBytes: Uint8Array }> {
  const session = await memex.sessions.create('alice', { title });
  const fileBytes = new Uint8Array(Buffer.from(`notes for ${title}\n`.repeat(50)));
  // Ingested, so the file also has derived artifacts (its text) and vector rows of its own.
  const { file } = await memex.files.ingest('alice', session.id, { bytes: fileBytes }, { name: 'notes.txt' });
  for (const [i, topic] of TOPICS.entries()) {
    await memex.messages.append('alice', session.id, {
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: `${title}: let us talk about ${topic}. It matters because of ${topic} and nothing else.`,
      ...(i === 0 ? { attachments: [{ fileId: file.id, name: 'notes.txt' }] } : {}),
    });
  }
  await memex.flush();
  // A small window summarizes the older turns, so the session has a summary to keep.
  await memex.buildContext('alice', { sessionId: session.id, budget: 200, reserve: 0 });
  return { id: session.id, fileBytes };
}

async function snapshot(memex: Memex, sessionId: string) {
  const files = await memex.files.list('alice', sessionId);
  const bytes: Record<string, string> = {};
  const artifacts: Record<string, string | null> = {};
  for (const file of files) {
    artifacts[file.id] = await memex.files.artifact('alice', sessionId, file.id, 'text.json').then((b) => b.toString('base64'), () => null);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await memex.files.read('alice', sessionId, file.id)) chunks.push(chunk);
    bytes[file.id] = Buffer.concat(chunks).toString('base64');
  }
  const vectors = await memex.vectors.read('alice', sessionId);
  return {
    session: await memex.sessions.get('alice', sessionId),
    messages: (await memex.messages.list('alice', sessionId, { limit: 1000 })).messages,
    files,
    bytes,
    artifacts,
    lines: vectors.lines,
    vectors: Array.from(vectors.vectors),
    summary: await memex.summaries.get('alice', sessionId),
  };
}

describe.each(BACKENDS)('archiving sessions on %s', (backend) => {
  it('archive then unarchive gives back exactly what was there (messages, file bytes, vectors, summary), also across a reopen', async () => {
    const dir = await tempDir();
    let memex = await openMemex(backend, dir);
    const { id } = await fullSession(memex, 'Zeppelin');
    const other = await fullSession(memex, 'Marimba');
    const before = await snapshot(memex, id);
    expect(before.summary).not.toBeNull();
    expect(before.lines.length).toBeGreaterThan(0);
    expect(before.lines.some((line) => line.source.kind === 'file')).toBe(true);
    expect(Object.values(before.artifacts).every((a) => a !== null)).toBe(true);

    const archived = await memex.sessions.archive('alice', id);
    expect(archived.archivedNow).toBe(true);
    expect(archived.session.archivedAt).not.toBeNull();
    expect(archived.archiveBytes).toBeGreaterThan(0);
    expect(archived.archiveBytes).toBeLessThan(archived.rawBytes);
    // Idempotent.
    expect((await memex.sessions.archive('alice', id)).archivedNow).toBe(false);

    memex = await reopen(backend, memex, dir);
    const listed = await memex.sessions.list('alice');
    expect(listed.sessions.map((s) => s.id).sort()).toEqual([id, other.id].sort());
    const shown = listed.sessions.find((s) => s.id === id);
    expect(shown?.archivedAt).toBe(archived.session.archivedAt);
    expect(shown?.messageCount).toBe(before.session.messageCount);
    expect((await memex.sessions.list('alice', { archived: 'only' })).sessions.map((s) => s.id)).toEqual([id]);
    expect((await memex.sessions.list('alice', { archived: 'exclude' })).sessions.map((s) => s.id)).toEqual([other.id]);

    const after = await memex.sessions.unarchive('alice', id);
    expect(after.archivedNow).toBe(true);
    expect(await snapshot(memex, id)).toEqual(before);
    memex = await reopen(backend, memex, dir);
    expect(await snapshot(memex, id)).toEqual(before);
  });

  it('an archived session stays listed but leaves search and context windows, and refuses appends with MEMEX_SESSION_ARCHIVED, also after a reopen', async () => {
    const dir = await tempDir();
    let memex = await openMemex(backend, dir);
    const { id } = await fullSession(memex, 'Zeppelin');
    const other = await fullSession(memex, 'Kayak');
    const found = async (): Promise<Set<string>> => new Set((await memex.search('alice', 'zeppelin hangar Friedrichshafen', { k: 50 })).hits.map((hit) => hit.sessionId));
    expect((await found()).has(id)).toBe(true);

    await memex.sessions.archive('alice', id);
    for (let round = 0; round < 2; round++) {
      expect((await found()).has(id)).toBe(false);
      expect((await found()).has(other.id)).toBe(true);
      await expectCode(memex.messages.append('alice', id, { role: 'user', content: 'one more' }), 'MEMEX_SESSION_ARCHIVED');
      await expectCode(memex.messages.list('alice', id), 'MEMEX_SESSION_ARCHIVED');
      await expectCode(memex.buildContext('alice', { sessionId: id, budget: 2000 }), 'MEMEX_SESSION_ARCHIVED');
      await expectCode(memex.files.list('alice', id), 'MEMEX_SESSION_ARCHIVED');
      expect((await memex.sessions.get('alice', id)).archivedAt).not.toBeNull();
      memex = await reopen(backend, memex, dir);
    }

    await memex.sessions.unarchive('alice', id);
    expect((await found()).has(id)).toBe(true);
    await memex.messages.append('alice', id, { role: 'user', content: 'back again' });
  });

  it('doctor and reindex pass over an archived session (regression: they read its messages and reported it as a problem)', async () => {
    const dir = await tempDir();
    const memex = await openMemex(backend, dir);
    const { id } = await fullSession(memex, 'Kayak');
    await fullSession(memex, 'Taxes');
    await memex.sessions.archive('alice', id);
    const report = await memex.doctor();
    expect(report.findings.filter((f) => f.severity === 'problem')).toEqual([]);
    expect(report.ok).toBe(true);
    const reindexed = await memex.reindex({ force: true });
    expect(reindexed.sessionsTotal).toBe(1);
    await memex.sessions.unarchive('alice', id);
    expect((await memex.messages.list('alice', id)).total).toBe(TOPICS.length);
  });

  it('an archived session goes to the trash and back archived, and is purged; unarchiving an unknown session is MEMEX_SESSION_NOT_FOUND', async () => {
    const dir = await tempDir();
    const memex = await openMemex(backend, dir);
    const { id } = await fullSession(memex, 'Violin');
    await memex.sessions.archive('alice', id);
    await memex.sessions.delete('alice', id);
    expect((await memex.sessions.list('alice')).sessions).toEqual([]);
    expect((await memex.trash.list('alice')).sessions.map((s) => s.id)).toEqual([id]);
    const back = await memex.sessions.restore('alice', id);
    expect(back.trashedAt).toBeNull();
    expect(back.archivedAt).not.toBeNull();
    expect((await memex.sessions.list('alice')).sessions.map((s) => s.id)).toEqual([id]);
    await memex.sessions.delete('alice', id, { purge: true });
    expect((await memex.sessions.list('alice', { trashed: 'include' })).sessions).toEqual([]);
    await expectCode(memex.sessions.unarchive('alice', id), 'MEMEX_SESSION_NOT_FOUND');
    await expectCode(memex.sessions.archive('alice', 's_nope'), 'MEMEX_SESSION_NOT_FOUND');
  });
});

describe('migrating a data dir with archived sessions', () => {
  it('carries them: the copy holds them archived with the same content (an ingested file, its rows, the summary), and unarchives to the same', async () => {
    const dir = await tempDir();
    const memex = await openMemex('flat', dir);
    const { id } = await fullSession(memex, 'Marimba');
    await memex.sessions.archive('alice', id);
    await memex.close();
    open.splice(0);
    const from = await FlatFileStore.open({ dataDir: dir, fsync: 'none', onWarning: () => undefined });
    const to = await FlatFileStore.open({ dataDir: join(await tempDir(), 'copy'), fsync: 'none', onWarning: () => undefined });
    try {
      const result = await migrateStore(from, to);
      expect(result.verification?.ok).toBe(true);
      expect(result.totals).toMatchObject({ sessions: 1, files: 1, summaries: 1 });
      expect(await storeSnapshot(to)).toEqual(await storeSnapshot(from));
      expect((await to.getSession('alice', id)).archivedAt).toBe((await from.getSession('alice', id)).archivedAt);
      await expectCode(to.listMessages('alice', id), 'MEMEX_SESSION_ARCHIVED');
      await from.unarchiveSession('alice', id);
      await to.unarchiveSession('alice', id);
      expect(await storeSnapshot(to)).toEqual(await storeSnapshot(from));
    } finally {
      await from.close();
      await to.close();
    }
  });
});

describe('archiving on flat files survives a crash at any step', () => {
  async function prepared(): Promise<{ dir: string; memex: Memex; id: string; sessionDir: string; archivedDir: string }> {
    const dir = await tempDir();
    const memex = await openMemex('flat', dir);
    const { id } = await fullSession(memex, 'Sourdough');
    return { dir, memex, id, sessionDir: join(dir, 'users', 'alice', 'sessions', id), archivedDir: join(dir, 'users', 'alice', 'archived') };
  }

  it('cut off before the folder moved (archive written, folder still there): the folder is the session and the leftovers go', async () => {
    const { dir, memex, id, sessionDir, archivedDir } = await prepared();
    const before = await snapshot(memex, id);
    const copy = join(await tempDir(), 'copy');
    await cp(sessionDir, copy, { recursive: true });
    await memex.sessions.archive('alice', id);
    await memex.close();
    open.splice(0);
    // What a crash right before the commit leaves: both the archive files and the folder.
    await cp(copy, sessionDir, { recursive: true });
    await writeFile(join(archivedDir, `.${id}.tar.gz.tmp`), 'half a tar');
    const again = await openMemex('flat', dir);
    expect(await snapshot(again, id)).toEqual(before);
    expect((await again.sessions.list('alice')).sessions.map((s) => [s.id, s.archivedAt])).toEqual([[id, null]]);
    expect(await readdir(archivedDir)).toEqual([]);
  });

  it('cut off inside the tar write: a temp file is all there is, and the session is live', async () => {
    const { dir, memex, id, archivedDir } = await prepared();
    const before = await snapshot(memex, id);
    await memex.close();
    open.splice(0);
    await mkdir(archivedDir, { recursive: true });
    await writeFile(join(archivedDir, `.${id}.tar.gz.tmp`), 'half a tar');
    const again = await openMemex('flat', dir);
    expect(await snapshot(again, id)).toEqual(before);
    await again.sessions.archive('alice', id);
    expect((await again.sessions.get('alice', id)).archivedAt).not.toBeNull();
  });

  it('unarchive cut off before its rename (a half-extracted hidden folder): still archived, and unarchiving again restores it', async () => {
    const { dir, memex, id, sessionDir } = await prepared();
    const before = await snapshot(memex, id);
    await memex.sessions.archive('alice', id);
    await memex.close();
    open.splice(0);
    const staging = join(dir, 'users', 'alice', 'sessions', `.unarchive-${id}`);
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, 'messages.jsonl'), '{"torn');
    let again = await openMemex('flat', dir);
    expect((await again.sessions.get('alice', id)).archivedAt).not.toBeNull();
    await again.sessions.unarchive('alice', id);
    again = await reopen('flat', again, dir);
    expect(await snapshot(again, id)).toEqual(before);
    expect((await readdir(join(sessionDir, '..'))).filter((name) => name.startsWith('.unarchive'))).toEqual([]);
  });

  it('unarchive cut off after its rename (archive files still there): the folder is the session and the archive files go', async () => {
    const { dir, memex, id, archivedDir } = await prepared();
    const before = await snapshot(memex, id);
    await memex.sessions.archive('alice', id);
    const kept = join(await tempDir(), 'archived');
    await cp(archivedDir, kept, { recursive: true });
    await memex.sessions.unarchive('alice', id);
    await memex.close();
    open.splice(0);
    await rm(archivedDir, { recursive: true, force: true });
    await cp(kept, archivedDir, { recursive: true });
    const again = await openMemex('flat', dir);
    expect(await snapshot(again, id)).toEqual(before);
    expect((await again.sessions.list('alice')).sessions.map((s) => [s.id, s.archivedAt])).toEqual([[id, null]]);
    expect(await readdir(archivedDir)).toEqual([]);
  });
});
