import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex } from '../../src/index.js';
import { BACKENDS, backendConfig, type Backend } from '../helpers/backends.js';
import { expectCode } from '../helpers/errors.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

beforeAll(async () => {
  // The test database starts here (PGlite takes seconds), not inside the first test's time.
  const warm = await mkdtemp(join(tmpdir(), 'memex-warm-'));
  await backendConfig('postgres', warm);
  await rm(warm, { recursive: true, force: true });
}, 120_000);

const open: Memex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memex) => memex.close()));
});

// Windows here recall nothing (`memories: 0`): what they show is the panel's own history, which the
// hashed embedder (a real, lexical one) embeds without loading a model.
async function openMemex(backend: Backend, dir?: string): Promise<Memex> {
  const dataDir = dir ?? (await tempDir());
  const memex = await Memex.open({ dataDir, env: modelEnv, embedder: new HashedEmbedder(), config: await backendConfig(backend, dataDir) });
  open.push(memex);
  return memex;
}

describe.each(BACKENDS)('panels on %s', (backend) => {
  it("a participant's window has its persona, its own turns as the assistant's, the others' labelled by name, and its own notes", async () => {
    const dir = await tempDir();
    const memex = await openMemex(backend, dir);
    await memex.users.create({ id: 'alice' });
    const critic = await memex.personas.create('alice', { name: 'Critic', instructions: 'You find the weak points.' });
    const optimist = await memex.personas.create('alice', { name: 'Optimist', instructions: 'You find the upside.' });
    const panel = await memex.panels.create('alice', { personas: ['critic', optimist.id], title: 'Should we move to Lisbon?' });
    expect(panel.participants).toEqual([critic.id, optimist.id]);
    await memex.messages.append('alice', panel.id, { role: 'user', content: 'Should we move to Lisbon next year?' });
    const said = await memex.panels.say('alice', panel.id, { persona: 'Optimist', content: 'The light and the food are wonderful.' });
    expect(said).toMatchObject({ role: 'assistant', personaId: optimist.id });
    await memex.panels.say('alice', panel.id, { persona: critic.id, content: 'Rents have doubled in five years.' });
    await memex.notes.add('alice', { text: 'Alice works remotely.' });
    await memex.notes.add('alice', { text: 'The critic remembers the 2019 rent figures.', metadata: { personaId: critic.id } });

    const forCritic = await memex.buildContext('alice', { sessionId: panel.id, budget: 4000, memories: 0, participant: critic.id });
    const text = (m: { content: unknown }): string => JSON.stringify(m.content);
    expect(forCritic.messages[0]).toMatchObject({ role: 'system' });
    expect(text(forCritic.messages[0] as { content: unknown })).toContain('You find the weak points.');
    expect(forCritic.messages.some((m) => text(m).includes('You find the upside.'))).toBe(false);
    expect(forCritic.messages.some((m) => text(m).includes('2019 rent figures'))).toBe(true);
    expect(forCritic.messages.some((m) => text(m).includes('works remotely'))).toBe(true);
    const turns = forCritic.messages.slice(-3);
    expect(turns).toEqual([
      { role: 'user', content: 'Should we move to Lisbon next year?' },
      { role: 'user', content: '[Optimist] The light and the food are wonderful.' },
      { role: 'assistant', content: 'Rents have doubled in five years.' },
    ]);

    const forOptimist = await memex.buildContext('alice', { sessionId: panel.id, budget: 4000, memories: 0, participant: optimist.id });
    expect(text(forOptimist.messages[0] as { content: unknown })).toContain('You find the upside.');
    expect(forOptimist.messages.some((m) => text(m).includes('2019 rent figures'))).toBe(false);
    expect(forOptimist.messages.slice(-2)).toEqual([
      { role: 'assistant', content: 'The light and the food are wonderful.' },
      { role: 'user', content: '[Critic] Rents have doubled in five years.' },
    ]);

    // What was written is read back after a restart.
    await memex.close();
    open.splice(open.indexOf(memex), 1);
    const again = await openMemex(backend, dir);
    expect((await again.sessions.get('alice', panel.id)).participants).toEqual([critic.id, optimist.id]);
    expect((await again.messages.get('alice', panel.id, said.id)).personaId).toBe(optimist.id);
  });

  it('refuses a speaker or a window for a persona that is not a participant, and a persona on a user turn', async () => {
    const memex = await openMemex(backend);
    await memex.users.create({ id: 'alice' });
    const a = await memex.personas.create('alice', { name: 'A', instructions: 'a' });
    const b = await memex.personas.create('alice', { name: 'B', instructions: 'b' });
    const panel = await memex.panels.create('alice', { personas: [a.id] });
    await expectCode(memex.panels.say('alice', panel.id, { persona: b.id, content: 'hi' }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.panels.say('alice', panel.id, { persona: 'nobody', content: 'hi' }), 'MEMEX_PERSONA_NOT_FOUND');
    await expectCode(memex.panels.create('alice', { personas: [] }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.buildContext('alice', { sessionId: panel.id, budget: 4000, participant: b.id }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.messages.append('alice', panel.id, { role: 'user', content: 'x', personaId: a.id }), 'MEMEX_INVALID_INPUT');
    await expectCode(memex.messages.append('alice', panel.id, { role: 'assistant', content: 'x', personaId: 'persona_gone' }), 'MEMEX_PERSONA_NOT_FOUND');
    const joined = await memex.panels.join('alice', panel.id, 'B');
    expect(joined.participants).toEqual([a.id, b.id]);
    expect((await memex.panels.say('alice', panel.id, { persona: 'b', content: 'now I may speak' })).personaId).toBe(b.id);
  });
});
