import { spawn, spawnSync } from 'node:child_process';
import { appendFile, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FsyncPolicy } from '../../src/core/index.js';
import { FlatFileStore, type StoreWarning } from '../../src/store/index.js';
import { LISTING_WRITE_DELAY_MS } from '../../src/store/flat-file/listing.js';
import { expectCode } from '../helpers/errors.js';
import { tsxEval } from '../helpers/child.js';
import { tempDir } from '../helpers/tmp.js';
import { describeStoreConformance } from './conformance.js';
import { filesOf } from './migrate-helpers.js';

const open: FlatFileStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

async function openStore(dataDir: string, options: { fsync?: FsyncPolicy; warnings?: StoreWarning[]; maxFileBytes?: number; lockTimeoutMs?: number } = {}): Promise<FlatFileStore> {
  const store = await FlatFileStore.open({
    dataDir,
    fsync: options.fsync ?? 'group',
    lockTimeoutMs: options.lockTimeoutMs ?? 1000,
    ...(options.maxFileBytes ? { limits: { maxFileBytes: options.maxFileBytes } } : {}),
    onWarning: (warning) => options.warnings?.push(warning),
  });
  open.push(store);
  return store;
}

for (const fsync of ['group', 'always', 'none'] as const) {
  describeStoreConformance(`flat files, fsync ${fsync}`, async () => {
    const dataDir = join(await tempDir(), 'data');
    let store = await openStore(dataDir, { fsync });
    return {
      get store() {
        return store;
      },
      async reopen() {
        await store.close();
        store = await openStore(dataDir, { fsync });
        return store;
      },
      async fingerprint() {
        // The trash is emptied on open and holds nothing a reader sees; the listing is a cache, written soon after a change.
        return Object.fromEntries(Object.entries(await filesOf(dataDir)).filter(([path]) => !path.startsWith('.trash') && !path.endsWith('session_index.json')));
      },
    };
  });
}

async function seeded(dataDir: string, count = 3) {
  const store = await openStore(dataDir);
  await store.createUser({ id: 'alice' });
  const session = await store.createSession('alice');
  const messages = await store.appendMessages('alice', session.id, Array.from({ length: count }, (_, i) => ({ role: 'user' as const, content: `message ${i}` })));
  return { store, session, messages, log: join(dataDir, 'users', 'alice', 'sessions', session.id, 'messages.jsonl') };
}

describe('flat-file layout', () => {
  it('writes the files DESIGN.md describes', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session } = await seeded(dataDir);
    await store.createPersona('alice', { id: 'tutor', name: 'Tutor', instructions: 'x' });
    const manifest = JSON.parse(await readFile(join(dataDir, 'memex.json'), 'utf8'));
    expect(manifest).toMatchObject({ v: 1, kind: 'memex-data' });
    const user = join(dataDir, 'users', 'alice');
    expect(JSON.parse(await readFile(join(user, 'profile.json'), 'utf8'))).toMatchObject({ v: 1, id: 'alice' });
    expect(JSON.parse(await readFile(join(user, 'personas', 'tutor.json'), 'utf8'))).toMatchObject({ v: 1, id: 'tutor' });
    const meta = JSON.parse(await readFile(join(user, 'sessions', session.id, 'session_meta.json'), 'utf8'));
    expect(meta).toMatchObject({ v: 1, id: session.id, messageCount: 3 });
    const lines = (await readFile(join(user, 'sessions', session.id, 'messages.jsonl'), 'utf8')).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe('');
    expect(JSON.parse(lines[0]!)).toMatchObject({ v: 1, role: 'user', content: 'message 0' });
    await store.close(); // the listing is written soon after a change, and at the latest on close
    const index = JSON.parse(await readFile(join(user, 'session_index.json'), 'utf8'));
    expect(index.sessions.map((s: { id: string; messageCount: number }) => [s.id, s.messageCount])).toEqual([[session.id, 3]]);
  });

  it('keeps itself out of git: a new data dir inside a repository adds nothing to it', async () => {
    const repo = await tempDir();
    const dataDir = join(repo, 'memex-data');
    const { store } = await seeded(dataDir);
    await store.close();
    expect(await readFile(join(dataDir, '.gitignore'), 'utf8')).toMatch(/^\*$/m);
    if (spawnSync('git', ['init', '-q'], { cwd: repo }).error) return; // no git here: the file's content is what was checked
    const status = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: repo, encoding: 'utf8' });
    expect(status.stdout).toBe('');
    // Reopening an existing data dir with its .gitignore is not "a folder that holds other things".
    await (await FlatFileStore.open({ dataDir })).close();
  });

  it('leaves no temp files behind', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session } = await seeded(dataDir);
    await store.putFile('alice', session.id, { source: { bytes: Buffer.from('hello') } });
    await store.close();
    const all = await readdir(dataDir, { recursive: true });
    expect(all.filter((p) => p.endsWith('.tmp') || p.includes('.new-'))).toEqual([]);
  });

  it('refuses a file over the size limit before keeping any of it', async () => {
    const dataDir = join(await tempDir(), 'data');
    const store = await openStore(dataDir, { maxFileBytes: 1000 });
    await store.createUser({ id: 'alice' });
    const { id } = await store.createSession('alice');
    await expectCode(store.putFile('alice', id, { source: { bytes: Buffer.alloc(1001) } }), 'MEMEX_FILE_TOO_LARGE');
    expect(await readdir(join(dataDir, 'users', 'alice', 'sessions', id, 'files'))).toEqual([]);
    expect((await store.putFile('alice', id, { source: { bytes: Buffer.alloc(1000) } })).file.ext).toBe('bin');
  });

  it('refuses to adopt a folder that holds other things', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'thesis.docx'), 'precious');
    await expectCode(FlatFileStore.open({ dataDir: dir }), 'MEMEX_DATA_DIR_INVALID');
    const file = join(dir, 'thesis.docx');
    await expectCode(FlatFileStore.open({ dataDir: file }), 'MEMEX_DATA_DIR_INVALID');
  });

  it('refuses data written by a newer format version', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session } = await seeded(dataDir);
    await store.close();
    const metaPath = join(dataDir, 'users', 'alice', 'sessions', session.id, 'session_meta.json');
    const meta = JSON.parse(await readFile(metaPath, 'utf8'));
    await writeFile(metaPath, JSON.stringify({ ...meta, v: 99 }));
    const reopened = await openStore(dataDir);
    await expectCode(reopened.getSession('alice', session.id), 'MEMEX_FORMAT_UNSUPPORTED');
  });
});

