import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { CHAT_EXPORTS, hasChatExports } from '../helpers/export-samples.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { buildZip, writeZip } from '../helpers/zip.js';

const sample = (...parts: string[]): string => join(CHAT_EXPORTS, ...parts);

/** A small PNG of one line of black text on white, rendered by sharp (librsvg): quick to OCR. */
async function textImage(text: string): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${24 * text.length}" height="80"><rect width="100%" height="100%" fill="white"/><text x="12" y="52" font-family="sans-serif" font-size="36" fill="black">${text}</text></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

const open: Memex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memex) => memex.close()));
});

async function openMemex(backend: Backend): Promise<Memex> {
  const dir = await tempDir();
  const memex = await Memex.open({ dataDir: dir, env: modelEnv, config: await backendConfig(backend, dir) });
  open.push(memex);
  await memex.users.create({ id: 'alice' });
  return memex;
}

type Json = Record<string, unknown>;
const chatgptCases = (): Record<string, Json> => ({
  ...(JSON.parse(readFileSync(sample('chatgpt', 'pulsar_edgecases_by_name.json'), 'utf8')) as Record<string, Json>),
  ...(JSON.parse(readFileSync(sample('chatgpt', 'pulsar_hardening_by_name.json'), 'utf8')) as Record<string, Json>),
});

/** The Claude sample's conversation with an attachment (and its extracted text) on the first message. */
function claudeWithAttachment(extracted: string, extraMessage?: Json): Json[] {
  const [conversation] = JSON.parse(readFileSync(sample('claude', 'yaleman_conversations.json'), 'utf8')) as (Json & { chat_messages: Json[] })[];
  const messages = conversation?.chat_messages ?? [];
  const first = { ...messages[0], attachments: [{ file_name: 'harbour-notes.md', file_type: 'md', file_size: extracted.length, extracted_content: extracted }] };
  return [{ ...conversation, chat_messages: [first, ...messages.slice(1), ...(extraMessage ? [extraMessage] : [])] }];
}

