import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Memex } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { CHAT_EXPORTS, hasChatExports } from '../helpers/export-samples.js';
import { IMAGES } from '../helpers/eval.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';
import { writeZip } from '../helpers/zip.js';

const sample = (...parts: string[]): string => join(CHAT_EXPORTS, ...parts);
const TREE = sample('chatgpt', 'librechat_chatgpt-tree.json');

interface Node {
  id: string;
  parent: string | null;
  children: string[];
  message: { id: string; author: { role: string }; content: { parts?: unknown[] } } | null;
}
interface Conversation {
  title: string;
  current_node: string;
  mapping: Record<string, Node>;
}

/** The tree sample's visible thread, root first: the path from current_node up. */
function thread(conversation: Conversation): Node[] {
  const path: Node[] = [];
  for (let id: string | null = conversation.current_node; id !== null; ) {
    const node = conversation.mapping[id] as Node;
    path.unshift(node);
    id = node.parent;
  }
  return path;
}

const open: Memex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memex) => memex.close()));
});

async function openMemex(backend: Backend, dataDir?: string): Promise<Memex> {
  const dir = dataDir ?? (await tempDir());
  const memex = await Memex.open({ dataDir: dir, env: modelEnv, config: await backendConfig(backend, dir) });
  open.push(memex);
  await memex.users.create({ id: 'alice' });
  await memex.users.create({ id: 'bob' });
  return memex;
}

