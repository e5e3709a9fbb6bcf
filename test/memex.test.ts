import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Memex } from '../src/index.js';
import { BACKENDS, backendConfig, type Backend } from './helpers/backends.js';
import { expectCode } from './helpers/errors.js';
import { modelEnv } from './helpers/model.js';
import { tempDir } from './helpers/tmp.js';

const LOCOMO = fileURLToPath(new URL('../../shared/eval/locomo/locomo10.json', import.meta.url));

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

async function openMemex(dataDir: string, backend: Backend = 'flat'): Promise<Memex> {
  const memex = await Memex.open({ dataDir, env: modelEnv, config: await backendConfig(backend, dataDir) });
  opened.push(memex);
  return memex;
}

describe('Memex facade', () => {
  it('opens a data dir from options, config and environment', async () => {
    const dir = await tempDir();
    const memex = await Memex.open({ env: { ...modelEnv, MEMEX_DATA_DIR: join(dir, 'env-data'), MEMEX_FSYNC: 'always' }, cwd: dir });
    opened.push(memex);
    expect(memex.config).toMatchObject({ dataDir: join(dir, 'env-data'), fsync: 'always' });
    await expectCode(memex.users.get('default'), 'MEMEX_USER_NOT_FOUND');
    expect((await memex.users.ensure('default')).id).toBe('default');
    expect((await memex.users.ensure('default')).id).toBe('default');
  });

});