describe('reading an archived session', () => {
  it('leaves no extracted copy behind, also when the archive is damaged (MEMEX_SESSION_CORRUPT)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session, messages } = await seeded(dataDir);
    await store.archiveSession('alice', session.id);
    const trash = async (): Promise<string[]> => (await readdir(join(dataDir, '.trash')).catch(() => [])).filter((name) => name.startsWith('read-'));
    expect((await store.readArchivedSession('alice', session.id)).messages).toEqual(messages);
    expect(await trash()).toEqual([]);
    const tar = join(dataDir, 'users', 'alice', 'archived', `${session.id}.tar.gz`);
    const bytes = await readFile(tar);
    await writeFile(tar, bytes.subarray(0, bytes.length >> 1));
    await expectCode(store.readArchivedSession('alice', session.id), 'MEMEX_SESSION_CORRUPT');
    expect(await trash()).toEqual([]);
    // The read changed nothing: the damaged archive is still what is there, still listed as archived.
    expect(await readFile(tar)).toEqual(bytes.subarray(0, bytes.length >> 1));
    expect((await store.getSession('alice', session.id)).archivedAt).not.toBeNull();
  });
});

describe('crash repair', () => {
  it('repairs a torn last line on open, saves the torn bytes, and reports it', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session, log } = await seeded(dataDir);
    await store.close();
    const torn = '{"v":1,"id":"msg_torn","sessionId":"x","role":"us';
    await appendFile(log, torn);
    const warnings: StoreWarning[] = [];
    const reopened = await openStore(dataDir, { warnings });
    const page = await reopened.listMessages('alice', session.id);
    expect(page.messages.map((m) => m.content)).toEqual(['message 0', 'message 1', 'message 2']);
    const repair = warnings.find((w) => w.kind === 'torn-line-repaired');
    expect(repair).toMatchObject({ kind: 'torn-line-repaired', kept: false, bytes: torn.length });
    expect(await readFile((repair as { savedTo: string }).savedTo, 'utf8')).toBe(torn);
    await reopened.appendMessages('alice', session.id, [{ role: 'assistant', content: 'after repair' }]);
    const lines = (await readFile(log, 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l).content)).toEqual(['message 0', 'message 1', 'message 2', 'after repair']);
  });

  it('keeps a whole last message that lost only its newline', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session, log, messages } = await seeded(dataDir);
    await store.close();
    const extra = { ...messages[0]!, id: 'msg_whole', content: 'whole but unterminated' };
    await appendFile(log, JSON.stringify(extra));
    const warnings: StoreWarning[] = [];
    const reopened = await openStore(dataDir, { warnings });
    expect((await reopened.listMessages('alice', session.id)).messages.map((m) => m.content)).toContain('whole but unterminated');
    expect(warnings).toContainEqual(expect.objectContaining({ kind: 'torn-line-repaired', kept: true }));
    expect((await reopened.getSession('alice', session.id)).messageCount).toBe(4);
  });

  it('recounts a session whose meta missed its last append', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session, log, messages } = await seeded(dataDir);
    await store.close();
    await appendFile(log, `${JSON.stringify({ ...messages[2]!, id: 'msg_late', content: 'written before the crash', createdAt: '2031-01-01T00:00:00.000Z' })}\n`);
    const warnings: StoreWarning[] = [];
    const reopened = await openStore(dataDir, { warnings });
    const [listed] = (await reopened.listSessions('alice')).sessions;
    expect(listed).toMatchObject({ id: session.id, messageCount: 4, lastMessagePreview: 'written before the crash', lastMessageAt: '2031-01-01T00:00:00.000Z' });
    expect(warnings.map((w) => w.kind)).toContain('counts-reconciled');
  });

  it('survives SIGKILL in the middle of appending', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session } = await seeded(dataDir, 1);
    await store.close();
    const moduleUrl = new URL('../../src/store/index.ts', import.meta.url).href;
    const child = spawn(
      process.execPath,
      tsxEval(`import { FlatFileStore } from ${JSON.stringify(moduleUrl)};
         const store = await FlatFileStore.open({ dataDir: ${JSON.stringify(dataDir)}, fsync: 'none' });
         const big = 'y'.repeat(50000);
         for (let i = 0; ; i++) {
           await store.appendMessages('alice', ${JSON.stringify(session.id)}, [{ role: 'user', content: i + ' ' + big }, { role: 'assistant', content: 'ok ' + i }]);
           if (i === 5) process.stdout.write('ready\\n');
         }`),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));

    const reopened = await openStore(dataDir);
    const messages: string[] = [];
    for await (const m of reopened.streamMessages('alice', session.id)) messages.push(m.content);
    expect(messages.length).toBeGreaterThan(12);
    expect((await reopened.getSession('alice', session.id)).messageCount).toBe(messages.length);
    // Whatever made it is whole: every user turn but possibly the last is followed by its answer.
    for (let i = 1; i + 1 < messages.length; i += 2) expect(messages[i + 1]).toBe(`ok ${(i - 1) / 2}`);
  }, 60_000);
});