describe.skipIf(!hasChatExports).each(BACKENDS)('importing chat exports on %s', (backend) => {
  it('a long hidden node is clipped in the session metadata and kept whole beside it (regression: its whole text sat in the metadata every listing reads and the flat store caches, so memory grew with the export)', async () => {
    const memex = await openMemex(backend);
    const long = 'Custom instructions pasted at length. '.repeat(500);
    const [conversation] = JSON.parse(readFileSync(sample('chatgpt', 'librechat_chatgpt-export.json'), 'utf8')) as Record<string, unknown>[];
    const text = JSON.stringify([conversation]).replace('"parts":[""]', `"parts":[${JSON.stringify(long)}]`);
    const path = join(await tempDir(), 'conversations.json');
    await writeFile(path, text);
    const report = await memex.imports.run('alice', path);
    const [sessionId] = report.record.sessions;
    const session = await memex.sessions.get('alice', sessionId as string);
    const hidden = (session.metadata.import as { hidden: { text: string; clipped?: boolean; chars?: number }[] }).hidden;
    const clipped = hidden.find((node) => node.clipped);
    expect(clipped).toMatchObject({ clipped: true, chars: long.length });
    expect(clipped?.text).toBe(long.slice(0, 4000));
    expect(JSON.stringify(session.metadata).length).toBeLessThan(long.length);
    const [file] = await memex.files.list('alice', sessionId as string);
    expect(file?.name).toBe('branches.json');
    const pieces: Uint8Array[] = [];
    for await (const piece of await memex.files.read('alice', sessionId as string, file?.id as string)) pieces.push(piece);
    const extras = JSON.parse(Buffer.concat(pieces).toString()) as { hidden: { text: string }[] };
    expect(extras.hidden.some((node) => node.text === long)).toBe(true);
  });

  it('a ChatGPT tree: the thread in order as a read-only imported session, branches kept beside it, searchable, once', async () => {
    const memex = await openMemex(backend);
    const [conversation] = JSON.parse(readFileSync(TREE, 'utf8')) as Conversation[];
    const report = await memex.imports.run('alice', TREE);
    expect(report).toMatchObject({ dryRun: false, saved: true });
    expect(report.record.counts.conversations).toEqual({ added: 1, updated: 0, unchanged: 0, skipped: 0 });
    const [sessionId] = report.record.sessions;

    // Apart from native sessions: listed only when asked.
    expect((await memex.sessions.list('alice')).total).toBe(0);
    const imported = await memex.sessions.list('alice', { origin: 'imported' });
    expect(imported.sessions.map((s) => [s.id, s.title, s.origin])).toEqual([[sessionId, conversation?.title, { kind: 'imported', source: 'chatgpt', conversationId: expect.any(String) }]]);

    // The visible thread, in order, with the service's ids; hidden system nodes are not in it.
    const visible = thread(conversation as Conversation).filter((node) => node.message && node.message.author.role !== 'system' && (node.message.content.parts ?? []).some((p) => typeof p === 'string' && p.trim() !== ''));
    const messages = (await memex.messages.list('alice', sessionId as string, { limit: 500 })).messages;
    expect(messages.map((m) => m.id)).toEqual(visible.map((node) => node.message?.id));
    expect(messages.map((m) => m.role)).toEqual(visible.map((node) => node.message?.author.role));
    // The two other forks, kept as a file beside the thread.
    const files = await memex.files.list('alice', sessionId as string);
    expect(files.map((f) => f.name)).toEqual(['branches.json']);
    const pieces: Uint8Array[] = [];
    for await (const piece of await memex.files.read('alice', sessionId as string, files[0]?.id as string)) pieces.push(piece);
    const branches = JSON.parse(Buffer.concat(pieces).toString()) as { branches: unknown[] };
    expect(branches.branches.length).toBeGreaterThanOrEqual(2);

    // Searchable like native messages, filtered by origin, and only by its owner.
    const last = messages.at(-1)?.content ?? '';
    const words = last.split(/\s+/).slice(0, 12).join(' ');
    const found = await memex.search('alice', words, { k: 3, origin: 'imported' });
    expect(found.hits.map((hit) => hit.sessionId)).toContain(sessionId);
    // Each hit says where it came from: the service, the conversation and its title (its time is the message's).
    expect(found.hits.find((hit) => hit.sessionId === sessionId)?.imported).toEqual({ source: 'chatgpt', conversationId: expect.any(String), title: conversation?.title });
    expect((await memex.search('alice', words, { k: 3, origin: 'native' })).hits).toEqual([]);
    // By the service it came from.
    expect((await memex.search('alice', words, { k: 3, origin: 'chatgpt' })).hits.map((hit) => hit.sessionId)).toContain(sessionId);
    expect((await memex.search('alice', words, { k: 3, origin: 'claude' })).hits).toEqual([]);
    expect((await memex.search('bob', words, { k: 3 })).hits).toEqual([]);
    await expectCode(memex.sessions.get('bob', sessionId as string), 'MEMEX_SESSION_NOT_FOUND');

    // Read-only: its messages and title are the export's.
    await expectCode(memex.messages.append('alice', sessionId as string, { role: 'user', content: 'more' }), 'MEMEX_SESSION_READ_ONLY');
    await expectCode(memex.sessions.rename('alice', sessionId as string, 'mine now'), 'MEMEX_SESSION_READ_ONLY');
    await expectCode(memex.messages.delete('alice', sessionId as string, messages[0]?.id as string), 'MEMEX_SESSION_READ_ONLY');
    await expectCode(memex.sessions.create('alice', { origin: { kind: 'imported', source: 'chatgpt', conversationId: 'x' } }), 'MEMEX_INVALID_INPUT');

    // Again: nothing added, nothing recorded.
    const again = await memex.imports.run('alice', TREE);
    expect(again.record.counts.conversations).toEqual({ added: 0, updated: 0, unchanged: 1, skipped: 0 });
    expect(again.record.counts.messages.added).toBe(0);
    expect(again.saved).toBe(false);
    expect((await memex.messages.list('alice', sessionId as string, { limit: 500 })).total).toBe(messages.length);
    expect(await memex.imports.list('alice')).toHaveLength(1);
  }, 120_000);

  it('a newer export adds only the new messages and the changed title; --dry-run says so and writes nothing', async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const [conversation] = JSON.parse(readFileSync(TREE, 'utf8')) as Conversation[];
    const path = thread(conversation as Conversation);
    // The older export: the same conversation when it was two turns shorter.
    const older = { ...conversation, current_node: path[path.length - 3]?.id };
    const olderFile = join(dir, 'older.json');
    await writeFile(olderFile, JSON.stringify([older]));
    const first = await memex.imports.run('alice', olderFile);
    const sessionId = first.record.sessions[0] as string;
    const before = (await memex.messages.list('alice', sessionId, { limit: 500 })).total;

    const newer = join(dir, 'newer.json');
    await writeFile(newer, JSON.stringify([{ ...conversation, title: 'A better title' }]));
    const dry = await memex.imports.run('alice', newer, { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, saved: false });
    expect(dry.conversations).toEqual([{ sessionId, title: 'A better title', action: 'updated', newMessages: 2, titleChanged: true }]);
    expect((await memex.messages.list('alice', sessionId, { limit: 500 })).total).toBe(before);
    expect((await memex.sessions.get('alice', sessionId)).title).toBe(conversation?.title);

    const applied = await memex.imports.run('alice', newer);
    expect(applied.record.counts.messages).toEqual({ added: 2, unchanged: before });
    const after = await memex.messages.list('alice', sessionId, { limit: 500 });
    expect(after.total).toBe(before + 2);
    expect(after.messages.map((m) => m.id)).toEqual(thread(conversation as Conversation).filter((n) => after.messages.some((m) => m.id === n.message?.id)).map((n) => n.message?.id));
    expect((await memex.sessions.get('alice', sessionId)).title).toBe('A better title');
  }, 120_000);

  it("Claude's four files: conversations, the project's document, the memory as a note, the account", async () => {
    const memex = await openMemex(backend);
    const files = ['conversations', 'projects', 'memories', 'users'].map((name) => sample('claude', `yaleman_${name}.json`));
    const report = await memex.imports.run('alice', files);
    expect(report.record).toMatchObject({ source: 'claude', account: { id: 'a55a05c0-c560-4854-b7b3-f939c32e2078' } });
    expect(report.record.counts).toMatchObject({ conversations: { added: 1 }, documents: { added: 1 }, notes: { added: 1 } });
    const notes = await memex.notes.list('alice');
    expect(notes.map((n) => [n.text, (n.metadata.imported as { source: string }).source])).toEqual([['This is some nonsense', 'claude']]);
    const sessions = (await memex.sessions.list('alice', { origin: 'imported' })).sessions;
    expect(sessions.map((s) => s.title).sort()).toEqual(['Bleep bloop', 'How to use Claude']);
    // The project's doc is searchable, as an ingested document.
    const hits = (await memex.search('alice', 'Claude prompting guide', { k: 3, sources: ['file'] })).hits;
    expect(hits.length).toBeGreaterThan(0);
    // Thinking is kept apart from the answer.
    const chat = sessions.find((s) => s.title === 'Bleep bloop');
    const reply = (await memex.messages.list('alice', chat?.id as string)).messages.find((m) => m.role === 'assistant');
    expect(reply?.content).not.toContain('The user is asking about');
    expect(JSON.stringify(reply?.metadata)).toContain('The user is asking about');

    // Deleting the import takes what it added.
    await memex.imports.delete('alice', report.record.id);
    expect((await memex.sessions.list('alice', { origin: 'imported' })).total).toBe(0);
    expect(await memex.notes.list('alice')).toEqual([]);
    expect(await memex.imports.list('alice')).toEqual([]);
    await expectCode(memex.imports.delete('alice', report.record.id), 'MEMEX_IMPORT_NOT_FOUND');
  }, 120_000);

  it('Gemini activity: prompts and responses grouped into conversations, feedback and other products skipped and listed', async () => {
    const memex = await openMemex(backend);
    const report = await memex.imports.run('alice', sample('gemini', 'chatlore_MyActivity.json'));
    expect(report.record.source).toBe('gemini');
    expect(report.record.counts.conversations.added).toBeGreaterThan(0);
    expect(report.record.skipped.map((s) => s.reason).sort()).toEqual(expect.arrayContaining(['bad-time', 'feedback', 'not-gemini']));
    const sessions = (await memex.sessions.list('alice', { origin: 'imported' })).sessions;
    const all = (await Promise.all(sessions.map(async (s) => (await memex.messages.list('alice', s.id)).messages))).flat();
    const answer = all.find((m) => m.content.includes('24 hours'));
    expect(answer?.role).toBe('assistant');
    expect(all.some((m) => m.content.includes('ignored()'))).toBe(false);
  }, 120_000);

  it("a ZIP as ChatGPT sends it: the image a message points at is stored and linked", async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const hardening = JSON.parse(readFileSync(sample('chatgpt', 'pulsar_hardening_by_name.json'), 'utf8')) as Record<string, Conversation>;
    const zip = await writeZip(join(dir, 'export.zip'), [
      { name: 'conversations.json', data: JSON.stringify([hardening.knownImage]) },
      { name: 'image_456-photo.png', data: readFileSync(join(IMAGES, 'devatest.png')), method: 'store' },
      { name: 'chat.html', data: '<html></html>' },
    ]);
    const report = await memex.imports.run('alice', zip);
    expect(report.record.counts.attachments).toEqual({ stored: 1, ingested: 1, missing: 0 });
    const sessionId = report.record.sessions[0] as string;
    const [message] = (await memex.messages.list('alice', sessionId)).messages;
    expect(message?.attachments).toHaveLength(1);
    const file = await memex.files.get('alice', sessionId, message?.attachments[0]?.fileId as string);
    expect(file.mimeType).toBe('image/png');
  }, 120_000);

  it('a cancelled import keeps what it wrote, embedded and listed in its record, so it can be deleted', async () => {
    const memex = await openMemex(backend);
    const controller = new AbortController();
    const stopped = memex.imports.run('alice', sample('chatgpt', 'librechat_chatgpt-export.json'), {
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.phase === 'store' && progress.done >= 1) controller.abort();
      },
    });
    await expectCode(stopped, 'MEMEX_ABORTED');
    const [record] = await memex.imports.list('alice');
    expect(record?.sessions).toHaveLength(1);
    expect((await memex.sessions.list('alice', { origin: 'imported' })).sessions.map((s) => s.id)).toEqual(record?.sessions);
    expect((await memex.vectors.status('alice', record?.sessions[0] as string)).rows).toBeGreaterThan(0);
    await memex.imports.delete('alice', record?.id as string);
    expect((await memex.sessions.list('alice', { origin: 'imported' })).total).toBe(0);
  }, 120_000);

  it('a truncated file, an unknown format and a zip bomb get coded errors, with nothing imported', async () => {
    const memex = await openMemex(backend);
    const dir = await tempDir();
    const whole = readFileSync(sample('chatgpt', 'librechat_chatgpt-export.json'), 'utf8');
    const truncated = join(dir, 'conversations.json');
    await writeFile(truncated, whole.slice(0, Math.floor(whole.length * 0.9)));
    await expectCode(memex.imports.run('alice', truncated), 'MEMEX_IMPORT_INVALID');
    const unknown = join(dir, 'other.json');
    await writeFile(unknown, JSON.stringify([{ hello: 'world' }]));
    await expectCode(memex.imports.run('alice', unknown), 'MEMEX_IMPORT_FORMAT_UNKNOWN');
    const bomb = await writeZip(join(dir, 'bomb.zip'), [{ name: 'conversations.json', data: `[${' '.repeat(50 * 1024 * 1024)}]` }]);
    await expectCode(memex.imports.run('alice', bomb), 'MEMEX_ARCHIVE_UNSAFE');
    const traversal = await writeZip(join(dir, 'evil.zip'), [{ name: '../conversations.json', data: whole }]);
    await expectCode(memex.imports.run('alice', traversal), 'MEMEX_ARCHIVE_UNSAFE');
    expect((await memex.sessions.list('alice', { origin: 'all' })).total).toBe(0);
    expect(await memex.imports.list('alice')).toEqual([]);
  }, 120_000);
});
