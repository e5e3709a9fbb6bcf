import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMemexSession } from '../../src/import/memex.js';
import type { ImportedConversation } from '../../src/import/model.js';
import { exportSessionToString, FlatFileStore } from '../../src/store/index.js';
import { tempDir } from '../helpers/tmp.js';
import { parseAll } from './values.js';

const open: FlatFileStore[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((store) => store.close()));
});

async function exported(): Promise<{ document: unknown; sessionId: string }> {
  const store = await FlatFileStore.open({ dataDir: join(await tempDir(), 'data'), fsync: 'none', lockTimeoutMs: 1000 });
  open.push(store);
  await store.createUser({ id: 'alice' });
  const session = await store.createSession('alice', { title: 'Trip planning' });
  await store.appendMessages('alice', session.id, [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'text', text: 'Where to?' }, { type: 'image_url', image_url: { url: 'https://example.com/map.png' } }], createdAt: '2026-01-02T03:04:05.000Z' },
    { role: 'assistant', content: 'Lisbon.', metadata: { model: 'm1' }, tool_calls: [{ id: 'call-1', type: 'function', function: { name: 'weather', arguments: '{"city":"Lisbon"}' } }] },
    { role: 'tool', content: '18°C', toolCallId: 'call-1', toolName: 'weather' },
  ]);
  return { document: JSON.parse(await exportSessionToString(store, 'alice', session.id, 'json')) as unknown, sessionId: session.id };
}

describe('Memex session export (round trip of `memex export --format json`)', () => {
  it('becomes one conversation keeping the session id, message ids, roles, contents, times and metadata', async () => {
    const { document, sessionId } = await exported();
    const source = document as { session: { createdAt: string }; messages: { id: string; createdAt: string }[] };
    const items = await parseAll(parseMemexSession, document);
    expect(items).toHaveLength(1);
    const c = items[0] as ImportedConversation;
    expect(c).toMatchObject({ kind: 'conversation', source: 'memex', conversationId: sessionId, title: 'Trip planning', createdAt: source.session.createdAt, branches: [] });
    expect(c.metadata).toMatchObject({ origin: { kind: 'native' }, exportedAt: expect.any(String) });
    expect(c.messages.map((m) => [m.sourceId, m.role, m.content, m.createdAt])).toEqual([
      [source.messages[0]!.id, 'system', 'Be brief.', source.messages[0]!.createdAt],
      [source.messages[1]!.id, 'user', 'Where to?', '2026-01-02T03:04:05.000Z'],
      [source.messages[2]!.id, 'assistant', 'Lisbon.', source.messages[2]!.createdAt],
      [source.messages[3]!.id, 'tool', '18°C', source.messages[3]!.createdAt],
    ]);
    // What has no field of its own rides in metadata: the image part, the tool call and its answer.
    expect(c.messages[1]!.metadata.parts).toEqual([expect.objectContaining({ type: 'text' }), expect.objectContaining({ type: 'image_url' })]);
    expect(c.messages[2]!.metadata).toMatchObject({ model: 'm1', toolCalls: [expect.objectContaining({ id: 'call-1' })] });
    expect(c.messages[3]!.metadata).toEqual({ toolCallId: 'call-1', toolName: 'weather' });
  });

  it('flattens content parts to text when content is empty, and keeps attachments by file id', async () => {
    const items = await parseAll(parseMemexSession, {
      v: 1,
      format: 'memex-session',
      session: { id: 's1', title: null, createdAt: '2026-01-01T00:00:00.000Z' },
      messages: [
        { id: 'm1', role: 'user', content: '', parts: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }], createdAt: 'x', attachments: [{ fileId: 'f1', name: 'a.pdf' }] },
        { id: 'm2', role: 'robot', content: 'no' },
      ],
    });
    expect(items.map((i) => (i.kind === 'skip' ? i.reason : i.kind))).toEqual(['invalid', 'conversation']);
    const c = items[1] as ImportedConversation;
    expect(c.messages).toEqual([{ sourceId: 'm1', role: 'user', content: 'a\nb', createdAt: null, metadata: {}, attachments: [{ name: 'a.pdf', mimeType: null, zipEntry: null, text: null, ref: 'f1' }] }]);
  });

  it('refuses a document of another format or a newer version with a skip', async () => {
    expect(await parseAll(parseMemexSession, { format: 'other', session: { id: 's' } })).toEqual([expect.objectContaining({ kind: 'skip', reason: 'invalid' })]);
    expect(await parseAll(parseMemexSession, { v: 99, format: 'memex-session', session: { id: 's' } })).toEqual([expect.objectContaining({ kind: 'skip', reason: 'unsupported-version' })]);
    expect(await parseAll(parseMemexSession, { v: 1, format: 'memex-session', session: {} })).toEqual([expect.objectContaining({ kind: 'skip', reason: 'invalid' })]);
  });
});
