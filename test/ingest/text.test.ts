import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileTextSchema, Memex, type IngestResult } from '../../src/index.js';
import { htmlToText } from '../../src/ingest/html.js';
import { markdownSections, renderJson } from '../../src/ingest/text.js';
import { expectCode } from '../helpers/errors.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

describe('htmlToText', () => {
  it('keeps the visible text: no script, style or comments, entities decoded, headings and list items on their own lines', () => {
    const { text, title } = htmlToText(
      '<!DOCTYPE html><html><head><title>Trip &amp; plans</title><style>p { color: red }</style><script>var x = "<p>hidden</p>";</script></head>' +
        '<body><h1>Lisbon</h1><p>Caf&eacute; at 3&nbsp;pm &#8212; &#x2192; tram&nbsp;28.</p><!-- a comment --><ul><li>Bel&eacute;m</li><li>Alfama</li></ul>' +
        '<table><tr><td>Mon</td><td>Sintra</td></tr></table><noscript>enable JS</noscript><p>a &lt; b &unknown; c</p></body></html>',
    );
    expect(title).toBe('Trip & plans');
    // A no-break space is a space to search.
    expect(text).toBe('# Lisbon\n\nCafé at 3 pm — → tram 28.\n\n- Belém\n- Alfama\n\nMon | Sintra\n\na < b &unknown; c');
  });

  it('hides the rest of a page after an unclosed script, and is linear on hostile markup', () => {
    expect(htmlToText('<p>shown</p><script>alert(1) <p>not shown</p>').text).toBe('shown');
    const hostile = '<a '.repeat(200_000) + 'x'.repeat(100_000);
    expect(htmlToText(hostile).text).toBe('');
    const deep = '<div>'.repeat(100_000) + 'deep text' + '</div>'.repeat(100_000);
    expect(htmlToText(deep).text).toBe('deep text');
  });
});

describe('markdownSections', () => {
  it('cuts at headings, gives each section its heading path, and reads a # in a code fence as code', () => {
    const md = 'Intro line.\n\n# Guide\n\nText.\n\n## Install\n\n```sh\n# not a heading\nnpm ci\n```\n\n## Use\n\nRun it.\n\nSetext\n======\n\nBody.\n';
    const sections = markdownSections(md);
    expect(sections.map((s) => s.headings)).toEqual([[], ['Guide'], ['Guide', 'Install'], ['Guide', 'Use'], ['Setext']]);
    expect(sections.map((s) => s.text).join('')).toBe(md);
    expect(sections[2]?.text).toContain('# not a heading\nnpm ci');
  });
});

describe('renderJson', () => {
  it('renders keys and values as indented lines, and survives JSON nested 100,000 deep', () => {
    expect(renderJson('{"trip":{"city":"Lisbon","days":[1,2]},"ok":true}', false)).toBe('trip:\n  city: Lisbon\n  days:\n    - 1\n    - 2\nok: true');
    const deep = `${'{"a":'.repeat(100_000)}"bottom"${'}'.repeat(100_000)}`;
    const rendered = renderJson(deep, false);
    expect(rendered).toContain('a: bottom');
    expect((rendered as string).length).toBeLessThan(100_000 * 30);
    expect(renderJson('{"not json', false)).toBeNull();
  });
});

