import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ZipArchive, unsafeEntryName } from '../../src/import/zip.js';
import { expectCode } from '../helpers/errors.js';
import { openHandles } from '../helpers/export-samples.js';
import { tempDir } from '../helpers/tmp.js';
import { writeZip, type TestZipEntry } from '../helpers/zip.js';

async function zipOf(entries: TestZipEntry[]): Promise<string> {
  return writeZip(join(await tempDir(), 'export.zip'), entries);
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('ZipArchive', () => {
  it('lists file entries and streams their bytes, deflated or stored', async () => {
    const path = await zipOf([
      { name: 'conversations.json', data: '[{"a":1}]' },
      { name: 'files/', data: '', method: 'store' },
      { name: 'files/image.png', data: Buffer.from([1, 2, 3, 4]), method: 'store' },
      { name: 'ünïcode/naïve.txt', data: 'x'.repeat(10_000) },
    ]);
    const zip = await ZipArchive.open(path);
    try {
      expect([...zip.names]).toEqual(['conversations.json', 'files/image.png', 'ünïcode/naïve.txt']);
      expect((await readAll(await zip.openEntry('conversations.json'))).toString()).toBe('[{"a":1}]');
      expect([...(await readAll(await zip.openEntry('files/image.png')))]).toEqual([1, 2, 3, 4]);
      expect((await readAll(await zip.openEntry('ünïcode/naïve.txt'))).length).toBe(10_000);
      await expectCode(zip.openEntry('missing.json'), 'MEMEX_IMPORT_INVALID');
    } finally {
      await zip.close();
    }
    expect(openHandles(path)).toBe(0);
  });

  it('refuses path-traversal, absolute, backslash and drive-letter names before extracting anything', async () => {
    for (const name of ['../evil.json', 'a/../../evil.json', '/abs.json', 'dir\\evil.json', 'C:/evil.json', 'c:evil.json']) {
      const path = await zipOf([
        { name: 'conversations.json', data: '[]' },
        { name, data: '{}' },
      ]);
      const error = await expectCode(ZipArchive.open(path), 'MEMEX_ARCHIVE_UNSAFE');
      expect(error.details, name).toMatchObject({ limit: 'entryName', entry: name });
      expect(openHandles(path)).toBe(0);
    }
    expect(unsafeEntryName('fine/..name/x..json')).toBeNull();
  });

  it('refuses too many entries from the central directory (default 10,000)', async () => {
    const many = Array.from({ length: 10_001 }, (_, i) => ({ name: `f${i}.txt`, data: 'x', method: 'store' as const }));
    const error = await expectCode(ZipArchive.open(await zipOf(many)), 'MEMEX_ARCHIVE_UNSAFE');
    expect(error.details).toMatchObject({ limit: 'maxEntries', max: 10_000 });
    const few = await zipOf(many.slice(0, 6));
    expect((await expectCode(ZipArchive.open(few, { limits: { maxEntries: 5 } }), 'MEMEX_ARCHIVE_UNSAFE')).details).toMatchObject({ limit: 'maxEntries' });
  });

  it('refuses a high-ratio entry (a zip bomb) from its declared sizes', async () => {
    const path = await zipOf([{ name: 'bomb.json', data: Buffer.alloc(20 * 1024 ** 2) }]);
    const error = await expectCode(ZipArchive.open(path), 'MEMEX_ARCHIVE_UNSAFE');
    expect(error.details).toMatchObject({ limit: 'maxRatio', entry: 'bomb.json', max: 200 });
    expect(openHandles(path)).toBe(0);
  });

  it('refuses an archive whose declared total is over the limit', async () => {
    const path = await zipOf([
      { name: 'a.json', data: 'a'.repeat(600) },
      { name: 'b.json', data: 'b'.repeat(600) },
    ]);
    expect((await expectCode(ZipArchive.open(path, { limits: { maxTotalBytes: 1000 } }), 'MEMEX_ARCHIVE_UNSAFE')).details).toMatchObject({ limit: 'maxTotalBytes' });
  });

  it('stops an entry that inflates to more than it declared (a lying zip bomb) while reading', async () => {
    const path = await zipOf([{ name: 'liar.json', data: Buffer.alloc(20 * 1024 ** 2), declaredSize: 1000 }]);
    const zip = await ZipArchive.open(path);
    try {
      const stream = await zip.openEntry('liar.json');
      let bytes = 0;
      const error = await expectCode(async () => {
        for await (const chunk of stream) bytes += (chunk as Buffer).length;
      }, 'MEMEX_ARCHIVE_UNSAFE');
      expect(error.details).toMatchObject({ limit: 'declaredSize', entry: 'liar.json' });
      expect(bytes).toBeLessThanOrEqual(1000);
    } finally {
      await zip.close();
    }
    expect(openHandles(path)).toBe(0);
  });

  it('counts the bytes actually inflated against the total, across every read of the archive', async () => {
    const data = randomBytes(768 * 1024);
    const path = await zipOf([{ name: 'photo.bin', data }]);
    const zip = await ZipArchive.open(path, { limits: { maxTotalBytes: 1024 ** 2 } });
    try {
      expect((await readAll(await zip.openEntry('photo.bin'))).equals(data)).toBe(true);
      const error = await expectCode(readAll(await zip.openEntry('photo.bin')), 'MEMEX_ARCHIVE_UNSAFE');
      expect(error.details).toMatchObject({ limit: 'maxTotalBytes' });
    } finally {
      await zip.close();
    }
    expect(openHandles(path)).toBe(0);
  });

  it('releases the file when a reader stops early and the archive is closed', async () => {
    const path = await zipOf([{ name: 'text.txt', data: randomBytes(600_000).toString('hex') }]);
    const zip = await ZipArchive.open(path);
    const stream = await zip.openEntry('text.txt');
    for await (const _ of stream) break;
    await zip.close();
    expect(openHandles(path)).toBe(0);
  });

  it('says MEMEX_IMPORT_INVALID for a damaged ZIP', async () => {
    const path = join(await tempDir(), 'broken.zip');
    await writeZip(path, [{ name: 'a.json', data: '[]' }]);
    const { truncate } = await import('node:fs/promises');
    await truncate(path, 40);
    await expectCode(ZipArchive.open(path), 'MEMEX_IMPORT_INVALID');
  });
});
