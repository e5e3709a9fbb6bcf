import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TopLevelValue } from '../../src/import/json-stream.js';
import { openExport, type ExportReader } from '../../src/import/read.js';
import { expectCode } from '../helpers/errors.js';
import { CHAT_EXPORTS, CHAT_EXPORTS_MISSING, hasChatExports, openHandles } from '../helpers/export-samples.js';
import { tempDir } from '../helpers/tmp.js';
import { writeZip, type TestZipEntry } from '../helpers/zip.js';

interface ReadDocument {
  entry: string | null;
  format: string;
  values: TopLevelValue[];
}

async function readAll(reader: ExportReader): Promise<ReadDocument[]> {
  const documents: ReadDocument[] = [];
  for await (const document of reader.documents()) {
    const values: TopLevelValue[] = [];
    for await (const value of document.values) values.push(value);
    documents.push({ entry: document.entry, format: document.format, values });
  }
  return documents;
}

async function readPath(path: string, options: Parameters<typeof openExport>[1] = {}): Promise<ReadDocument[]> {
  const reader = await openExport(path, options);
  try {
    return await readAll(reader);
  } finally {
    await reader.close();
  }
}

const sample = (file: string) => readFileSync(join(CHAT_EXPORTS, file));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

it.skipIf(hasChatExports)(CHAT_EXPORTS_MISSING, () => undefined);

describe.skipIf(!hasChatExports)('openExport over ZIPs built from the real samples', () => {
  it("reads Claude's four files from a ZIP as the same documents as the plain files, skipping other entries", async () => {
    const files = { 'conversations.json': 'claude/yaleman_conversations.json', 'projects.json': 'claude/yaleman_projects.json', 'memories.json': 'claude/yaleman_memories.json', 'users.json': 'claude/yaleman_users.json' };
    const entries: TestZipEntry[] = Object.entries(files).map(([name, file]) => ({ name, data: sample(file) }));
    entries.splice(2, 0, { name: 'chat.html', data: '<html><body>not an export</body></html>' }, { name: 'images/cat.png', data: randomBytes(4096), method: 'store' });
    const path = await writeZip(join(await tempDir(), 'data-2025-07-06.zip'), entries);
    const reader = await openExport(path);
    try {
      expect(reader.kind).toBe('zip');
      expect(reader.sha256).toBe(sha256(readFileSync(path)));
      expect([...reader.zipEntries]).toEqual(entries.map((entry) => entry.name));
      const documents = await readAll(reader);
      expect(documents.map(({ entry, format }) => [entry, format])).toEqual([
        ['conversations.json', 'claude-conversations'],
        ['projects.json', 'claude-projects'],
        ['memories.json', 'claude-memories'],
        ['users.json', 'claude-users'],
      ]);
      for (const document of documents) {
        const [plain] = await readPath(join(CHAT_EXPORTS, files[document.entry as keyof typeof files]));
        expect(document.values).toEqual(plain!.values);
      }
      expect(reader.skipped.map(({ entry, reason }) => [entry, reason])).toEqual([
        ['chat.html', 'not-json'],
        ['images/cat.png', 'not-json'],
      ]);
      const image = entries[3]!.data as Buffer;
      const chunks: Buffer[] = [];
      for await (const chunk of await reader.openEntry('images/cat.png')) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(image)).toBe(true);
    } finally {
      await reader.close();
    }
    expect(openHandles(path)).toBe(0);
  });

  it("reads ChatGPT's conversations.json from a ZIP among its other JSON files, whatever the names", async () => {
    const conversations = sample('chatgpt/librechat_chatgpt-export.json');
    const path = await writeZip(join(await tempDir(), 'export.json'), [
      { name: 'user.json', data: JSON.stringify({ id: 'user-x', email: 'a@example.com', chatgpt_plus_user: true }) },
      { name: 'shared_conversations.json', data: JSON.stringify([{ id: 's1', conversation_id: 'c1', title: 'Shared', is_anonymous: true }]) },
      { name: 'message_feedback.json', data: '[]' },
      { name: 'renamed.dat', data: conversations },
      { name: 'file-abc.png', data: randomBytes(100), method: 'store' },
      // Regression (flaky): random bytes that began with `{` or `[` were read as damaged JSON and failed the whole ZIP.
      { name: 'file-def.bin', data: Buffer.concat([Buffer.from('{\u0000'), randomBytes(50)]), method: 'store' },
      { name: 'notes.txt', data: '[draft] not JSON at all', method: 'store' },
    ]);
    const documents = await readPath(path);
    expect(documents.map(({ entry, format }) => [entry, format])).toEqual([['renamed.dat', 'chatgpt-conversations']]);
    expect(documents[0]!.values.map(({ value }) => value)).toEqual(JSON.parse(conversations.toString()));
  });

  it('takes a plain JSON file named .zip for what it is: JSON', async () => {
    const path = join(await tempDir(), 'export.zip');
    await writeFile(path, sample('gemini/chatlore_MyActivity.json'));
    const reader = await openExport(path);
    try {
      expect(reader.kind).toBe('json');
      expect(reader.zipEntries.size).toBe(0);
      expect(reader.sha256).toBe(sha256(sample('gemini/chatlore_MyActivity.json')));
      expect((await readAll(reader)).map(({ format }) => format)).toEqual(['gemini-activity']);
      await expectCode(reader.openEntry('anything'), 'MEMEX_IMPORT_INVALID');
    } finally {
      await reader.close();
    }
  });

  it('skips the entries of another source when a source is named, and says MEMEX_IMPORT_FORMAT_UNKNOWN when none is left', async () => {
    const path = await writeZip(join(await tempDir(), 'mixed.zip'), [
      { name: 'a.json', data: sample('claude/yaleman_users.json') },
      { name: 'b.json', data: sample('chatgpt/librechat_chatgpt-tree.json') },
    ]);
    expect((await readPath(path, { source: 'chatgpt' })).map(({ entry }) => entry)).toEqual(['b.json']);
    const error = await expectCode(readPath(path, { source: 'gemini' }), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
    expect(error.details).toMatchObject({ source: 'gemini' });
  });

  it('raises MEMEX_IMPORT_INVALID for a truncated conversations.json inside a ZIP', async () => {
    const conversations = sample('chatgpt/librechat_chatgpt-export.json');
    const path = await writeZip(join(await tempDir(), 'truncated.zip'), [{ name: 'conversations.json', data: conversations.subarray(0, conversations.length - 100) }]);
    const error = await expectCode(readPath(path), 'MEMEX_IMPORT_INVALID');
    expect(error.details).toMatchObject({ name: 'conversations.json' });
    expect(openHandles(path)).toBe(0);
  });

  it('refuses a zip bomb and a path-traversal entry with MEMEX_ARCHIVE_UNSAFE before reading any document', async () => {
    const dir = await tempDir();
    const conversations = { name: 'conversations.json', data: sample('chatgpt/librechat_chatgpt-export.json') };
    const bomb = await writeZip(join(dir, 'bomb.zip'), [conversations, { name: 'z.json', data: Buffer.alloc(16 * 1024 ** 2) }]);
    const traversal = await writeZip(join(dir, 'evil.zip'), [conversations, { name: '../evil.json', data: '[]' }]);
    const absolute = await writeZip(join(dir, 'abs.zip'), [conversations, { name: '/abs.json', data: '[]' }]);
    for (const path of [bomb, traversal, absolute]) {
      await expectCode(openExport(path), 'MEMEX_ARCHIVE_UNSAFE');
      expect(openHandles(path)).toBe(0);
    }
  });
});

