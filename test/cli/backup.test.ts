import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlatFileStore } from '../../src/store/index.js';
import { fill, fullSnapshot, tamper, type Data } from '../backup/helpers.js';
import { json, memex } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const DATA: Data = {
  users: [
    {
      id: 'alice',
      name: 'Alice',
      personas: ['p1'],
      notes: ['likes tea'],
      sessions: [{ title: 'Tides', metadata: {}, messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi' }], files: ['a report'], embedded: 2, summary: true, imported: false, archived: false, trashed: false, trashMessage: false, tags: [] }],
      imports: false,
    },
    { id: 'bob', name: 'Bob', personas: [], notes: [], sessions: [{ title: 'B', metadata: {}, messages: [{ role: 'user', content: 'yo' }], files: [], embedded: 0, summary: false, imported: false, archived: true, trashed: false, trashMessage: false, tags: [] }], imports: false },
  ],
};

async function snapshotOf(dataDir: string): Promise<unknown> {
  const store = await FlatFileStore.open({ dataDir, onWarning: () => undefined });
  try {
    return await fullSnapshot(store);
  } finally {
    await store.close();
  }
}

async function failure(args: string[]): Promise<{ exit: number; code: string }> {
  const run = await memex([...args, '--json']);
  const { error } = JSON.parse(run.stderr) as { error: { code: string } };
  return { exit: run.code, code: error.code };
}

describe('memex backup and memex restore', () => {
  it('backs up a data dir to a ZIP, restores it into another, identical; refuses a second restore and a tampered copy', async () => {
    const dir = await tempDir();
    const source = join(dir, 'a');
    const store = await FlatFileStore.open({ dataDir: source, onWarning: () => undefined });
    await fill(store, DATA);
    await store.close();
    const zip = join(dir, 'all.zip');
    const made = await json<{ output: string; counts: { users: number; sessions: number; messages: number; vectorRows: number } }>(['--data-dir', source, 'backup', '-o', zip]);
    expect(made).toMatchObject({ output: zip, counts: { users: 2, sessions: 2, messages: 3, vectorRows: 3 } });
    expect(existsSync(`${zip}.partial`)).toBe(false);

    const target = join(dir, 'b');
    const restored = await json<{ users: string[]; counts: { messages: number } }>(['--data-dir', target, 'restore', zip]);
    expect(restored).toMatchObject({ users: ['alice', 'bob'], counts: { messages: 3 } });
    expect(await snapshotOf(target)).toEqual(await snapshotOf(source));

    expect(await failure(['--data-dir', target, 'restore', zip])).toEqual({ exit: 1, code: 'MEMEX_BACKUP_CONFLICT' });
    const bad = join(dir, 'bad.zip');
    await tamper(zip, bad, (name, data) => (name.endsWith('messages.jsonl') ? Buffer.from(data.toString().replace('hello', 'hellO')) : data));
    const empty = join(dir, 'c');
    expect(await failure(['--data-dir', empty, 'restore', bad])).toEqual({ exit: 1, code: 'MEMEX_BACKUP_INVALID' });
    expect(await failure(['--data-dir', empty, 'restore', join(dir, 'missing.zip')])).toEqual({ exit: 1, code: 'MEMEX_PATH_NOT_FOUND' });
  });

  it('--user backs up one user; --as-user restores it under another id; --replace replaces what is there', async () => {
    const dir = await tempDir();
    const source = join(dir, 'a');
    const store = await FlatFileStore.open({ dataDir: source, onWarning: () => undefined });
    await fill(store, DATA);
    await store.close();
    const zip = join(dir, 'bob.zip');
    const made = await json<{ scope: unknown; counts: { users: number } }>(['--data-dir', source, '--user', 'bob', 'backup', '-o', zip]);
    expect(made).toMatchObject({ scope: { kind: 'user', userId: 'bob' }, counts: { users: 1 } });
    expect(await json<{ users: string[] }>(['--data-dir', source, 'restore', zip, '--as-user', 'robert'])).toMatchObject({ users: ['robert'] });
    const again = await json<{ replaced: string[] }>(['--data-dir', source, 'restore', zip, '--as-user', 'robert', '--replace']);
    expect(again.replaced).toEqual(['robert']);
    const check = await FlatFileStore.open({ dataDir: source, onWarning: () => undefined });
    try {
      expect((await check.listSessions('robert')).sessions.map((s) => s.title)).toEqual(['B']);
      // Bob's session is archived: it comes back archived, under either id.
      expect((await check.listSessions('robert', { archived: 'only' })).sessions.map((s) => s.title)).toEqual(['B']);
      expect((await check.listSessions('bob')).sessions.map((s) => s.title)).toEqual(['B']);
    } finally {
      await check.close();
    }
  });
});
