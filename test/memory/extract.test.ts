import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { useFakeLlm } from '../helpers/fake-llm.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});
const fakeLlm = useFakeLlm();

async function open(backend: Backend, llm = true): Promise<Memex> {
  const dataDir = await tempDir();
  const memex = await Memex.open({
    dataDir,
    env: {},
    embedder: new HashedEmbedder(),
    onWarning: () => undefined,
    config: { ...(await backendConfig(backend, dataDir)), ...(llm ? { llm: { baseUrl: fakeLlm().baseUrl, model: 'memory-model', maxRetries: 0 } } : {}) },
  });
  opened.push(memex);
  await memex.users.create({ id: 'alice' });
  await memex.users.create({ id: 'bob' });
  return memex;
}

const exchange = (text: string) => ({ sessionId: 'ses_x', user: { id: 'msg_u', text }, assistant: { id: 'msg_a', text: 'Noted!' } });
const answer = (operations: unknown[]) => ({ kind: 'text' as const, text: JSON.stringify({ operations }) });

describe.each(BACKENDS)('memory extraction on %s', (backend) => {
  it('adds what the model proposes and updates a note keeping its earlier text; the model sees the notes and the exchange', async () => {
    const memex = await open(backend);
    const diet = await memex.notes.add('alice', { text: 'Alice is vegetarian.', kind: 'fact' });
    fakeLlm().script(
      answer([
        { op: 'add', kind: 'preference', text: 'Alice prefers window seats on flights.' },
        { op: 'update', id: diet.id, text: 'Alice is vegan since 2025.' },
      ]),
    );
    const result = await memex.memory.extract('alice', exchange('I always book a window seat. And I went vegan last year.'));
    expect(result.changes.map((c) => c.op)).toEqual(['add', 'update']);
    expect(result.ignored).toEqual([]);
    // What the model was shown: the existing note with its id, and the exchange.
    const shown = JSON.stringify(fakeLlm().requests[0]?.body.messages);
    expect(shown).toContain(diet.id);
    expect(shown).toContain('window seat');

    const notes = await memex.notes.list('alice');
    const added = notes.find((n) => n.text === 'Alice prefers window seats on flights.');
    expect(added).toMatchObject({ kind: 'preference', pinned: false, metadata: { memory: { source: 'extraction', history: [{ op: 'add', sessionId: 'ses_x', messageId: 'msg_a', model: 'memory-model' }] } } });
    const updated = notes.find((n) => n.id === diet.id);
    expect(updated?.text).toBe('Alice is vegan since 2025.');
    expect(updated?.metadata.memory).toMatchObject({ source: 'user', history: [{ op: 'update', previous: 'Alice is vegetarian.', text: 'Alice is vegan since 2025.' }] });
    // Bob's notes are not Alice's.
    expect(await memex.notes.list('bob')).toEqual([]);
  });

  it('never deletes, ignores unknown ids, repeats and anything over five changes, and a reply that is not JSON changes nothing', async () => {
    const memex = await open(backend);
    const kept = await memex.notes.add('alice', { text: 'Alice lives in Porto.' });
    const bobs = await memex.notes.add('bob', { text: 'Bob lives in Oslo.' });
    fakeLlm().script(
      answer([
        { op: 'delete', id: kept.id },
        { op: 'update', id: bobs.id, text: 'Bob moved.' },
        { op: 'add', text: 'alice lives in porto' },
        ...Array.from({ length: 7 }, (_, i) => ({ op: 'add', text: `Alice fact number ${i}.` })),
        { op: 'none' },
      ]),
    );
    const result = await memex.memory.extract('alice', exchange('Lots of things.'));
    expect(result.changes).toHaveLength(5);
    expect(result.ignored.map((i) => i.reason)).toEqual([
      expect.stringContaining('not an add, update or none'),
      'no note of the user has this id',
      'a note already says this',
      expect.stringContaining('more than 5'),
      expect.stringContaining('more than 5'),
    ]);
    expect((await memex.notes.list('alice')).map((n) => n.text)).toContain('Alice lives in Porto.');
    expect((await memex.notes.list('bob')).map((n) => n.text)).toEqual(['Bob lives in Oslo.']);

    fakeLlm().script({ kind: 'text', text: 'Sure! I will remember that.' });
    await expectCode(memex.memory.extract('alice', exchange('x')), 'MEMEX_LLM_BAD_RESPONSE');
    fakeLlm().script({ kind: 'status', status: 500 });
    await expectCode(memex.memory.extract('alice', exchange('x')), 'MEMEX_LLM_UNAVAILABLE');
    expect(await memex.notes.list('alice')).toHaveLength(6);
  });

  it('is MEMEX_LLM_NOT_CONFIGURED without a model, and calls nothing', async () => {
    const memex = await open(backend, false);
    await expectCode(memex.memory.extract('alice', exchange('x')), 'MEMEX_LLM_NOT_CONFIGURED');
    expect(fakeLlm().requests).toEqual([]);
  });
});
