import { describe, expect, it } from 'vitest';
import { parseChatGpt } from '../../src/import/chatgpt.js';
import type { ImportedConversation, ImportItem, ImportSkip } from '../../src/import/model.js';
import { CHAT_EXPORTS_MISSING, hasChatExports, parseAll, readExport } from './values.js';

if (!hasChatExports) console.warn(CHAT_EXPORTS_MISSING);

function conversations(items: ImportItem[]): ImportedConversation[] {
  return items.filter((i): i is ImportedConversation => i.kind === 'conversation');
}
function skips(items: ImportItem[]): ImportSkip[] {
  return items.filter((i): i is ImportSkip => i.kind === 'skip');
}
function byId(items: ImportItem[], id: string): ImportedConversation {
  const found = conversations(items).find((c) => c.conversationId === id);
  if (!found) throw new Error(`no conversation ${id}`);
  return found;
}

describe.skipIf(!hasChatExports)('ChatGPT conversations.json (real samples)', () => {
  it('keeps only current_node’s path as the thread and the two other forks as branches (tree sample)', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/librechat_chatgpt-tree.json'));
    expect(items).toHaveLength(1);
    const [c] = conversations(items);
    expect(c!.conversationId).toBe('d5dc5307-6807-41a0-8b04-4acee626eeb7');
    expect(c!.title).toBe('Assist user with summary');
    expect(c!.messages.map((m) => [m.role, m.content.slice(0, 20)])).toEqual([
      ['user', 'hi there'],
      ['assistant', 'Hello! How can I ass'],
      ['user', 'hi again'],
      ['assistant', 'Hey! Welcome back. W'],
      ['user', 'tell me a joke'],
      ['assistant', "Sure, here's one for"],
    ]);
    expect(c!.messages.at(-1)!.sourceId).toBe('f63b8e17-aa5c-4ca6-a1bf-d4d285e269b8');
    // Two branch points: the edited second question and the regenerated joke.
    expect(c!.branches).toHaveLength(2);
    expect(c!.branches[0]!.fromSourceId).toBe('bda8a275-886d-4f59-b38c-d7037144f0d5');
    expect(c!.branches[0]!.messages.map((m) => m.content.slice(0, 15))).toEqual(['so cool bro', 'Thanks! What br', 'tell me a story', "Sure! Here's a "]);
    expect(c!.branches[1]!.fromSourceId).toBe('aaa20127-b9e3-44f6-afbe-a2475838625a');
    expect(c!.branches[1]!.messages.map((m) => m.sourceId)).toEqual(['d0d2a7df-d2fc-4df9-bf0a-1c5121e227ae']);
    // Never interleaved: no branch message is in the thread.
    const thread = new Set(c!.messages.map((m) => m.sourceId));
    expect(c!.branches.flatMap((b) => b.messages).some((m) => thread.has(m.sourceId))).toBe(false);
    // Times in order, float seconds kept to the millisecond; the model slug on the answers.
    expect(c!.messages[0]!.createdAt).toBe('2024-05-01T17:37:11.150Z');
    expect(c!.createdAt).toBe('2024-05-01T17:37:11.148Z');
    const times = c!.messages.map((m) => m.createdAt!);
    expect([...times].sort()).toEqual(times);
    expect(c!.messages[1]!.metadata.modelSlug).toBe('text-davinci-002-render-sha');
    expect(c!.metadata.defaultModelSlug).toBe('text-davinci-002-render-sha');
    // The empty, visually hidden system prompt is kept apart.
    expect(c!.metadata.hidden).toEqual([expect.objectContaining({ sourceId: 'd38605d2-7b2c-43de-b044-22ce472c749b', role: 'system', reason: 'visually-hidden' })]);
  });

  it('reads browsing output as tool messages, hides the tool calls, and cleans the answer’s citations (export sample)', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/librechat_chatgpt-export.json'));
    expect(conversations(items)).toHaveLength(2);
    const web = byId(items, 'd6523d1e-7ec3-474f-a363-0e9dffdb3d93');
    expect(web.messages.map((m) => m.role)).toEqual(['user', 'tool', 'tool', 'tool', 'assistant', 'user', 'tool', 'tool', 'assistant', 'user', 'assistant']);
    const display = web.messages[1]!;
    expect(display.metadata).toMatchObject({ contentType: 'tether_browsing_display', authorName: 'browser' });
    // A result list's headers (two daggers) are the tool's text, not citations.
    expect(display.content).toContain('【0†Volkswagen Transporter MPG');
    expect(display.metadata.citations).toBeUndefined();
    const quote = web.messages[2]!;
    expect(quote.metadata).toMatchObject({ contentType: 'tether_quote', url: expect.stringContaining('ultimatespecs.com') });
    expect(quote.content).toContain('【0† English 】');
    const answer = web.messages[4]!;
    expect(answer.content).not.toMatch(/【\d+†source】/);
    expect(answer.metadata.citations).toEqual([
      expect.objectContaining({ marker: '【6†source】', url: expect.stringContaining('ultimatespecs.com') }),
      expect.objectContaining({ marker: '【7†source】', url: expect.stringContaining('drive.com.au') }),
    ]);
    const hidden = web.metadata.hidden as { reason: string; recipient?: string; text: string }[];
    expect(hidden.filter((h) => h.reason === 'internal-call').map((h) => h.recipient)).toEqual(['browser', 'browser', 'browser', 'browser']);
    expect(hidden.find((h) => h.reason === 'internal-call')!.text).toBe('```\nsearch("Volkswagen Transporter fuel consumption with 8 people l/km")\n```');
    const code = byId(items, '7c5ab593-dbab-43bd-862d-2c3c1eeebf6a');
    expect(code.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(code.messages[3]!.content).toContain('```csharp');
  });

  it('reports the citations sample, a fragment whose first node’s parent is gone, as missing-parent', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/librechat_chatgpt-citations.json'));
    expect(items).toEqual([expect.objectContaining({ kind: 'skip', reason: 'missing-parent', item: 'd6523d1e-7ec3-474f-a363-0e9dffdb3d93' })]);
  });

  it('cleans 【n:m†source】 citations and keeps them with their sources (citations sample, re-rooted by the test)', async () => {
    // The sample is cut from a longer tree: re-root its orphan so the rest of it can be read.
    const document = readExport('chatgpt/librechat_chatgpt-citations.json') as { mapping: Record<string, { parent: string | null }> }[];
    document[0]!.mapping['9e874379-5008-4a2d-aa2e-628d1d705a04']!.parent = null;
    const [c] = conversations(await parseAll(parseChatGpt, document));
    // current_node is not in the fragment either: the newest leaf ends the thread, and it says so.
    expect(c!.metadata).toMatchObject({ threadEnd: 'newest-leaf', missingCurrentNode: '88a0cf9f-e860-4b34-8e7e-65f8346f4862' });
    expect(c!.messages.map((m) => m.role)).toEqual(['tool', 'assistant']);
    const answer = c!.messages[1]!;
    expect(answer.content).not.toContain('【');
    expect(answer.content).toContain('hybrid environments.\n\nIn a major development');
    expect(answer.metadata.citations).toEqual([
      { marker: '【3:0†source】', title: 'Signal Sciences - Crunchbase Company Profile & Funding', url: 'https://www.crunchbase.com/organization/signal-sciences' },
      { marker: '【3:1†source】', title: 'Demand More from Your WAF - Signal Sciences now part of Fastly', url: 'https://www.signalsciences.com/' },
      expect.objectContaining({ marker: '【3:4†source】' }),
      expect.objectContaining({ marker: '【3:7†source】' }),
    ]);
  });

  it('skips the modern export’s corrupted entry (no-mapping) and reads the conversations around it', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/librechat_chatgpt-modern-export.json'));
    expect(items.map((i) => i.kind)).toEqual(['conversation', 'skip', 'conversation']);
    expect(skips(items)).toEqual([expect.objectContaining({ item: '6b0f0d9c-0000-4000-8000-000000000002', reason: 'no-mapping' })]);
    const deploy = byId(items, '6b0f0d9c-0000-4000-8000-000000000001');
    expect(deploy.messages.map((m) => m.sourceId)).toEqual(['user-1', 'assistant-1', 'user-2', 'assistant-2']);
    // The user_editable_context node stays out of the thread; the custom instructions are kept.
    expect(deploy.metadata.customInstructions).toEqual({ userProfile: 'The user is an SRE.', userInstructions: 'Answer concisely.' });
    expect(deploy.metadata.hidden).toEqual([expect.objectContaining({ sourceId: 'ctx-node', reason: 'context' })]);
    expect(deploy.metadata.defaultModelSlug).toBe('gpt-5-thinking');
    expect(deploy.messages[3]!.metadata.modelSlug).toBe('o4-mini');
    expect(deploy.createdAt).toBe('2025-08-24T01:46:40.123Z');
    expect(byId(items, '6b0f0d9c-0000-4000-8000-000000000003').messages.map((m) => m.content)).toEqual(['Something with anchovies?', 'Puttanesca.']);
  });
});