/** Text documents went the way of PDFs: refused with 415 MEMEX_FILE_TYPE_UNSUPPORTED before. */
describe('ingesting text documents (regression: .txt, .md, .html and .json were refused as unsupported)', () => {
  async function open(env: Record<string, string> = modelEnv): Promise<{ memex: Memex; session: string; dir: string }> {
    const dir = await tempDir();
    const memex = await Memex.open({ dataDir: join(dir, 'data'), env, onWarning: () => undefined });
    await memex.users.create({ id: 'u' });
    return { memex, session: (await memex.sessions.create('u')).id, dir };
  }

  it('reads .txt, .md, .html and .json like PDFs: chunked, embedded, searchable, Markdown sections with their heading path', async () => {
    const { memex, session, dir } = await open();
    try {
      const files: Record<string, string> = {
        'notes.txt': 'Buy oat milk.\nCall the plumber about the leaking kitchen tap on Tuesday.\n',
        'guide.md': '# Espresso guide\n\nIntro.\n\n## Grinding\n\nGrind the beans very fine, like powdered sugar, right before brewing.\n\n```text\n18 g in, 36 g out\n```\n',
        'page.html': '<html><head><title>Bike</title><script>trackVisitor("bicycle tyre")</script></head><body><h1>Repairs</h1><p>Patch the inner tube with a vulcanising kit.</p></body></html>',
        'trip.json': JSON.stringify({ trip: { destination: 'Reykjavik', activities: ['glacier hike', 'hot springs'] } }),
      };
      const results: Record<string, IngestResult> = {};
      for (const [name, text] of Object.entries(files)) {
        await writeFile(join(dir, name), text);
        results[name] = await memex.ingestFile('u', session, { path: join(dir, name) }, { name });
        expect(results[name], name).toMatchObject({ kind: 'text', ingested: true, warnings: [] });
        expect(results[name]?.chunks, name).toBeGreaterThan(0);
      }
      expect(results['guide.md']?.file.content).toMatchObject({ kind: 'text', format: 'markdown', title: 'Espresso guide' });
      expect(results['page.html']?.file.content).toMatchObject({ kind: 'text', format: 'html', title: 'Bike' });
      expect(results['trip.json']?.file.content).toMatchObject({ kind: 'text', format: 'json' });
      // A JSON document's bytes once overwrote its record (both were `<sha256>.json`).
      expect(await memex.files.get('u', session, results['trip.json']?.file.id ?? '')).toMatchObject({ name: 'trip.json', mimeType: 'application/json' });
      expect((await memex.search('u', 'glacier hike in Reykjavik', { k: 1 })).hits[0]?.source).toMatchObject({ fileId: results['trip.json']?.file.id });

      const html = FileTextSchema.parse(JSON.parse((await memex.files.artifact('u', session, results['page.html']?.file.id ?? '', 'text.json')).toString('utf8')));
      expect(html.units.map((unit) => unit.text).join('')).not.toContain('trackVisitor');

      const { hits } = await memex.search('u', 'grind the beans very fine like powdered sugar', { k: 1 });
      expect(hits[0]?.source).toMatchObject({ kind: 'file', fileId: results['guide.md']?.file.id, headings: ['Espresso guide', 'Grinding'] });
      expect(hits[0]?.text).toContain('Grind the beans');
    } finally {
      await memex.close();
    }
  });

  it('refuses invalid UTF-8 and binary garbage with a code and keeps nothing; reads a huge single line and deeply nested JSON', async () => {
    // The hashed embedder: these are about parsing and limits, and the huge line makes thousands of chunks.
    const { memex, session, dir } = await open({ MEMEX_MODEL: 'hashed' });
    try {
      const invalid = Buffer.concat([Buffer.from('Valid start of a text file. '.repeat(400)), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from(' more')]);
      await writeFile(join(dir, 'broken.txt'), invalid);
      await expectCode(memex.ingestFile('u', session, { path: join(dir, 'broken.txt') }, { name: 'broken.txt' }), 'MEMEX_TEXT_INVALID');
      await writeFile(join(dir, 'garbage.txt'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
      await expectCode(memex.ingestFile('u', session, { path: join(dir, 'garbage.txt') }, { name: 'garbage.txt' }), 'MEMEX_FILE_TYPE_UNSUPPORTED');
      expect(await memex.files.list('u', session)).toEqual([]);

      await writeFile(join(dir, 'line.txt'), 'q'.repeat(1_000_000));
      const line = await memex.ingestFile('u', session, { path: join(dir, 'line.txt') }, { name: 'line.txt' });
      expect(line).toMatchObject({ kind: 'text', characters: 1_000_000 });
      expect(line.chunks).toBeGreaterThan(1);

      await writeFile(join(dir, 'deep.json'), `${'['.repeat(50_000)}"floor"${']'.repeat(50_000)}`);
      const deep = await memex.ingestFile('u', session, { path: join(dir, 'deep.json') }, { name: 'deep.json' });
      expect(deep).toMatchObject({ kind: 'text', warnings: [] });

      await writeFile(join(dir, 'bad.json'), '{"a": [1, 2');
      const bad = await memex.ingestFile('u', session, { path: join(dir, 'bad.json') }, { name: 'bad.json' });
      expect(bad.warnings.map((w) => w.code)).toEqual(['json-invalid']);
    } finally {
      await memex.close();
    }
  });

  it('refuses a text document over ingest.maxTextChars', async () => {
    const dir = await tempDir();
    const memex = await Memex.open({ dataDir: join(dir, 'data'), env: { MEMEX_MODEL: 'hashed' }, config: { ingest: { maxTextChars: 1000 } }, onWarning: () => undefined });
    try {
      await memex.users.create({ id: 'u' });
      const session = (await memex.sessions.create('u')).id;
      await writeFile(join(dir, 'long.md'), 'word '.repeat(1000));
      await expectCode(memex.ingestFile('u', session, { path: join(dir, 'long.md') }, { name: 'long.md' }), 'MEMEX_TEXT_TOO_LARGE');
      expect(await memex.files.list('u', session)).toEqual([]);
    } finally {
      await memex.close();
    }
  });
});