describe('openExport', () => {
  it('reads a plain JSON document, with its hash', async () => {
    const path = join(await tempDir(), 'c.json');
    const text = JSON.stringify([{ uuid: 'u1', name: 'n', chat_messages: [] }]);
    await writeFile(path, text);
    const reader = await openExport(path);
    try {
      expect(reader.sha256).toBe(sha256(Buffer.from(text)));
      expect(reader.size).toBe(text.length);
      expect((await readAll(reader)).map(({ format, entry }) => [format, entry])).toEqual([['claude-conversations', null]]);
    } finally {
      await reader.close();
    }
  });

  it('says MEMEX_IMPORT_FORMAT_UNKNOWN for a ZIP with no export in it, naming what it skipped', async () => {
    const path = await writeZip(join(await tempDir(), 'photos.zip'), [
      { name: 'a.png', data: Buffer.from('89504e470d0a1a0a', 'hex'), method: 'store' },
      { name: 'notes.json', data: '{"hello":"world"}' },
    ]);
    const error = await expectCode(readPath(path), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
    expect(error.details).toMatchObject({ entries: ['a.png', 'notes.json'] });
  });

  it('raises MEMEX_IMPORT_INVALID for a truncated JSON file once the values before the cut are read', async () => {
    const path = join(await tempDir(), 'conversations.json');
    const text = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ uuid: `u${i}`, name: 'n', chat_messages: [{ text: 'x'.repeat(2000) }] })));
    await writeFile(path, text.slice(0, Math.floor(text.length / 2)));
    const reader = await openExport(path);
    let read = 0;
    const error = await expectCode(async () => {
      for await (const document of reader.documents()) for await (const _ of document.values) read += 1;
    }, 'MEMEX_IMPORT_INVALID');
    await reader.close();
    expect(read).toBeGreaterThan(0);
    expect(error.details).toMatchObject({ name: path });
    expect(error.details.byteOffset as number).toBeLessThanOrEqual(text.length / 2);
    expect(openHandles(path)).toBe(0);
  });

  it('says MEMEX_PATH_NOT_FOUND for a missing file', async () => {
    await expectCode(openExport(join(await tempDir(), 'missing.json')), 'MEMEX_PATH_NOT_FOUND');
  });

  it('stops with MEMEX_ABORTED when the signal fires, and releases the file', async () => {
    const path = join(await tempDir(), 'c.json');
    await writeFile(path, JSON.stringify(Array.from({ length: 20_000 }, (_, i) => ({ uuid: `u${i}`, chat_messages: [], name: 'x'.repeat(50) }))));
    const controller = new AbortController();
    const reader = await openExport(path, { signal: controller.signal });
    let count = 0;
    await expectCode(async () => {
      for await (const document of reader.documents()) {
        for await (const _ of document.values) {
          if (++count === 10) controller.abort();
        }
      }
    }, 'MEMEX_ABORTED');
    await reader.close();
    expect(count).toBe(10);
    expect(openHandles(path)).toBe(0);
    await expectCode(openExport(path, { signal: controller.signal }), 'MEMEX_ABORTED');
  });
});
