import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { restoreBackup, verifyBackup } from '../../src/backup/index.js';
import { FlatFileStore, PostgresStore, type Store } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { buildZip } from '../helpers/zip.js';
import { writeFile } from 'node:fs/promises';
import { backupTo, DataArb, fill, fullSnapshot, readEntries, tamper, type Data } from './helpers.js';

const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

async function flat(dir: string): Promise<FlatFileStore> {
  const store = await FlatFileStore.open({ dataDir: dir, fsync: 'none', lockTimeoutMs: 1000, onWarning: () => undefined });
  open.push(store);
  return store;
}

let database: TestDatabase | null = null;
beforeAll(async () => {
  database = await startTestDatabase();
}, 60_000);
afterAll(async () => {
  await database?.stop();
});

/** The test database, emptied. */
async function postgres(): Promise<PostgresStore> {
  const url = (database as TestDatabase).url;
  await resetMemexSchema(url);
  const store = await PostgresStore.open({ url, hnsw: { m: 8, efConstruction: 32 }, onWarning: () => undefined });
  open.push(store);
  return store;
}

async function close(store: Store): Promise<void> {
  open.splice(open.indexOf(store), 1);
  await store.close();
}

const SAMPLE: Data = {
  users: [
    {
      id: 'alice',
      name: 'Alice <b>',
      personas: ['p1', 'p2'],
      notes: ['likes tea', 'lives in Lisbon'],
      sessions: [
        { title: 'First', metadata: { project: 'x' }, messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi 😀' }, { role: 'user', content: 'bye' }], files: ['report one', 'two'], embedded: 2, summary: true, imported: false, archived: true, trashed: false, trashMessage: false, tags: [] },
        {
          title: undefined,
          metadata: {},
          messages: [{ role: 'user', content: 'imported' }, { role: 'assistant', content: 'gone soon' }],
          files: [],
          embedded: 2,
          summary: false,
          imported: true,
          archived: false,
          trashed: true,
          trashMessage: true,
          tags: ['work'],
        },
      ],
      imports: true,
    },
    { id: 'bob', name: 'Bob', personas: [], notes: [], sessions: [{ title: 'Empty', metadata: {}, messages: [], files: [], embedded: 0, summary: false, imported: false, archived: false, trashed: false, trashMessage: false, tags: [] }], imports: false },
  ],
};

describe('backup and restore: restore(backup(x)) equals x', () => {
  it('flat files, over generated data (property)', async () => {
    await fc.assert(
      fc.asyncProperty(DataArb, async (data) => {
        const root = await tempDir();
        const source = await flat(join(root, 'a'));
        await fill(source, data);
        const zip = join(root, 'backup.zip');
        const manifest = await backupTo(source, zip);
        const target = await flat(join(root, 'b'));
        const result = await restoreBackup(target, zip);
        expect(result.counts).toEqual(manifest.counts);
        expect(await fullSnapshot(target)).toEqual(await fullSnapshot(source));
        await close(source);
        await close(target);
      }),
      { numRuns: 6 },
    );
  }, 120_000);

  it('PostgreSQL, over generated data (property): back up, empty the database, restore', async () => {
    await fc.assert(
      fc.asyncProperty(DataArb, async (data) => {
        const root = await tempDir();
        const source = await postgres();
        await fill(source, data);
        const before = await fullSnapshot(source);
        const zip = join(root, 'backup.zip');
        await backupTo(source, zip);
        await close(source);
        const target = await postgres();
        expect(await target.listUsers()).toEqual([]);
        await restoreBackup(target, zip);
        expect(await fullSnapshot(target)).toEqual(before);
        await close(target);
      }),
      { numRuns: 3 },
    );
  }, 120_000);

  it('flat files → PostgreSQL → flat files: the same data at each step', async () => {
    const root = await tempDir();
    const a = await flat(join(root, 'a'));
    await fill(a, SAMPLE);
    const original = await fullSnapshot(a);
    await backupTo(a, join(root, 'one.zip'));
    const archived = (await a.listSessions('alice', { archived: 'only' })).sessions.map((s) => s.id);
    expect(archived).toHaveLength(1);
    const db = await postgres();
    await restoreBackup(db, join(root, 'one.zip'));
    expect(await fullSnapshot(db)).toEqual(original);
    // Archived again in PostgreSQL's own format: its content is out of the hot tables.
    expect((await db.listSessions('alice', { archived: 'only' })).sessions.map((s) => s.id)).toEqual(archived);
    await expectCode(db.listMessages('alice', archived[0]!), 'MEMEX_SESSION_ARCHIVED');
    await backupTo(db, join(root, 'two.zip'));
    const c = await flat(join(root, 'c'));
    await restoreBackup(c, join(root, 'two.zip'));
    expect(await fullSnapshot(c)).toEqual(original);
  });

  it('one user, and under another id (--as-user)', async () => {
    const root = await tempDir();
    const a = await flat(join(root, 'a'));
    await fill(a, SAMPLE);
    const manifest = await backupTo(a, join(root, 'alice.zip'), 'alice');
    expect(manifest.scope).toEqual({ kind: 'user', userId: 'alice' });
    expect(manifest.users.map((u) => u.id)).toEqual(['alice']);
    const b = await flat(join(root, 'b'));
    await restoreBackup(b, join(root, 'alice.zip'), { asUser: 'dora' });
    expect((await b.listUsers()).map((u) => u.id)).toEqual(['dora']);
    const rename = (value: unknown): unknown => JSON.parse(JSON.stringify(value).replaceAll('"alice"', '"dora"'));
    const original = (await fullSnapshot(a)) as { base: { users: { profile: { id: string } }[] } };
    const copy = (await fullSnapshot(b)) as { base: { users: unknown[] } };
    expect(copy.base.users).toEqual([rename(original.base.users.find((u) => u.profile.id === 'alice'))]);
    // A backup of several users cannot go under one id.
    await backupTo(a, join(root, 'all.zip'));
    await expectCode(restoreBackup(b, join(root, 'all.zip'), { asUser: 'erin' }), 'MEMEX_INVALID_INPUT');
  });

  it('the manifest: format version, memex version, model, counts, a sha256 per entry', async () => {
    const root = await tempDir();
    const a = await flat(join(root, 'a'));
    await fill(a, SAMPLE);
    const manifest = await backupTo(a, join(root, 'b.zip'));
    expect(manifest).toMatchObject({ format: 'memex-backup', v: 1, model: { model: 'test-model', dimension: 8 }, scope: { kind: 'all' } });
    expect(manifest.memexVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(manifest.counts).toEqual({ users: 2, personas: 2, notes: 2, imports: 1, sessions: 3, messages: 4, files: 2, fileBytes: 15, artifacts: 2, summaries: 1, vectorRows: 4 });
    const names = (await readEntries(join(root, 'b.zip'))).map((e) => e.name);
    // The trashed message travels in its session's trashed.jsonl, listed with its sha256 like the rest.
    expect(manifest.entries.filter((e) => e.name.endsWith('/trashed.jsonl'))).toHaveLength(1);
    expect(names.filter((n) => n !== 'manifest.json' && n !== 'manifest.sha256').sort()).toEqual(manifest.entries.map((e) => e.name).sort());
  });
});

describe('a restore refuses, and writes nothing', () => {
  async function prepared(): Promise<{ root: string; zip: string; target: FlatFileStore; before: unknown }> {
    const root = await tempDir();
    const a = await flat(join(root, 'a'));
    await fill(a, SAMPLE);
    const zip = join(root, 'good.zip');
    await backupTo(a, zip);
    const target = await flat(join(root, 'target'));
    await target.createUser({ id: 'zed' });
    await target.addNote('zed', { text: 'untouched' });
    return { root, zip, target, before: await fullSnapshot(target) };
  }

  const cases: [string, (name: string, data: Buffer) => Buffer | null][] = [
    ['one byte of a message changed', (name, data) => (name.endsWith('messages.jsonl') && data.length > 0 ? Buffer.from(data.toString().replace('hello', 'jello')) : data)],
    ['one byte of a file changed', (name, data) => (/files\/[0-9a-f]{64}$/.test(name) ? Buffer.concat([data.subarray(0, 1), Buffer.from([data[1]! ^ 1]), data.subarray(2)]) : data)],
    ['one byte of a trashed message changed', (name, data) => (name.endsWith('/trashed.jsonl') ? Buffer.from(data.toString().replace('gone soon', 'gone moon')) : data)],
    ['a file missing', (name, data) => (/files\/[0-9a-f]{64}$/.test(name) ? null : data)],
    ['an entry the manifest does not list', (name, data) => (name === 'manifest.sha256' ? data : data)],
    ['the manifest edited', (name, data) => (name === 'manifest.json' ? Buffer.from(data.toString().replace('"messages": 4', '"messages": 5')) : data)],
    [
      'the manifest edited and its sha256 with it',
      (name, data) => (name === 'manifest.json' ? Buffer.from(data.toString().replace('"messages": 4', '"messages": 5')) : data),
    ],
    ['the manifest missing', (name, data) => (name === 'manifest.json' ? null : data)],
  ];

  it.each(cases)('%s: MEMEX_BACKUP_INVALID', async (label, edit) => {
    const { root, zip, target, before } = await prepared();
    const bad = join(root, 'bad.zip');
    if (label === 'an entry the manifest does not list') {
      const entries = await readEntries(zip);
      await writeFile(bad, buildZip([...entries, { name: 'users/alice/extra.json', data: '{}' }]));
    } else if (label === 'the manifest edited and its sha256 with it') {
      const { createHash } = await import('node:crypto');
      const entries = await readEntries(zip);
      const manifest = Buffer.from(entries.find((e) => e.name === 'manifest.json')!.data.toString().replace('"messages": 4', '"messages": 5'));
      const sha = `${createHash('sha256').update(manifest).digest('hex')}  manifest.json\n`;
      await writeFile(bad, buildZip(entries.map((e) => (e.name === 'manifest.json' ? { name: e.name, data: manifest } : e.name === 'manifest.sha256' ? { name: e.name, data: sha } : e))));
    } else {
      await tamper(zip, bad, edit);
    }
    await expectCode(restoreBackup(target, bad), 'MEMEX_BACKUP_INVALID');
    expect(await fullSnapshot(target)).toEqual(before);
  });

  it('an archived session changed in the backup (its rows, its file, its archivedAt): MEMEX_BACKUP_INVALID', async () => {
    const { root, zip, target, before } = await prepared();
    const entries = await readEntries(zip);
    const record = entries.find((e) => e.name.endsWith('/session.json') && JSON.parse(e.data.toString()).session.archivedAt !== null)!;
    const dir = record.name.slice(0, -'session.json'.length);
    const edits: [string, (name: string, data: Buffer) => Buffer | null][] = [
      ['rows', (name, data) => (name === `${dir}vectors.jsonl` ? Buffer.from(data.toString().replace(/"vector":"(.)/, (_, c: string) => `"vector":"${c === 'A' ? 'B' : 'A'}`)) : data)],
      ['file', (name, data) => (name.startsWith(`${dir}files/`) && /[0-9a-f]{64}$/.test(name) ? Buffer.concat([data, Buffer.from('x')]) : data)],
      ['archivedAt', (name, data) => (name === record.name ? Buffer.from(data.toString().replace(/"archivedAt":"[^"]+"/, '"archivedAt":null')) : data)],
    ];
    for (const [what, edit] of edits) {
      const bad = join(root, `bad-${what}.zip`);
      await tamper(zip, bad, edit);
      expect((await readEntries(bad)).map((e) => e.data.toString('hex'))).not.toEqual(entries.map((e) => e.data.toString('hex')));
      await expectCode(restoreBackup(target, bad), 'MEMEX_BACKUP_INVALID');
      expect(await fullSnapshot(target)).toEqual(before);
    }
  });

  it('one byte flipped in the ZIP file itself', async () => {
    const { root, zip, target, before } = await prepared();
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(zip);
    // In the first entry's data (after its 30-byte header and name): a stored or deflated payload.
    const at = 30 + bytes.readUInt16LE(26) + bytes.readUInt16LE(28) + 5;
    bytes[at]! ^= 0xff;
    const bad = join(root, 'flipped.zip');
    await writeFile(bad, bytes);
    await expectCode(restoreBackup(target, bad), 'MEMEX_BACKUP_INVALID');
    expect(await fullSnapshot(target)).toEqual(before);
  });

  it('a user that already holds data: MEMEX_BACKUP_CONFLICT; with replace, the backup takes its place', async () => {
    const { root, zip } = await prepared();
    const target = await flat(join(root, 'occupied'));
    await target.createUser({ id: 'alice' });
    await target.addNote('alice', { text: 'mine' });
    const before = await fullSnapshot(target);
    await expectCode(restoreBackup(target, zip), 'MEMEX_BACKUP_CONFLICT');
    expect(await fullSnapshot(target)).toEqual(before);
    const result = await restoreBackup(target, zip, { replace: true });
    expect(result.replaced).toEqual(['alice']);
    const source = open.find((s) => s !== target && s instanceof FlatFileStore)!;
    expect(await fullSnapshot(target)).toEqual(await fullSnapshot(source));
  });

  it('a ZIP with a path outside the archive, and a ZIP bomb: MEMEX_ARCHIVE_UNSAFE', async () => {
    const { root, target, before } = await prepared();
    const traversal = join(root, 'traversal.zip');
    await writeFile(traversal, buildZip([{ name: '../../etc/evil', data: 'x' }, { name: 'manifest.json', data: '{}' }]));
    await expectCode(verifyBackup(traversal), 'MEMEX_ARCHIVE_UNSAFE');
    const bomb = join(root, 'bomb.zip');
    await writeFile(bomb, buildZip([{ name: 'manifest.json', data: Buffer.alloc(64 * 1024 ** 2) }]));
    await expectCode(restoreBackup(target, bomb), 'MEMEX_ARCHIVE_UNSAFE');
    const notZip = join(root, 'not.zip');
    await writeFile(notZip, 'hello');
    await expectCode(restoreBackup(target, notZip), 'MEMEX_BACKUP_INVALID');
    expect(await fullSnapshot(target)).toEqual(before);
  });
});