describe.skipIf(!hasChatExports)('ChatGPT edge cases (pulsar collections keyed by name)', () => {
  const zipEntries = new Set(['conversations.json', 'file_example_123-example.zip', 'images/image_456-sanitized.png']);

  it('reads each edge case as it should', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/pulsar_edgecases_by_name.json'), { zipEntries });
    // Keyed by name: the key is the conversation id when the conversation has none.
    expect(items.map((i) => (i.kind === 'conversation' ? i.conversationId : `${i.kind}:${i.kind === 'skip' ? i.reason : ''}`))).toEqual([
      'linear',
      'regenerate',
      'attachment',
      'skip:missing-parent',
      'skip:cycle',
      'unicode',
      'unknownPart',
      'structuralHidden',
    ]);
    const linear = byId(items, 'linear');
    expect(linear.messages.map((m) => [m.sourceId, m.role, m.content, m.createdAt])).toEqual([
      ['m-u1', 'user', 'Hello', '2026-08-09T12:47:12.000Z'],
      ['m-a1', 'assistant', 'Hi there', '2026-08-09T12:48:01.000Z'],
    ]);
    expect(linear.branches).toEqual([]);

    const regenerate = byId(items, 'regenerate');
    expect(regenerate.messages.map((m) => m.content)).toEqual(['Give me an answer', 'NEW ACTIVE ANSWER']);
    expect(regenerate.branches).toEqual([{ fromSourceId: 'm-u1', messages: [expect.objectContaining({ sourceId: 'm-old', content: 'OLD BRANCH ANSWER' })] }]);

    // Listed in metadata only, not in the ZIP (no entry holds its id): named, without bytes.
    expect(byId(items, 'attachment').messages[0]!.attachments).toEqual([{ name: 'example.zip', mimeType: 'application/zip', zipEntry: null, text: null, ref: 'file-example-123' }]);

    expect(skips(items).find((s) => s.reason === 'missing-parent')).toMatchObject({ item: 'missingParent', detail: expect.stringContaining('missing-node') });
    expect(skips(items).find((s) => s.reason === 'cycle')).toMatchObject({ item: 'cycle' });

    const unicode = byId(items, 'unicode');
    expect(unicode.title).toBe('Кириллица и 日本語');
    expect(unicode.messages.map((m) => m.content)).toEqual(['Привет, мир! 👋', 'Здравствуйте — всё работает.']);

    const unknown = byId(items, 'unknownPart').messages[1]!;
    expect(unknown.content).toBe('Visible text');
    expect(unknown.metadata).toMatchObject({ contentType: 'multimodal_text', unknownParts: ['future_widget'] });

    const structural = byId(items, 'structuralHidden');
    expect(structural.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Visible user'],
      ['tool', 'Hidden tool'],
      ['assistant', 'Visible assistant'],
    ]);
    expect(structural.metadata.hidden).toEqual([{ sourceId: 'ms', role: 'system', contentType: 'text', reason: 'system', text: 'Hidden system' }]);
  });

  it('reads each hardening case as it should', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/pulsar_hardening_by_name.json'), { zipEntries });
    expect(items.every((i) => i.kind === 'conversation')).toBe(true);

    const internal = byId(items, 'internalRecipient');
    expect(internal.messages.map((m) => [m.role, m.content])).toEqual([
      ['user', 'Search for this'],
      ['tool', 'TOOL RESULT'],
      ['assistant', 'VISIBLE FINAL ANSWER'],
    ]);
    expect(internal.metadata.hidden).toEqual([expect.objectContaining({ sourceId: 'mi', reason: 'internal-call', recipient: 'browser', text: 'INTERNAL BROWSER COMMAND' })]);

    const reasoning = byId(items, 'reasoning');
    expect(reasoning.messages.map((m) => m.content)).toEqual(['Solve it', 'PUBLIC RESULT']);
    expect(reasoning.messages[1]!.metadata.reasoning).toEqual([
      { contentType: 'thoughts', text: 'PRIVATE THOUGHTS' },
      { contentType: 'reasoning_recap', text: 'PRIVATE REASONING RECAP' },
    ]);

    // The pointer and the metadata list name one file: one attachment, found in the ZIP by its id.
    for (const [id, name, pointer] of [
      ['duplicateSediment', 'example.zip', 'sediment://file_example_123'],
      ['duplicateFileService', 'example-archive.zip', 'file-service://file_example_123'],
    ] as const) {
      const message = byId(items, id).messages[0]!;
      expect(message.content).toBe('See attachment');
      expect(message.attachments).toEqual([{ name, mimeType: 'application/zip', zipEntry: 'file_example_123-example.zip', text: null, ref: pointer }]);
    }

    expect(byId(items, 'knownImage').messages[0]!.attachments).toEqual([
      { name: 'image_456', mimeType: 'image/png', zipEntry: 'images/image_456-sanitized.png', text: null, ref: 'sediment://image_456' },
    ]);
  });

  it('leaves zipEntry null when the export is a plain file', async () => {
    const items = await parseAll(parseChatGpt, readExport('chatgpt/pulsar_hardening_by_name.json'));
    expect(byId(items, 'knownImage').messages[0]!.attachments).toEqual([{ name: 'image_456', mimeType: null, zipEntry: null, text: null, ref: 'sediment://image_456' }]);
  });
});