describe.skipIf(!hasChatExports).each(BACKENDS)('imported attachments on %s', (backend) => {
  it("an image attachment's text was not searchable: it is OCRed like an upload, linked, and found in the imported session, once", async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const zip = await writeZip(join(dir, 'export.zip'), [
      { name: 'conversations.json', data: JSON.stringify([chatgptCases().knownImage]) },
      { name: 'image_456-receipt.png', data: await textImage('Quarterly lighthouse maintenance'), method: 'store' },
    ]);
    const report = await memex.imports.run('alice', zip);
    expect(report.record.counts.attachments).toEqual({ stored: 1, ingested: 1, missing: 0 });
    expect(report.record.skipped).toEqual([]);
    const sessionId = report.record.sessions[0] as string;
    const [message] = (await memex.messages.list('alice', sessionId)).messages;
    const fileId = message?.attachments[0]?.fileId as string;
    expect((await memex.files.get('alice', sessionId, fileId)).content).toMatchObject({ kind: 'image' });

    const found = await memex.search('alice', 'lighthouse maintenance', { k: 3, sources: ['file'], origin: 'imported' });
    const hit = found.hits[0];
    expect(hit?.sessionId).toBe(sessionId);
    expect(hit?.source).toMatchObject({ kind: 'file', fileId });
    expect(hit?.text.toLowerCase()).toContain('lighthouse');
    expect(hit?.imported).toMatchObject({ source: 'chatgpt' });

    // Again: nothing added, nothing ingested twice.
    const rows = (await memex.vectors.status('alice', sessionId)).rows;
    const again = await memex.imports.run('alice', zip);
    expect(again.saved).toBe(false);
    expect(again.record.counts.attachments).toEqual({ stored: 0, ingested: 0, missing: 0 });
    expect(await memex.files.list('alice', sessionId)).toHaveLength(1);
    expect((await memex.vectors.status('alice', sessionId)).rows).toBe(rows);
  }, 120_000);

  it("a Claude attachment's extracted text was not searchable: it becomes a text document of the conversation, linked to its message, once", async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const extracted = '# Harbour notes\n\nThe tugboat Persephone is moored at the eastern quay until the spring tide.';
    const file = join(dir, 'conversations.json');
    await writeFile(file, JSON.stringify(claudeWithAttachment(extracted)));
    const report = await memex.imports.run('alice', file);
    expect(report.record.counts.attachments).toEqual({ stored: 1, ingested: 1, missing: 0 });
    const sessionId = report.record.sessions[0] as string;
    const [message] = (await memex.messages.list('alice', sessionId)).messages;
    expect(message?.attachments.map((a) => a.name)).toEqual(['harbour-notes.md']);
    const fileId = message?.attachments[0]?.fileId as string;
    const stored = await memex.files.get('alice', sessionId, fileId);
    expect(stored.content).toMatchObject({ kind: 'text' });
    expect(stored.metadata).toMatchObject({ import: { source: 'claude', extractedContent: true } });
    // Kept once: as the linked document, not again in the message's metadata.
    expect(JSON.stringify(message?.metadata)).not.toContain('Persephone');

    const found = await memex.search('alice', 'tugboat Persephone moored', { k: 3, sources: ['file'] });
    expect(found.hits[0]?.sessionId).toBe(sessionId);
    expect(found.hits[0]?.source).toMatchObject({ kind: 'file', fileId });

    // Again: nothing added.
    const again = await memex.imports.run('alice', file);
    expect(again.saved).toBe(false);
    expect(again.record.counts.attachments).toEqual({ stored: 0, ingested: 0, missing: 0 });

    // A newer export where a new message carries the same text: linked to the document already there, nothing read twice.
    const rows = (await memex.vectors.status('alice', sessionId)).rows;
    const newer = claudeWithAttachment(extracted, {
      uuid: 'b0b0b0b0-0000-4000-8000-000000000001',
      text: 'Here it is again.',
      sender: 'human',
      created_at: '2025-07-07T00:00:00Z',
      attachments: [{ file_name: 'harbour-notes.md', extracted_content: extracted }],
      files: [],
    });
    await writeFile(file, JSON.stringify(newer));
    const third = await memex.imports.run('alice', file);
    expect(third.record.counts.messages.added).toBe(1);
    expect(third.record.counts.attachments).toEqual({ stored: 1, ingested: 0, missing: 0 });
    const last = (await memex.messages.list('alice', sessionId)).messages.at(-1);
    expect(last?.attachments[0]?.fileId).toBe(fileId);
    expect(await memex.files.list('alice', sessionId)).toHaveLength(1);
    // Only the new message's rows were added.
    expect((await memex.vectors.status('alice', sessionId)).rows).toBe(rows + 1);
  }, 120_000);

  it("attachments: 'store' keeps the files linked without reading them, and Claude's extracted text in the message", async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const zip = await writeZip(join(dir, 'export.zip'), [
      { name: 'conversations.json', data: JSON.stringify([chatgptCases().knownImage]) },
      { name: 'image_456-receipt.png', data: await textImage('Quarterly lighthouse maintenance'), method: 'store' },
    ]);
    const report = await memex.imports.run('alice', zip, { attachments: 'store' });
    expect(report.record.counts.attachments).toEqual({ stored: 1, ingested: 0, missing: 0 });
    const sessionId = report.record.sessions[0] as string;
    const [message] = (await memex.messages.list('alice', sessionId)).messages;
    expect(message?.attachments[0]?.mimeType).toBe('image/png');
    expect((await memex.files.get('alice', sessionId, message?.attachments[0]?.fileId as string)).content).toBeUndefined();
    expect((await memex.search('alice', 'lighthouse maintenance', { k: 3, sources: ['file'] })).hits).toEqual([]);

    const file = join(dir, 'conversations.json');
    await writeFile(file, JSON.stringify(claudeWithAttachment('The tugboat Persephone is moored at the eastern quay.')));
    const claude = await memex.imports.run('alice', file, { attachments: 'store' });
    expect(claude.record.counts.attachments).toEqual({ stored: 0, ingested: 0, missing: 1 });
    const [first] = (await memex.messages.list('alice', claude.record.sessions[0] as string)).messages;
    expect(first?.attachments).toEqual([]);
    expect(JSON.stringify(first?.metadata)).toContain('Persephone');
  }, 120_000);

  it('an unreadable image attachment costs only itself: stored, linked and listed as skipped; an unsupported type is stored too; the rest imports', async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const cases = chatgptCases();
    const png = await textImage('broken');
    const zip = await writeZip(join(dir, 'export.zip'), [
      { name: 'conversations.json', data: JSON.stringify([cases.knownImage, cases.attachment, cases.linear]) },
      // A PNG cut off after its header: sharp cannot decode it.
      { name: 'image_456-cut.png', data: png.subarray(0, 60), method: 'store' },
      // A ZIP the user attached: stored as it came, not searchable.
      { name: 'file-example-123-example.zip', data: buildZip([{ name: 'readme.txt', data: 'inside' }]), method: 'store' },
    ]);
    const report = await memex.imports.run('alice', zip);
    expect(report.record.counts.conversations).toMatchObject({ added: 3, skipped: 0 });
    expect(report.record.counts.attachments).toEqual({ stored: 2, ingested: 0, missing: 0 });
    expect(report.record.skipped.map((s) => [s.item, s.reason, s.detail.split(':')[0]])).toEqual([
      ['Known image', 'attachment-not-searchable', 'image_456'],
      ['Attachment chat', 'attachment-not-searchable', 'example.zip'],
    ]);
    expect(report.record.skipped.map((s) => s.detail)).toEqual([expect.stringContaining('MEMEX_IMAGE_INVALID'), expect.stringContaining('MEMEX_FILE_TYPE_UNSUPPORTED')]);
    const sessions = (await memex.sessions.list('alice', { origin: 'imported' })).sessions;
    for (const title of ['Known image', 'Attachment chat']) {
      const sessionId = sessions.find((s) => s.title === title)?.id as string;
      const [message] = (await memex.messages.list('alice', sessionId)).messages;
      const fileId = message?.attachments[0]?.fileId as string;
      const stored = await memex.files.get('alice', sessionId, fileId);
      expect(stored.content, title).toBeUndefined();
      // The bytes are the export's.
      const pieces: Uint8Array[] = [];
      for await (const piece of await memex.files.read('alice', sessionId, fileId)) pieces.push(piece);
      expect(Buffer.concat(pieces).length, title).toBe(stored.size);
    }
    expect(sessions.map((s) => s.title)).toContain('Linear chat');
    expect((await memex.search('alice', 'Describe this image', { k: 3 })).hits.length).toBeGreaterThan(0);
  }, 120_000);
});

describe.skipIf(!hasChatExports)('import records', () => {
  it('a record written before attachments were ingested (no counts.attachments.ingested) still reads, as 0', async () => {
    const dir = await tempDir();
    const memex = await Memex.open({ dataDir: dir, env: modelEnv });
    open.push(memex);
    await memex.users.create({ id: 'alice' });
    const report = await memex.imports.run('alice', sample('chatgpt', 'librechat_chatgpt-tree.json'));
    const path = join(dir, 'users', 'alice', 'imported', 'manifests', `${report.record.id}.json`);
    const old = JSON.parse(readFileSync(path, 'utf8')) as { counts: { attachments: Record<string, number> } };
    delete old.counts.attachments.ingested;
    await writeFile(path, JSON.stringify(old));
    expect((await memex.imports.list('alice'))[0]?.counts.attachments).toEqual({ stored: 0, ingested: 0, missing: 0 });
  }, 120_000);
});
