import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { HashedEmbedder, Memex, type ContextWindow, type Message } from '../../src/index.js';
import { BACKENDS, backendConfig } from '../helpers/backends.js';
import { modelEnv } from '../helpers/model.js';
import { tempDir } from '../helpers/tmp.js';

const opened: Memex[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((m) => m.close()));
});

/** Every message of the session, oldest first, read without the window's kept turns. */
async function allMessages(memex: Memex, sessionId: string): Promise<Message[]> {
  const out: Message[] = [];
  for await (const message of memex.messages.stream('alice', sessionId)) out.push(message);
  return out;
}

/** The window's last turns are the session's newest messages, in order. */
function expectNewest(window: ContextWindow, history: readonly Message[]): void {
  const n = window.report.recent.messages;
  expect(window.report.recent.total).toBe(history.length);
  const shown = window.messages.slice(window.messages.length - n).map((m) => m.content);
  expect(shown).toEqual(history.slice(history.length - n).map((m) => m.content));
}

const Step = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), count: fc.integer({ min: 1, max: 12 }) }),
  fc.record({ kind: fc.constant('trash' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('purge' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('restore' as const) }),
  fc.record({ kind: fc.constant('window' as const), budget: fc.constantFrom(300, 1200, 6000) }),
);

describe.each(BACKENDS)('windows read the turns kept from the last window on %s', (backend) => {
  it('show the newest messages as stored whatever changed the session between windows (appends, trash, restore, purge)', async () => {
    const dataDir = await tempDir('memex-recent-');
    const memex = await Memex.open({ dataDir, env: modelEnv, embedder: new HashedEmbedder(), config: await backendConfig(backend, dataDir), onWarning: () => undefined });
    opened.push(memex);
    await memex.users.create({ id: 'alice' });
    let written = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(Step, { minLength: 1, maxLength: 14 }), async (steps) => {
        const session = await memex.sessions.create('alice');
        const trashed: string[] = [];
        for (const step of [...steps, { kind: 'window' as const, budget: 6000 }]) {
          const history = await allMessages(memex, session.id);
          if (step.kind === 'append') {
            await memex.messages.appendMany('alice', session.id, Array.from({ length: step.count }, (_, i) => ({ role: i % 2 ? ('assistant' as const) : ('user' as const), content: `message ${written++} of ${i}` })));
          } else if ((step.kind === 'trash' || step.kind === 'purge') && history.length > 0) {
            const victim = history[step.at % history.length] as Message;
            await memex.messages.delete('alice', session.id, victim.id, { purge: step.kind === 'purge' });
            if (step.kind === 'trash') trashed.push(victim.id);
          } else if (step.kind === 'restore' && trashed.length > 0) {
            await memex.messages.restore('alice', session.id, trashed.pop() as string);
          } else if (step.kind === 'window' && history.length > 0) {
            const window = await memex.buildContext('alice', { sessionId: session.id, budget: step.budget, reserve: 50, include: { memories: false, summary: false } });
            expectNewest(window, history);
          }
        }
      }),
      { numRuns: backend === 'flat' ? 40 : 12 },
    );
  });
});