describe('one broken session never hides the others', () => {
  it('lists the readable sessions and names the broken one', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session: good } = await seeded(dataDir);
    const bad = await store.createSession('alice', { title: 'will break' });
    await store.close();
    await writeFile(join(dataDir, 'users', 'alice', 'sessions', bad.id, 'session_meta.json'), '{"v":1, "id": trunc');
    const reopened = await openStore(dataDir);
    const page = await reopened.listSessions('alice');
    expect(page.sessions.map((s) => s.id)).toEqual([good.id]);
    expect(page.unreadable).toEqual([expect.objectContaining({ sessionId: bad.id, code: 'MEMEX_SESSION_CORRUPT' })]);
    await expectCode(reopened.getSession('alice', bad.id), 'MEMEX_SESSION_CORRUPT');
    expect((await reopened.listMessages('alice', good.id)).total).toBe(3);
    await reopened.deleteSession('alice', bad.id);
    expect((await reopened.listSessions('alice')).unreadable).toEqual([]);
  });

  it('skips a corrupt line in the middle of a log and reports its position; the rest of the session reads', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session, log } = await seeded(dataDir);
    const other = await store.createSession('alice');
    await store.appendMessages('alice', other.id, [{ role: 'user', content: 'fine' }]);
    await store.close();
    const lines = (await readFile(log, 'utf8')).split('\n');
    lines[1] = '{"this is": not json}';
    await writeFile(log, lines.join('\n'));
    const warnings: StoreWarning[] = [];
    const reopened = await openStore(dataDir, { warnings });
    expect((await reopened.listMessages('alice', session.id)).messages.map((m) => m.content)).toEqual(['message 0', 'message 2']);
    expect(warnings).toContainEqual(expect.objectContaining({ kind: 'corrupt-lines-skipped', sessionId: session.id, lines: [2] }));
    const streamed: string[] = [];
    for await (const m of reopened.streamMessages('alice', session.id)) streamed.push(m.content);
    expect(streamed).toEqual(['message 0', 'message 2']);
    expect((await reopened.listMessages('alice', other.id)).messages[0]!.content).toBe('fine');
    const page = await reopened.listSessions('alice');
    expect(page.sessions.map((s) => s.id).sort()).toEqual([session.id, other.id].sort());
    expect(page.unreadable).toEqual([]);
  });
});

