import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { json, memex } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('memex panel and memex session fork/merge', () => {
  it("starts a panel, adds a participant's turn, builds its window with --as, forks and merges", { timeout: 120_000 }, async () => {
    const env = { MEMEX_DATA_DIR: join(await tempDir(), 'data') };
    const critic = await json<{ id: string }>(['persona', 'add', 'Critic', '--instructions', 'Find the weak points.'], { env });
    await json(['persona', 'add', 'Optimist', '--instructions', 'Find the upside.'], { env });
    const panel = await json<{ id: string; participants: string[] }>(['panel', 'new', '--persona', 'Critic', '--persona', 'optimist', '--title', 'Lisbon?'], { env });
    expect(panel.participants).toHaveLength(2);
    const question = await json<{ id: string }>(['add', '-s', panel.id, 'Should we move to Lisbon?'], { env });
    const turn = await json<{ personaId: string; role: string }>(['panel', 'say', panel.id, '--as', 'Optimist', 'The food is wonderful.'], { env });
    expect(turn.role).toBe('assistant');
    const window = await json<{ role: string; content: string }[]>(['context', '-s', panel.id, '--as', 'Critic', '--no-memories'], { env });
    expect(window[0]?.content).toContain('Find the weak points.');
    expect(window.at(-1)).toEqual({ role: 'user', content: '[Optimist] The food is wonderful.' });
    const outsider = await memex(['panel', 'say', panel.id, '--as', 'Nobody', 'hi', '--json'], { env });
    expect(JSON.parse(outsider.stderr).error.code).toBe('MEMEX_PERSONA_NOT_FOUND');

    const fork = await json<{ session: { id: string; forkedFrom: unknown; participants: string[] } }>(['session', 'fork', panel.id, question.id], { env });
    expect(fork.session.forkedFrom).toEqual({ sessionId: panel.id, messageId: question.id });
    expect(fork.session.participants).toContain(critic.id);
    const shown = await memex(['session', 'show', panel.id], { env });
    expect(shown.stdout).toContain(`forks:         ${fork.session.id}`);
    const merged = await json<{ messages: number; shared: number; session: { mergedFrom: string[] } }>(['session', 'merge', panel.id, fork.session.id, '--mode', 'concat'], { env });
    expect(merged).toMatchObject({ messages: 2, shared: 1, session: { mergedFrom: [panel.id, fork.session.id] } });
    const lonely = await memex(['session', 'merge', panel.id, '--json'], { env });
    expect(JSON.parse(lonely.stderr).error.code).toBe('MEMEX_INVALID_INPUT');
  });
});
