import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FORMAT_SOURCE, type ExportFormat } from '../../src/import/model.js';
import { PARSERS } from '../../src/import/parsers.js';
import { SAMPLE_FORMATS } from '../helpers/export-samples.js';
import { CHAT_EXPORTS, CHAT_EXPORTS_MISSING, hasChatExports, parseAll, readExport, valuesOf } from './values.js';

if (!hasChatExports) console.warn(CHAT_EXPORTS_MISSING);

describe.skipIf(!hasChatExports)('every chat-export sample', () => {
  it('has a parser here (a new sample cannot go untested)', () => {
    const files = readdirSync(CHAT_EXPORTS, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json'));
    expect(files.map((f) => f.split('\\').join('/')).sort()).toEqual(Object.keys(SAMPLE_FORMATS).sort());
  });

  for (const [file, format] of Object.entries(SAMPLE_FORMATS)) {
    it(`${file} parses with ${format} into items of its source`, async () => {
      const items = await parseAll(PARSERS[format], readExport(file));
      expect(items.length).toBeGreaterThan(0);
      expect(items.every((i) => i.source === FORMAT_SOURCE[format])).toBe(true);
    });
  }
});

describe('every parser', () => {
  // Values of every wrong shape: each must come out as a skip (or nothing), never a throw.
  const odd: unknown[] = [
    null,
    0,
    -1.5,
    'text',
    true,
    [],
    [1, 2],
    {},
    { mapping: null },
    { mapping: [] },
    { mapping: { a: { parent: 'a', children: ['a'], message: { author: {}, content: {} } } } },
    { mapping: { a: { parent: null, children: 'x', message: 5 } } },
    { chat_messages: 'x' },
    { chat_messages: [null, 1, { sender: 'human', content: 'x' }] },
    { uuid: 1, docs: [{}] },
    { title: 'Prompted x', time: {} },
    { header: null, title: null },
    { format: 'memex-session', session: null, messages: 'x' },
  ];

  for (const format of Object.keys(PARSERS) as ExportFormat[]) {
    it(`${format} turns values of the wrong shape into skips, never a throw`, async () => {
      const items = await parseAll(PARSERS[format], odd);
      expect(items.every((i) => i.kind === 'skip' || i.kind === 'conversation')).toBe(true);
      expect(items.some((i) => i.kind === 'skip')).toBe(true);
      for (const i of items) expect(i.source).toBe(FORMAT_SOURCE[format]);
      // Keyed by name as well as in an array.
      await expect(parseAll(PARSERS[format], Object.fromEntries(odd.map((v, n) => [`k${n}`, v])))).resolves.toBeInstanceOf(Array);
    });
  }

  it('reads the values one at a time, as the streaming reader gives them', async () => {
    let pulled = 0;
    async function* counted() {
      for await (const v of valuesOf([{ id: 'a' }, { id: 'b' }, { id: 'c' }])) {
        pulled++;
        yield v;
      }
    }
    const parser = PARSERS['chatgpt-conversations'](counted(), { zipEntries: new Set() });
    const first = await parser[Symbol.asyncIterator]().next();
    expect(first.value).toMatchObject({ kind: 'skip', reason: 'no-mapping' });
    expect(pulled).toBe(1);
  });
});