/** Conversations the test builds, for what no sample shows. */
function node(id: string, parent: string | null, children: string[], message: Record<string, unknown> | null) {
  return { id, parent, children, message };
}
function msg(id: string, role: string, text: string, extra: Record<string, unknown> = {}) {
  return { id, author: { role }, create_time: null, content: { content_type: 'text', parts: [text] }, metadata: {}, ...extra };
}

describe('ChatGPT trees the samples do not show', () => {
  it('never hangs on a cycle reachable only through children', async () => {
    // A root whose child lists the root again: the parent links are sound, the children loop.
    const mapping = {
      r: node('r', null, ['a'], null),
      a: node('a', 'r', ['b', 'r'], msg('a', 'user', 'A')),
      b: node('b', 'a', ['a'], msg('b', 'assistant', 'B')),
    };
    const [c] = conversations(await parseAll(parseChatGpt, [{ id: 'loop', mapping, current_node: 'b' }]));
    expect(c!.messages.map((m) => m.content)).toEqual(['A', 'B']);
    expect(c!.branches).toEqual([]);
  });

  it('keeps every leaf of a fork inside a branch, each message once, the inner fork naming its parent', async () => {
    const mapping = {
      r: node('r', null, ['u'], null),
      u: node('u', 'r', ['a1', 'a2'], msg('u', 'user', 'Q')),
      a1: node('a1', 'u', [], msg('a1', 'assistant', 'thread answer', { create_time: 3 })),
      a2: node('a2', 'u', ['f1', 'f2'], msg('a2', 'assistant', 'old answer', { create_time: 1 })),
      f1: node('f1', 'a2', [], msg('f1', 'user', 'older follow-up', { create_time: 2 })),
      f2: node('f2', 'a2', [], msg('f2', 'user', 'newer follow-up', { create_time: 2.5 })),
    };
    const [c] = conversations(await parseAll(parseChatGpt, [{ id: 'forks', mapping, current_node: 'a1' }]));
    expect(c!.messages.map((m) => m.content)).toEqual(['Q', 'thread answer']);
    expect(c!.branches.map((b) => [b.fromSourceId, b.messages.map((m) => m.content)])).toEqual([
      ['u', ['old answer', 'newer follow-up']],
      ['u', ['older follow-up']],
    ]);
    expect(c!.branches[0]!.messages[0]!.metadata.parentSourceId).toBeUndefined();
    expect(c!.branches[1]!.messages[0]!.metadata.parentSourceId).toBe('a2');
    const ids = [...c!.messages, ...c!.branches.flatMap((b) => b.messages)].map((m) => m.sourceId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('ends the thread at the newest leaf when current_node is absent, and says so', async () => {
    const mapping = {
      r: node('r', null, ['u'], null),
      u: node('u', 'r', ['a', 'b'], msg('u', 'user', 'Q', { create_time: 1 })),
      a: node('a', 'u', [], msg('a', 'assistant', 'newer', { create_time: 5 })),
      b: node('b', 'u', [], msg('b', 'assistant', 'older', { create_time: 3 })),
    };
    const [c] = conversations(await parseAll(parseChatGpt, [{ id: 'no-current', mapping }]));
    expect(c!.messages.map((m) => m.content)).toEqual(['Q', 'newer']);
    expect(c!.metadata.threadEnd).toBe('newest-leaf');
    expect(c!.branches).toEqual([{ fromSourceId: 'u', messages: [expect.objectContaining({ content: 'older' })] }]);
  });

  it('reads garbage times as no time, code with its language, and the private-use citation form', async () => {
    const mapping = {
      r: node('r', null, ['u'], null),
      u: node('u', 'r', ['a'], { ...msg('u', 'user', 'Q'), create_time: 'yesterday' }),
      a: node('a', 'u', ['c'], { ...msg('a', 'assistant', 'Yes\ue200cite\ue202turn0search3\ue201 indeed.'), create_time: 1e30 }),
      c: node('c', 'a', [], { id: 'c', author: { role: 'assistant' }, content: { content_type: 'code', language: 'python', text: 'print(1)' }, metadata: {} }),
    };
    const [c] = conversations(await parseAll(parseChatGpt, [{ id: 'misc', mapping, current_node: 'c', create_time: Number.NaN }]));
    expect(c!.createdAt).toBeNull();
    expect(c!.messages.map((m) => m.createdAt)).toEqual([null, null, null]);
    expect(c!.messages[1]!.content).toBe('Yes indeed.');
    expect(c!.messages[1]!.metadata.citations).toEqual([{ marker: '\ue200cite\ue202turn0search3\ue201' }]);
    expect(c!.messages[2]!.content).toBe('```python\nprint(1)\n```');
    expect(c!.messages[2]!.metadata).toMatchObject({ contentType: 'code', language: 'python' });
  });

  it('keeps a second root’s messages as a branch, and repeated message ids apart', async () => {
    const mapping = {
      r: node('r', null, ['u'], null),
      u: node('u', 'r', ['a'], msg('same', 'user', 'Q')),
      a: node('a', 'u', [], msg('same', 'assistant', 'A')),
      r2: node('r2', null, [], msg('other', 'user', 'stray')),
    };
    const [c] = conversations(await parseAll(parseChatGpt, [{ id: 'two-roots', mapping, current_node: 'a' }]));
    expect(c!.messages.map((m) => [m.sourceId, m.content])).toEqual([
      ['same', 'Q'],
      ['same#a', 'A'],
    ]);
    expect(c!.branches).toEqual([{ fromSourceId: null, messages: [expect.objectContaining({ sourceId: 'other', content: 'stray' })] }]);
  });

  it('turns a value that is no conversation into a skip and goes on', async () => {
    const good = { id: 'good', mapping: { r: node('r', null, [], msg('r', 'user', 'hi')) }, current_node: 'r' };
    const items = await parseAll(parseChatGpt, [42, { mapping: 'nope' }, { id: 'bad-node', mapping: { x: 7 } }, good]);
    expect(items.map((i) => (i.kind === 'skip' ? i.reason : i.kind))).toEqual(['invalid', 'invalid', 'invalid', 'conversation']);
  });

  it('derives a stable id from the content when a conversation has none', async () => {
    const conversation = { title: 't', mapping: { r: node('r', null, [], msg('r', 'user', 'hi')) } };
    const [a] = conversations(await parseAll(parseChatGpt, [conversation]));
    const [b] = conversations(await parseAll(parseChatGpt, [structuredClone(conversation)]));
    expect(a!.conversationId).toMatch(/^chatgpt-[0-9a-f]{24}$/);
    expect(b!.conversationId).toBe(a!.conversationId);
  });
});