describe.each(BACKENDS)('Memex facade on %s', (backend) => {
  it('finds a persona by id or by name, ignoring case (what --persona <name> needs)', async () => {
    const memex = await openMemex(join(await tempDir(), 'data'), backend);
    await memex.users.create({ id: 'alice' });
    const agent = await memex.personas.create('alice', { name: 'Travel agent', instructions: 'Plan trips.' });
    const tutor = await memex.personas.create('alice', { id: 'tutor', name: 'Math tutor', instructions: 'Explain.' });
    expect((await memex.personas.get('alice', agent.id)).id).toBe(agent.id);
    expect((await memex.personas.get('alice', 'travel AGENT')).id).toBe(agent.id);
    expect((await memex.personas.get('alice', 'tutor')).id).toBe(tutor.id);
    expect((await memex.personas.findByName('alice', 'math tutor'))?.id).toBe(tutor.id);
    expect(await memex.personas.findByName('alice', 'nobody')).toBeNull();
    await expectCode(memex.personas.get('alice', 'nobody at all'), 'MEMEX_PERSONA_NOT_FOUND');
    await expectCode(memex.personas.create('alice', { name: 'TRAVEL AGENT', instructions: '' }), 'MEMEX_PERSONA_EXISTS');
    await expectCode(memex.personas.get('ghost', 'tutor'), 'MEMEX_USER_NOT_FOUND');
  });

  it('accepts and keeps the OpenAI chat message shape: name, tool_calls, tool_call_id, content parts', async () => {
    const dataDir = join(await tempDir(), 'data');
    let memex = await openMemex(dataDir, backend);
    await memex.users.create({ id: 'alice' });
    const session = await memex.sessions.create('alice');
    const call = { id: 'call_9', type: 'function' as const, function: { name: 'lookup', arguments: '{"q":"lisbon"}' } };
    const image = { type: 'image_url' as const, image_url: { url: 'https://example.com/tram.jpg' } };
    const written = await memex.messages.appendMany('alice', session.id, [
      { role: 'user', name: 'ana', content: [{ type: 'text', text: 'The yellow tram in Lisbon' }, image, { type: 'text', text: 'climbs to Graça.' }] },
      { role: 'user', content: [image] },
      { role: 'assistant', content: null, tool_calls: [call] },
      { role: 'assistant', tool_calls: [call], content: 'Looking it up.' },
      { role: 'tool', tool_call_id: 'call_9', toolName: 'lookup', content: 'Tram 28 runs every 12 minutes.' },
      { role: 'system', content: 'plain text stays format 1' },
    ]);
    expect(written[0]).toMatchObject({ v: 2, role: 'user', name: 'ana', content: 'The yellow tram in Lisbon\nclimbs to Graça.', parts: [{ type: 'text', text: 'The yellow tram in Lisbon' }, image, { type: 'text', text: 'climbs to Graça.' }] });
    expect(written[1]).toMatchObject({ v: 2, content: '', parts: [image] });
    expect(written[2]).toMatchObject({ v: 2, role: 'assistant', content: '', toolCalls: [call] });
    expect(written[3]).toMatchObject({ content: 'Looking it up.', toolCalls: [call] });
    expect(written[4]).toMatchObject({ v: 1, role: 'tool', toolCallId: 'call_9', toolName: 'lookup' });
    expect(written[5]).toEqual(expect.objectContaining({ v: 1, content: 'plain text stays format 1' }));
    expect(written[5]).not.toHaveProperty('parts');
    await memex.close();
    opened.splice(opened.indexOf(memex), 1);
    memex = await openMemex(dataDir, backend);
    expect((await memex.messages.list('alice', session.id)).messages).toEqual(written);
    // The text of the parts is what is searched.
    const { hits } = await memex.search('alice', 'yellow tram Graça', { k: 1, mode: 'lexical' });
    expect(hits[0]?.source.messageId).toBe(written[0]?.id);

    for (const bad of [
      { role: 'user', content: 'x', tool_calls: [call] },
      { role: 'assistant', content: 'x', tool_call_id: 'call_9' },
      { role: 'user', content: null },
      { role: 'assistant' },
      { role: 'tool', content: 'x', tool_call_id: 'a', toolCallId: 'b' },
      { role: 'user', content: [{ type: 'audio', data: 'x' }] },
      { role: 'user', content: [{ type: 'image_url', image_url: { url: '' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f' } }] },
    ]) {
      await expectCode(memex.messages.append('alice', session.id, bad as never), 'MEMEX_INVALID_INPUT');
    }
  });

  it('exports a session as Markdown and as JSON that round-trips', async () => {
    const memex = await openMemex(join(await tempDir(), 'data'), backend);
    await memex.users.create({ id: 'alice' });
    const persona = await memex.personas.create('alice', { name: 'Travel agent', instructions: 'Plan trips.' });
    const session = await memex.sessions.create('alice', { personaId: persona.id });
    const { file } = await memex.files.put('alice', session.id, { source: { bytes: Buffer.from('%PDF-1.7 fake') }, name: 'ticket.pdf' });
    const written = await memex.messages.appendMany('alice', session.id, [
      { role: 'user', content: 'Here is my ticket.', attachments: [{ fileId: file.id }] },
      { role: 'assistant', content: 'Thanks — **Lisbon**, 3 May.' },
    ]);
    let md = '';
    for await (const piece of memex.sessions.export('alice', session.id, 'md')) md += piece;
    expect(md).toContain('# Here is my ticket.');
    expect(md).toContain('- Persona: Travel agent');
    expect(md).toContain('> Attachment: ticket.pdf');
    expect(md).toContain('## Assistant · ');
    let text = '';
    for await (const piece of memex.sessions.export('alice', session.id, 'json')) text += piece;
    const doc = JSON.parse(text);
    expect(doc.messages).toEqual(written);
    expect(doc.files).toEqual([file]);
    expect(doc.persona).toEqual(persona);
  });
});

function parseLocomoDate(text: string): string {
  // "1:56 pm on 8 May, 2023"
  const match = /^(\d+):(\d+) (am|pm) on (\d+) (\w+), (\d{4})$/.exec(text.trim());
  if (!match) throw new Error(`unexpected LoCoMo date ${text}`);
  const [, h, m, ampm, day, month, year] = match;
  const hour = (Number(h) % 12) + (ampm === 'pm' ? 12 : 0);
  return new Date(`${month} ${day}, ${year} ${hour}:${m}:00 UTC`).toISOString();
}

describe.runIf(existsSync(LOCOMO)).each(BACKENDS)('real conversations (LoCoMo conv-26) on %s', (backend) => {
  it('stores 19 sessions and 419 turns and gives them back exactly', async () => {
    const [sample] = JSON.parse(readFileSync(LOCOMO, 'utf8')) as { conversation: Record<string, unknown> }[];
    const conversation = sample!.conversation;
    const memex = await openMemex(join(await tempDir(), 'data'), backend);
    await memex.users.create({ id: 'caroline' });
    const expected = new Map<string, string[]>();
    let turns = 0;
    for (let n = 1; Array.isArray(conversation[`session_${n}`]); n++) {
      const dialogue = conversation[`session_${n}`] as { speaker: string; dia_id: string; text: string }[];
      const start = Date.parse(parseLocomoDate(conversation[`session_${n}_date_time`] as string));
      const session = await memex.sessions.create('caroline', { createdAt: new Date(start).toISOString(), metadata: { locomoSession: n } });
      const written = await memex.messages.appendMany(
        'caroline',
        session.id,
        dialogue.map((turn, i) => ({
          role: turn.speaker === conversation.speaker_a ? ('user' as const) : ('assistant' as const),
          content: `${turn.speaker}: ${turn.text}`,
          createdAt: new Date(start + i * 1000).toISOString(),
          metadata: { diaId: turn.dia_id },
        })),
      );
      expected.set(session.id, written.map((m) => m.content));
      turns += written.length;
    }
    expect(expected.size).toBe(19);
    expect(turns).toBe(419);

    await memex.close();
    opened.pop();
    const reopened = await openMemex(memex.config.dataDir, backend);
    const page = await reopened.sessions.list('caroline', { limit: 100 });
    expect(page.total).toBe(19);
    // Most recent conversation first: the listing follows the dialogue's own dates.
    const lastActive = page.sessions.map((s) => s.lastMessageAt!);
    expect([...lastActive].sort().reverse()).toEqual(lastActive);
    for (const summary of page.sessions) {
      const streamed: string[] = [];
      for await (const message of reopened.messages.stream('caroline', summary.id)) streamed.push(message.content);
      expect(streamed).toEqual(expected.get(summary.id));
      expect(summary.messageCount).toBe(streamed.length);
      // Titled from the session's first user turn (speaker A), cut at a word boundary.
      const firstUser = streamed.find((c) => c.startsWith(`${conversation.speaker_a as string}:`))!;
      expect(summary.titleSource).toBe('auto');
      expect(firstUser.replace(/\s+/g, ' ').startsWith(summary.title!.replace(/…$/, ''))).toBe(true);
      // Every turn was embedded on append (close waited for it): each has rows whose spans map back to it.
      const vectors = await reopened.vectors.read('caroline', summary.id);
      const covered = new Set(vectors.lines.map((line) => (line.source.kind === 'message' ? line.source.messageId : '')));
      expect(covered.size).toBe(streamed.length);
      for (const line of vectors.lines) expect(streamed.some((content) => content.slice(line.span.start, line.span.end) === line.text)).toBe(true);
    }
  });
});

if (!existsSync(LOCOMO)) {
  describe('real conversations', () => {
    it.skip(`skipped: LoCoMo not found at ${LOCOMO} (it lives in ../shared/eval beside the clone)`, () => undefined);
  });
}
