import { describe, expect, it } from 'vitest';
import { parseClaudeConversations, parseClaudeMemories, parseClaudeProjects, parseClaudeUsers } from '../../src/import/claude.js';
import type { ImportedConversation } from '../../src/import/model.js';
import { CHAT_EXPORTS_MISSING, hasChatExports, parseAll, readExport } from './values.js';

if (!hasChatExports) console.warn(CHAT_EXPORTS_MISSING);

describe.skipIf(!hasChatExports)('Claude export (the four real sample files)', () => {
  it('conversations.json: roles, times, and the thinking block kept apart from the answer', async () => {
    const items = await parseAll(parseClaudeConversations, readExport('claude/yaleman_conversations.json'));
    expect(items).toHaveLength(1);
    const c = items[0] as ImportedConversation;
    expect(c).toMatchObject({
      kind: 'conversation',
      source: 'claude',
      conversationId: 'b49c0fc0-85d8-475c-bd2d-ee89f31f592c',
      title: 'Bleep bloop',
      createdAt: '2025-07-06T03:10:13.076Z',
      updatedAt: '2025-07-06T03:10:27.139Z',
      branches: [],
      metadata: { accountId: 'a55a05c0-c560-4854-b7b3-f939c32e2078' },
    });
    expect(c.messages.map((m) => [m.sourceId, m.role, m.createdAt])).toEqual([
      ['f5885afd-1881-4093-9616-c296a8d71fa6', 'user', '2025-07-06T03:10:13.609Z'],
      ['0abf9869-20f7-4b45-99e3-4381e9d37317', 'assistant', '2025-07-06T03:10:24.798Z'],
    ]);
    const answer = c.messages[1]!;
    // The `text` field runs thinking and answer together; the blocks keep them apart.
    expect(answer.content.startsWith('Dog saliva does contain some antibacterial compounds')).toBe(true);
    expect(answer.content).not.toContain('The user is asking');
    expect(answer.metadata.thinking).toMatch(/^The user is asking about the belief/);
    expect(c.messages[0]!.metadata).toEqual({});
  });

  it('projects.json: each doc becomes a document of its project', async () => {
    const items = await parseAll(parseClaudeProjects, readExport('claude/yaleman_projects.json'));
    expect(items).toEqual([
      {
        kind: 'document',
        source: 'claude',
        documentId: '3860d26f-c378-4084-9512-c86fa5a07dd3',
        collectionId: '0197b0fe-90c6-74a5-9da9-aa92c7e1f841',
        collectionTitle: 'How to use Claude',
        name: 'Claude prompting guide.md',
        text: expect.stringContaining('# Claude prompting guide'),
        createdAt: '2025-06-27T10:46:02.691Z',
        metadata: { projectDescription: expect.stringContaining('An example project'), starterProject: true },
      },
    ]);
  });

  it('memories.json: the conversations memory becomes a note with an id stable across exports', async () => {
    const first = await parseAll(parseClaudeMemories, readExport('claude/yaleman_memories.json'));
    const again = await parseAll(parseClaudeMemories, readExport('claude/yaleman_memories.json'));
    expect(first).toEqual([
      {
        kind: 'note',
        source: 'claude',
        noteId: expect.stringMatching(/^claude-memory-[0-9a-f]{24}$/),
        text: 'This is some nonsense',
        metadata: { imported: true, accountId: 'a55a05c0-c560-4854-b7b3-f939c32e2078', memoryKind: 'conversations' },
      },
    ]);
    expect(again).toEqual(first);
  });

  it('users.json: the account, without its e-mail address or phone number', async () => {
    const items = await parseAll(parseClaudeUsers, readExport('claude/yaleman_users.json'));
    expect(items).toEqual([{ kind: 'account', source: 'claude', accountId: 'a55a05c0-c560-4854-b7b3-f939c32e2078', name: 'test_user_1' }]);
    expect(JSON.stringify(items)).not.toContain('example.com');
  });
});

describe('Claude shapes the samples do not show', () => {
  it('reads attachments with extracted content, files, tool blocks, and a message with no blocks', async () => {
    const conversation = {
      uuid: 'c1',
      name: 'Files',
      created_at: 'garbage',
      chat_messages: [
        {
          uuid: 'm1',
          sender: 'human',
          text: 'Read this',
          created_at: '2025-01-02T03:04:05Z',
          attachments: [{ file_name: 'notes.txt', file_type: 'text/plain', file_size: 12, extracted_content: 'hello notes' }],
          files: [{ file_name: 'photo.png', file_uuid: 'f-1' }],
        },
        {
          uuid: 'm2',
          sender: 'assistant',
          text: 'ignored when blocks exist',
          content: [
            { type: 'tool_use', name: 'web_search', input: { query: 'x' } },
            { type: 'text', text: 'First.' },
            { type: 'text', text: 'Second.' },
            { type: 'mystery' },
          ],
        },
        { uuid: 'm3', sender: 'robot', text: 'who?' },
      ],
    };
    const [c] = (await parseAll(parseClaudeConversations, [conversation])) as ImportedConversation[];
    expect(c!.createdAt).toBeNull();
    expect(c!.messages[0]).toMatchObject({
      content: 'Read this',
      createdAt: '2025-01-02T03:04:05.000Z',
      attachments: [
        { name: 'notes.txt', mimeType: 'text/plain', zipEntry: null, text: 'hello notes', ref: null },
        { name: 'photo.png', mimeType: null, zipEntry: null, text: null, ref: 'f-1' },
      ],
    });
    expect(c!.messages[1]!.content).toBe('First.\n\nSecond.');
    expect(c!.messages[1]!.metadata).toEqual({ tools: [{ type: 'tool_use', name: 'web_search', input: { query: 'x' } }], unknownBlocks: ['mystery'] });
    // A sender Claude does not use is counted, not guessed into a role.
    expect(c!.messages).toHaveLength(2);
    expect(c!.metadata.unreadableMessages).toEqual([2]);
  });

  it('turns values that are not conversations, projects, memories or users into skips', async () => {
    expect((await parseAll(parseClaudeConversations, [{ uuid: 'x' }, 3])).map((i) => i.kind === 'skip' && i.reason)).toEqual(['invalid', 'invalid']);
    expect((await parseAll(parseClaudeProjects, [{ name: 'no uuid' }, { uuid: 'p', name: 'Empty', docs: [] }])).map((i) => i.kind === 'skip' && i.reason)).toEqual([
      'invalid',
      'empty-project',
    ]);
    expect((await parseAll(parseClaudeMemories, ['text'])).map((i) => i.kind === 'skip' && i.reason)).toEqual(['invalid']);
    expect((await parseAll(parseClaudeUsers, [{ full_name: 'no uuid' }])).map((i) => i.kind === 'skip' && i.reason)).toEqual(['invalid']);
  });

  it('keeps project memories as notes of their own', async () => {
    const items = await parseAll(parseClaudeMemories, [{ account_uuid: 'acc', conversations_memory: 'general', project_memories: { p1: 'about p1', p2: '' } }]);
    expect(items.map((i) => i.kind === 'note' && [i.text, i.metadata.memoryKind])).toEqual([
      ['general', 'conversations'],
      ['about p1', 'project'],
    ]);
    expect(new Set(items.map((i) => i.kind === 'note' && i.noteId)).size).toBe(2);
  });
});
