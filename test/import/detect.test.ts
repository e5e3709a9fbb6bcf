import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { classifyDocument, detectFormat } from '../../src/import/detect.js';
import type { TopLevelValue } from '../../src/import/json-stream.js';
import { openExport, type ExportDocument } from '../../src/import/read.js';
import { expectCode } from '../helpers/errors.js';
import { CHAT_EXPORTS, CHAT_EXPORTS_MISSING, hasChatExports, SAMPLE_FORMATS } from '../helpers/export-samples.js';
import { tempDir } from '../helpers/tmp.js';


async function single(path: string, options: Parameters<typeof openExport>[1] = {}): Promise<{ document: ExportDocument; values: TopLevelValue[] }> {
  const reader = await openExport(path, options);
  try {
    const documents: ExportDocument[] = [];
    let values: TopLevelValue[] = [];
    for await (const document of reader.documents()) {
      documents.push(document);
      values = [];
      for await (const value of document.values) values.push(value);
    }
    expect(documents).toHaveLength(1);
    return { document: documents[0]!, values };
  } finally {
    await reader.close();
  }
}

it.skipIf(hasChatExports)(CHAT_EXPORTS_MISSING, () => undefined);

describe.skipIf(!hasChatExports)('detection of every chat-export sample', () => {
  it('knows every sample file there is', () => {
    const files = ['chatgpt', 'claude', 'gemini'].flatMap((dir) => readdirSync(join(CHAT_EXPORTS, dir)).map((file) => `${dir}/${file}`));
    expect(files.sort()).toEqual(Object.keys(SAMPLE_FORMATS).sort());
  });

  for (const [file, format] of Object.entries(SAMPLE_FORMATS)) {
    it(`detects ${file} as ${format} and streams all its values`, async () => {
      const { document, values } = await single(join(CHAT_EXPORTS, file));
      expect(document.format).toBe(format);
      expect(document.entry).toBeNull();
      expect(values.length).toBeGreaterThan(0);
    });
  }

  it('detects the 2025 export even when its corrupted conversation (no mapping) comes first', async () => {
    const { values } = await single(join(CHAT_EXPORTS, 'chatgpt/librechat_chatgpt-modern-export.json'));
    const corrupted = values.find(({ value }) => !('mapping' in (value as object)));
    expect(corrupted).toBeDefined();
    const reordered = [corrupted!, ...values.filter((entry) => entry !== corrupted)];
    const path = join(await tempDir(), 'export.json');
    await writeFile(path, JSON.stringify(reordered.map(({ value }) => value)));
    const again = await single(path);
    expect(again.document.format).toBe('chatgpt-conversations');
    expect(again.values.map(({ value }) => value)).toEqual(reordered.map(({ value }) => value));
  });

  it('streams the collections keyed by name as one value per case, with its name as the key', async () => {
    const { values } = await single(join(CHAT_EXPORTS, 'chatgpt/pulsar_edgecases_by_name.json'));
    expect(values.map(({ key }) => key)).toContain('linear');
    expect(values.every(({ key, value }) => typeof key === 'string' && typeof value === 'object')).toBe(true);
  });

  it('accepts a matching source hint and refuses a contradicting one with MEMEX_IMPORT_FORMAT_UNKNOWN', async () => {
    const claude = join(CHAT_EXPORTS, 'claude/yaleman_conversations.json');
    expect((await single(claude, { source: 'claude' })).document.format).toBe('claude-conversations');
    const error = await expectCode(single(claude, { source: 'chatgpt' }), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
    expect(error.details).toMatchObject({ source: 'chatgpt', detected: 'claude-conversations' });
    await expectCode(single(join(CHAT_EXPORTS, 'gemini/chatlore_MyActivity.json'), { source: 'memex' }), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
  });
});

describe('detection from content', () => {
  it("detects Memex's own session export by its format field", async () => {
    const path = join(await tempDir(), 'anything.txt');
    const head = { v: 1, format: 'memex-session', exportedAt: '2026-01-01T00:00:00.000Z', session: { id: 's1', title: 'Notes' }, persona: null, files: [] };
    await writeFile(path, JSON.stringify({ ...head, messages: [{ id: 'm1', role: 'user', content: 'hi' }] }));
    const { document, values } = await single(path, { source: 'memex' });
    expect(document.format).toBe('memex-session');
    expect(values.map(({ key }) => key)).toEqual(['v', 'format', 'exportedAt', 'session', 'persona', 'files', 'messages']);
  });

  it('refuses unknown JSON, a PNG, an empty file and an empty array with MEMEX_IMPORT_FORMAT_UNKNOWN', async () => {
    const dir = await tempDir();
    const cases: Record<string, Buffer | string> = {
      'unknown.json': JSON.stringify([{ id: 1, email: 'a@example.com' }, { id: 2 }]),
      'object.json': JSON.stringify({ id: 'user-1', email: 'a@example.com', chatgpt_plus_user: false }),
      'image.json': Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'),
      'empty.json': '',
      'blank.json': '\ufeff  \n',
      'empty-array.json': '[ ]',
      'scalar.json': '42',
    };
    for (const [name, content] of Object.entries(cases)) {
      const path = join(dir, name);
      await writeFile(path, content);
      const error = await expectCode(single(path), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
      expect(error.details, name).toHaveProperty('seen');
    }
  });

  it('names what it saw in the details, never the content', () => {
    let caught: unknown;
    try {
      detectFormat({ shape: 'array', values: [{ key: null, value: { secret: 'do not show', id: 1 } }], complete: true }, { name: 'x.json' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: 'MEMEX_IMPORT_FORMAT_UNKNOWN', details: { name: 'x.json', shape: 'array', seen: ['object {secret, id}'] } });
    expect(JSON.stringify(caught)).not.toContain('do not show');
  });

  it('takes conversations without a mapping as ChatGPT only when they are not alone or the source is named', () => {
    const weak = { key: null, value: { id: 'c1', conversation_id: 'c1', title: 'Corrupted entry', create_time: 1, update_time: 2 } };
    const strong = { key: null, value: { id: 'c2', title: 'Fine', create_time: 1, mapping: {}, current_node: null } };
    expect(classifyDocument({ shape: 'array', values: [weak], complete: true })).toBeNull();
    expect(classifyDocument({ shape: 'array', values: [weak], complete: true }, 'chatgpt')).toBe('chatgpt-conversations');
    expect(classifyDocument({ shape: 'array', values: [weak, weak, strong], complete: true })).toBe('chatgpt-conversations');
  });
});