describe('session_index.json', () => {
  it('is rebuilt when missing, corrupt or stale, with the same listing', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session } = await seeded(dataDir);
    const second = await store.createSession('alice', { title: 'second' });
    const before = await store.listSessions('alice');
    await store.close();
    const indexPath = join(dataDir, 'users', 'alice', 'session_index.json');

    await rm(indexPath);
    expect(await (await openStore(dataDir)).listSessions('alice')).toEqual(before);
    await open.pop()!.close();

    await writeFile(indexPath, '{"v":1,"userId":"alice","sessions":[{"broken"');
    const warnings: StoreWarning[] = [];
    expect(await (await openStore(dataDir, { warnings })).listSessions('alice')).toEqual(before);
    expect(warnings.map((w) => w.kind)).toContain('session-index-rebuilt');
    await open.pop()!.close();

    // Edited behind the store's back: the meta's mtime no longer matches the listing's.
    const metaPath = join(dataDir, 'users', 'alice', 'sessions', second.id, 'session_meta.json');
    const meta = JSON.parse(await readFile(metaPath, 'utf8'));
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(metaPath, JSON.stringify({ ...meta, title: 'edited by hand' }));
    const listed = await (await openStore(dataDir)).listSessions('alice');
    expect(listed.sessions.find((s) => s.id === second.id)!.title).toBe('edited by hand');
    expect(listed.sessions.find((s) => s.id === session.id)).toEqual(before.sessions.find((s) => s.id === session.id));
  });

  it('is written once for a burst of changes, soon after them, and on close (regression: every append rewrote the whole listing)', async () => {
    const dataDir = join(await tempDir(), 'data');
    const indexPath = join(dataDir, 'users', 'alice', 'session_index.json');
    const listed = async (): Promise<number[] | null> => {
      const text = await readFile(indexPath, 'utf8').catch(() => null);
      return text === null ? null : (JSON.parse(text) as { sessions: { messageCount: number }[] }).sessions.map((s) => s.messageCount);
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const store = await openStore(dataDir);
      await store.createUser({ id: 'alice' });
      const session = await store.createSession('alice');
      for (let i = 0; i < 20; i++) await store.appendMessages('alice', session.id, [{ role: 'user', content: `message ${i}` }]);
      expect(await listed()).toBeNull(); // 21 changes, no write yet
      vi.advanceTimersByTime(LISTING_WRITE_DELAY_MS);
      await vi.waitFor(async () => expect(await listed()).toEqual([20]));
      await store.appendMessages('alice', session.id, [{ role: 'user', content: 'last' }]);
      await store.createSession('alice');
      await store.close();
      expect(await listed()).toEqual([21, 0]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('ignores a session folder left half-made by a crash, and a restore of that session writes over it', async () => {
    const dataDir = join(await tempDir(), 'data');
    const { store, session } = await seeded(dataDir);
    const saved = await store.getSession('alice', session.id);
    await store.deleteSession('alice', session.id);
    await store.close();
    const leftover = join(dataDir, 'users', 'alice', 'sessions', `.new-${session.id}`);
    await mkdir(leftover);
    await writeFile(join(leftover, 'session_meta.json'), '{"torn');
    const reopened = await openStore(dataDir);
    expect((await reopened.listSessions('alice')).total).toBe(0);
    await reopened.restoreSession('alice', saved);
    expect(await reopened.getSession('alice', session.id)).toMatchObject({ id: session.id, messageCount: 0 });
    expect(await readdir(join(dataDir, 'users', 'alice', 'sessions'))).toEqual([session.id]);
  });
});

describe('the data dir lock', () => {
  it('lets one store at a time open a data dir, in one process', async () => {
    const dataDir = join(await tempDir(), 'data');
    const first = await openStore(dataDir);
    await expectCode(FlatFileStore.open({ dataDir, lockTimeoutMs: 50 }), 'MEMEX_DATA_DIR_LOCKED');
    await first.close();
    const second = await openStore(dataDir);
    await second.createUser({ id: 'bob' });
  });

  it('makes a second process wait, then fail naming the owner; a killed owner leaves a stale lock that is taken over', async () => {
    const dataDir = join(await tempDir(), 'data');
    const moduleUrl = new URL('../../src/store/index.ts', import.meta.url).href;
    const child = spawn(
      process.execPath,
      tsxEval(`import { FlatFileStore } from ${JSON.stringify(moduleUrl)}; await FlatFileStore.open({ dataDir: ${JSON.stringify(dataDir)} }); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`),
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    });
    let caught: unknown;
    await FlatFileStore.open({ dataDir, lockTimeoutMs: 200 }).catch((e: unknown) => (caught = e));
    expect(caught).toMatchObject({ code: 'MEMEX_DATA_DIR_LOCKED', details: { owner: { pid: child.pid } } });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const store = await openStore(dataDir, { lockTimeoutMs: 0 });
    await store.createUser({ id: 'carol' });
  }, 30_000);
});
