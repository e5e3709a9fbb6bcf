import { join } from 'node:path';
import { parse, type DefaultTreeAdapterMap } from 'parse5';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { exportSessionToString, FlatFileStore, PostgresStore, type Store } from '../../src/store/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

/** Every element of the parsed document, depth first (template contents included). */
function elements(node: Node): Element[] {
  const out: Element[] = [];
  const visit = (n: Node): void => {
    if ('tagName' in n) out.push(n);
    if ('childNodes' in n) for (const child of n.childNodes) visit(child);
    if ('content' in n && n.content) visit(n.content);
  };
  visit(node);
  return out;
}

/** The text a browser shows for an element (text nodes, concatenated). */
function textOf(node: Node): string {
  if (node.nodeName === '#text') return (node as DefaultTreeAdapterMap['textNode']).value;
  return 'childNodes' in node ? node.childNodes.map(textOf).join('') : '';
}

const HOSTILE = [
  '<script>alert(1)</script>',
  '<img src=x onerror="alert(2)">',
  '</style><script>alert(3)</script>',
  '</pre></article><svg onload=alert(4)>',
  '"><iframe src="javascript:alert(5)"></iframe>',
  '<!-- --><a href="javascript:alert(6)" onclick=alert(7)>x</a>',
  '</textarea></title><body onload=alert(8)>',
  "' onmouseover='alert(9)",
];

async function fill(store: Store): Promise<string> {
  await store.createUser({ id: 'eve' });
  await store.createPersona('eve', { id: 'p1', name: '<script>alert("persona")</script>', instructions: 'x' });
  const session = await store.createSession('eve', { title: '</title><script>alert("title")</script>', personaId: 'p1', metadata: { note: '<img src=x onerror=alert("meta")>' } });
  const { file } = await store.putFile('eve', session.id, { source: { bytes: Buffer.from('%PDF-1.4\n%%EOF\n') }, name: '"><script>alert("file")</script>.pdf' });
  await store.appendMessages('eve', session.id, [
    ...HOSTILE.map((content, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content, ...(i === 0 ? { name: '<b onclick=x>n</b>' } : {}) })),
    { role: 'user' as const, content: 'see file', attachments: [{ fileId: file.id }] },
    { role: 'tool' as const, content: 'ok', toolName: '<script>t</script>', tool_call_id: 'c1' },
  ]);
  return session.id;
}

function checkDocument(html: string): void {
  const document = parse(html);
  const all = elements(document);
  const tags = new Set(all.map((e) => e.tagName));
  for (const forbidden of ['script', 'img', 'svg', 'iframe', 'a', 'link', 'object', 'embed', 'form', 'base', 'textarea']) expect(tags.has(forbidden), forbidden).toBe(false);
  for (const element of all) {
    for (const attribute of element.attrs) {
      expect(attribute.name.startsWith('on'), `${element.tagName} ${attribute.name}`).toBe(false);
      expect(attribute.value.toLowerCase()).not.toContain('javascript:');
    }
  }
  // One style element, no external resources, and the CSP is there.
  expect(all.filter((e) => e.tagName === 'style')).toHaveLength(1);
  const csp = all.find((e) => e.tagName === 'meta' && e.attrs.some((a) => a.name === 'http-equiv'));
  expect(csp?.attrs.find((a) => a.name === 'content')?.value).toContain("default-src 'none'");
  // Each hostile message is visible as its own text, once, in its own card.
  const cards = all.filter((e) => e.tagName === 'article');
  expect(cards).toHaveLength(HOSTILE.length + 2);
  const shown = cards.map((card) => textOf(elements(card).find((e) => e.tagName === 'pre')!));
  expect(shown.slice(0, HOSTILE.length)).toEqual(HOSTILE);
  const body = textOf(all.find((e) => e.tagName === 'body')!);
  expect(body).toContain('</title><script>alert("title")</script>');
  expect(body).toContain('<script>alert("persona")</script>');
  expect(body).toContain('"><script>alert("file")</script>.pdf');
  expect(body).toContain('<img src=x onerror=alert(\\"meta\\")>');
  expect(body).toContain('Tool (<script>t</script>)');
  expect(textOf(all.find((e) => e.tagName === 'title')!)).toBe('</title><script>alert("title")</script>');
}

const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

describe('HTML export of hostile content', () => {
  it('flat files: parsed back by a real HTML parser, no script, no handler, every message shown as text', async () => {
    const store = await FlatFileStore.open({ dataDir: join(await tempDir(), 'd'), onWarning: () => undefined });
    open.push(store);
    const sessionId = await fill(store);
    checkDocument(await exportSessionToString(store, 'eve', sessionId, 'html'));
  });

  describe('PostgreSQL', () => {
    let database: TestDatabase;
    beforeAll(async () => {
      database = await startTestDatabase();
      await resetMemexSchema(database.url);
    }, 60_000);
    afterAll(async () => {
      await database?.stop();
    });
    it('the same document from the database', async () => {
      const store = await PostgresStore.open({ url: database.url, onWarning: () => undefined });
      open.push(store);
      const sessionId = await fill(store);
      checkDocument(await exportSessionToString(store, 'eve', sessionId, 'html'));
    });
  });
});
