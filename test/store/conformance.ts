import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Message, NewMessage, Note, Persona, Profile } from '../../src/core/index.js';
import type { RestoredSession, Store } from '../../src/store/index.js';
import { expectCode } from '../helpers/errors.js';

export interface StoreHarness {
  store: Store;
  /** Closes the store and opens a new one over the same data. */
  reopen(): Promise<Store>;
  /** What the backend holds, read beside the store (files and mtimes, or rows): equal before and after a read that must change nothing. */
  fingerprint?(): Promise<unknown>;
}

const BAD_IDS = ['../other', 'a/b', 'a\\b', '..', 'x\0y', 'x'.repeat(129), ''];

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/**
 * The contract every Store backend passes (unstorage-style: one suite, many drivers).
 * `setup` must give a fresh, empty store for each test.
 */
export function describeStoreConformance(name: string, setup: () => Promise<StoreHarness>): void {
  describe(`Store conformance: ${name}`, () => {
    async function withUser(): Promise<{ store: Store; harness: StoreHarness }> {
      const harness = await setup();
      await harness.store.createUser({ id: 'alice', name: 'Alice' });
      return { store: harness.store, harness };
    }

    describe('users', () => {
      it('creates, gets, lists, updates and deletes', async () => {
        const { store } = await setup();
        const alice = await store.createUser({ id: 'alice', name: 'Alice', metadata: { plan: 'pro' } });
        expect(alice).toMatchObject({ id: 'alice', name: 'Alice', metadata: { plan: 'pro' } });
        await store.createUser({ id: 'bob' });
        expect((await store.getUser('bob')).name).toBe('bob');
        expect((await store.listUsers()).map((u) => u.id)).toEqual(['alice', 'bob']);
        expect((await store.updateUser('alice', { name: 'Alice A.' })).name).toBe('Alice A.');
        expect((await store.getUser('alice')).metadata).toEqual({ plan: 'pro' });
        await expectCode(store.createUser({ id: 'alice' }), 'MEMEX_USER_EXISTS');
        await store.deleteUser('alice');
        await expectCode(store.getUser('alice'), 'MEMEX_USER_NOT_FOUND');
        expect((await store.listUsers()).map((u) => u.id)).toEqual(['bob']);
      });

      it('deleting a user deletes everything under them', async () => {
        const { store } = await withUser();
        const session = await store.createSession('alice');
        await store.appendMessages('alice', session.id, [{ role: 'user', content: 'hi' }]);
        await store.addNote('alice', { text: 'Likes tea' });
        expect(await store.listNotes('alice')).toHaveLength(1);
        await store.deleteUser('alice');
        await store.createUser({ id: 'alice' });
        expect((await store.listSessions('alice')).total).toBe(0);
        // Not even from memory: the flat store keeps notes it has read (regression guard for that cache).
        expect(await store.listNotes('alice')).toEqual([]);
        await expectCode(store.getSession('alice', session.id), 'MEMEX_SESSION_NOT_FOUND');
      });

      it('refuses ids that differ from an existing one only in case', async () => {
        const { store } = await withUser();
        await expectCode(store.createUser({ id: 'ALICE' }), 'MEMEX_USER_EXISTS');
        await expectCode(store.getUser('ALICE'), 'MEMEX_USER_NOT_FOUND');
      });

      it.each(BAD_IDS)('refuses the user id %j', async (id) => {
        const { store } = await setup();
        await expectCode(store.createUser({ id }), 'MEMEX_INVALID_ID');
        await expectCode(store.getUser(id), 'MEMEX_INVALID_ID');
        await expectCode(store.listSessions(id), 'MEMEX_INVALID_ID');
      });
    });

    describe('sessions', () => {
      it('creates sessions with readable, sortable ids', async () => {
        const { store } = await withUser();
        const session = await store.createSession('alice', { title: 'Trip' });
        expect(session.id).toMatch(/^\d{8}-\d{6}-[0-9a-z]{6}$/);
        expect(session).toMatchObject({ title: 'Trip', titleSource: 'user', messageCount: 0, lastMessageAt: null, origin: { kind: 'native' } });
        expect(await store.getSession('alice', session.id)).toEqual(session);
      });

      it('lists by last message with counts and a preview, paginated', async () => {
        const { store } = await withUser();
        const a = await store.createSession('alice', { title: 'A' });
        const b = await store.createSession('alice', { title: 'B' });
        const c = await store.createSession('alice', { title: 'C' });
        await store.appendMessages('alice', b.id, [{ role: 'user', content: 'first in b', createdAt: '2030-01-01T00:00:00Z' }]);
        await store.appendMessages('alice', a.id, [
          { role: 'user', content: 'one', createdAt: '2030-01-02T00:00:00Z' },
          { role: 'assistant', content: 'the   latest\nanswer in a', createdAt: '2030-01-03T00:00:00Z' },
        ]);
        const page = await store.listSessions('alice');
        expect(page.total).toBe(3);
        expect(page.sessions.map((s) => s.id)).toEqual([a.id, b.id, c.id]);
        expect(page.sessions[0]).toMatchObject({ messageCount: 2, lastMessagePreview: 'the latest answer in a', lastMessageAt: '2030-01-03T00:00:00.000Z' });
        const second = await store.listSessions('alice', { limit: 1, offset: 1 });
        expect(second.sessions.map((s) => s.id)).toEqual([b.id]);
        expect(second.total).toBe(3);
        expect((await store.listSessions('alice', { offset: 5 })).sessions).toEqual([]);
      });

      it('pages sessions by cursor and finds them by title', async () => {
        const { store } = await withUser();
        const titles = ['Trip to Lisbon', 'Tax return', 'Lisbon apartments', 'Garden', 'Café plans', 'Untitled'];
        const made = [];
        for (const [i, title] of titles.entries()) {
          const session = await store.createSession('alice', i === 5 ? {} : { title });
          await store.appendMessages('alice', session.id, [{ role: 'assistant', content: `hello ${i}`, createdAt: `2020-01-0${i + 1}T00:00:00Z` }]);
          made.push(session);
        }
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const page: Awaited<ReturnType<Store['listSessions']>> = await store.listSessions('alice', { limit: 4, ...(cursor ? { cursor } : {}) });
          seen.push(...page.sessions.map((s) => s.id));
          cursor = page.nextCursor;
          // A session created between pages (the most active now) does not shift or repeat the ones still to come.
          if (seen.length === 4) await store.createSession('alice', { title: 'newest' });
        } while (cursor);
        expect(seen).toEqual(made.map((s) => s.id).reverse());
        const lisbon = await store.listSessions('alice', { title: 'LISBON' });
        expect(lisbon.sessions.map((s) => s.title)).toEqual(['Lisbon apartments', 'Trip to Lisbon']);
        expect(lisbon.total).toBe(2);
        expect((await store.listSessions('alice', { title: 'cafe' })).sessions.map((s) => s.title)).toEqual(['Café plans']);
        expect((await store.listSessions('alice', { title: 'nothing like it' })).sessions).toEqual([]);
        await expectCode(store.listSessions('alice', { cursor: 'garbage!' }), 'MEMEX_INVALID_CURSOR');
        await expectCode(store.listSessions('alice', { cursor: 'x', offset: 1 }), 'MEMEX_INVALID_INPUT');
      });

      it('titles a session from its first user message, never over a given title', async () => {
        const { store } = await withUser();
        const auto = await store.createSession('alice');
        await store.appendMessages('alice', auto.id, [
          { role: 'system', content: 'You are helpful.' },
          { role: 'user', content: 'Can you help me plan a two-week trip through Portugal and Spain next spring?' },
        ]);
        const titled = await store.getSession('alice', auto.id);
        expect(titled.titleSource).toBe('auto');
        expect(titled.title).toMatch(/^Can you help me plan a two-week trip/);
        expect(titled.title!.length).toBeLessThanOrEqual(61);
        await store.appendMessages('alice', auto.id, [{ role: 'user', content: 'Something else entirely' }]);
        expect((await store.getSession('alice', auto.id)).title).toBe(titled.title);

        const renamed = await store.updateSession('alice', auto.id, { title: 'Iberia' });
        expect(renamed).toMatchObject({ title: 'Iberia', titleSource: 'user' });
        const given = await store.createSession('alice', { title: 'Mine' });
        await store.appendMessages('alice', given.id, [{ role: 'user', content: 'hello' }]);
        expect((await store.getSession('alice', given.id)).title).toBe('Mine');
      });

      it('deletes a session with its messages', async () => {
        const { store } = await withUser();
        const keep = await store.createSession('alice');
        const gone = await store.createSession('alice');
        await store.appendMessages('alice', gone.id, [{ role: 'user', content: 'bye' }]);
        await store.deleteSession('alice', gone.id);
        await expectCode(store.getSession('alice', gone.id), 'MEMEX_SESSION_NOT_FOUND');
        await expectCode(store.listMessages('alice', gone.id), 'MEMEX_SESSION_NOT_FOUND');
        await expectCode(store.deleteSession('alice', gone.id), 'MEMEX_SESSION_NOT_FOUND');
        expect((await store.listSessions('alice')).sessions.map((s) => s.id)).toEqual([keep.id]);
      });

      it("never shows one user another user's session", async () => {
        const { store } = await withUser();
        await store.createUser({ id: 'mallory' });
        const secret = await store.createSession('alice');
        await store.appendMessages('alice', secret.id, [{ role: 'user', content: 'my secret' }]);
        await expectCode(store.getSession('mallory', secret.id), 'MEMEX_SESSION_NOT_FOUND');
        await expectCode(store.listMessages('mallory', secret.id), 'MEMEX_SESSION_NOT_FOUND');
        await expectCode(store.appendMessages('mallory', secret.id, [{ role: 'user', content: 'x' }]), 'MEMEX_SESSION_NOT_FOUND');
        await expectCode(store.deleteSession('mallory', secret.id), 'MEMEX_SESSION_NOT_FOUND');
        expect((await store.listSessions('mallory')).total).toBe(0);
        expect((await store.listMessages('alice', secret.id)).total).toBe(1);
      });

      it('gives unknown users and sessions coded errors', async () => {
        const { store } = await withUser();
        await expectCode(store.createSession('nobody'), 'MEMEX_USER_NOT_FOUND');
        await expectCode(store.getSession('alice', '20240101-000000-abcdef'), 'MEMEX_SESSION_NOT_FOUND');
        for (const id of BAD_IDS) await expectCode(store.getSession('alice', id), 'MEMEX_INVALID_ID');
      });
    });

    describe('messages', () => {
      it('a retried append with the same message id is a 409 MEMEX_MESSAGE_EXISTS, and stores nothing twice (regression: 400)', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        await store.appendMessages('alice', id, [{ id: 'client-1', role: 'user', content: 'hello' }]);
        const error = await expectCode(store.appendMessages('alice', id, [{ id: 'client-1', role: 'user', content: 'hello' }]), 'MEMEX_MESSAGE_EXISTS');
        expect(error.statusCode).toBe(409);
        await expectCode(store.appendMessages('alice', id, [{ id: 'client-2', role: 'user', content: 'a' }, { id: 'client-2', role: 'user', content: 'b' }]), 'MEMEX_INVALID_INPUT');
        expect((await store.listMessages('alice', id)).total).toBe(1);
      });

      it("an append's options add usage to the session's totals and give an untitled or auto-titled session the title, never over the user's", async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice', { metadata: { app: 'x' } });
        await store.appendMessages('alice', id, [{ role: 'user', content: 'plan the trip' }]);
        expect((await store.getSession('alice', id)).title).toBe('plan the trip');
        await store.appendMessages('alice', id, [{ role: 'assistant', content: 'sure' }], { usage: { promptTokens: 10, completionTokens: 3 }, autoTitle: 'Trip planning' });
        await store.appendMessages('alice', id, [{ role: 'assistant', content: 'more' }], { usage: { promptTokens: 5, completionTokens: 2 } });
        const session = await store.getSession('alice', id);
        expect(session).toMatchObject({ title: 'Trip planning', titleSource: 'auto', messageCount: 3 });
        expect(session.metadata).toEqual({ app: 'x', usage: { promptTokens: 15, completionTokens: 5, replies: 2 } });
        const named = await store.createSession('alice', { title: 'Mine' });
        await store.appendMessages('alice', named.id, [{ role: 'assistant', content: 'hi' }], { autoTitle: 'Not yours' });
        expect((await store.getSession('alice', named.id)).title).toBe('Mine');
      });

      it('appends one or a batch and reads them back in order', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const [one] = await store.appendMessages('alice', id, [{ role: 'user', content: 'hello', metadata: { lang: 'en' } }]);
        const batch = await store.appendMessages('alice', id, [
          { role: 'assistant', content: 'hi!' },
          { role: 'tool', content: '{"temp": 21}', toolCallId: 'call_1', toolName: 'weather' },
          { role: 'system', content: 'be brief' },
        ]);
        expect(one).toMatchObject({ role: 'user', content: 'hello', sessionId: id, metadata: { lang: 'en' }, attachments: [] });
        expect(batch[1]).toMatchObject({ role: 'tool', toolCallId: 'call_1', toolName: 'weather' });
        const page = await store.listMessages('alice', id);
        expect(page.total).toBe(4);
        expect(page.messages.map((m) => m.content)).toEqual(['hello', 'hi!', '{"temp": 21}', 'be brief']);
        expect(await store.getMessage('alice', id, batch[0]!.id)).toEqual(batch[0]);
        expect((await store.getSession('alice', id)).messageCount).toBe(4);
      });

      it('pages by limit and offset, and by cursor, visiting each message once', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const written = await store.appendMessages('alice', id, Array.from({ length: 23 }, (_, i) => ({ role: 'user' as const, content: `m${i}` })));
        const page = await store.listMessages('alice', id, { limit: 5, offset: 10 });
        expect(page.messages.map((m) => m.content)).toEqual(['m10', 'm11', 'm12', 'm13', 'm14']);
        expect(page).toMatchObject({ total: 23, offset: 10, limit: 5 });
        const seen: string[] = [];
        let cursor: string | null = null;
        do {
          const next: Awaited<ReturnType<Store['listMessages']>> = await store.listMessages('alice', id, { limit: 7, ...(cursor ? { cursor } : {}) });
          seen.push(...next.messages.map((m) => m.id));
          cursor = next.nextCursor;
        } while (cursor);
        expect(seen).toEqual(written.map((m) => m.id));
        await expectCode(store.listMessages('alice', id, { cursor: 'garbage!' }), 'MEMEX_INVALID_CURSOR');
        await expectCode(store.listMessages('alice', id, { cursor: 'x', offset: 1 }), 'MEMEX_INVALID_INPUT');
        await expectCode(store.listMessages('alice', id, { limit: 0 }), 'MEMEX_INVALID_INPUT');
      });

      it('pages backwards from the latest messages with before, visiting each once', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const written = await store.appendMessages('alice', id, Array.from({ length: 23 }, (_, i) => ({ role: 'user' as const, content: `m${i}` })));
        const latest = await store.listMessages('alice', id, { limit: 5, latest: true });
        expect(latest.messages.map((m) => m.content)).toEqual(['m18', 'm19', 'm20', 'm21', 'm22']);
        expect(latest).toMatchObject({ total: 23, offset: 18, nextCursor: null });
        const seen: string[] = [...latest.messages.map((m) => m.id)];
        let before = latest.prevCursor;
        while (before) {
          const page: Awaited<ReturnType<Store['listMessages']>> = await store.listMessages('alice', id, { limit: 5, before });
          expect(page.messages.length).toBeGreaterThan(0);
          seen.unshift(...page.messages.map((m) => m.id));
          before = page.prevCursor;
        }
        expect(seen).toEqual(written.map((m) => m.id));
        // A page's prevCursor and nextCursor lead back to its neighbours.
        const middle = await store.listMessages('alice', id, { limit: 4, offset: 8 });
        expect((await store.listMessages('alice', id, { limit: 4, before: middle.prevCursor! })).messages.map((m) => m.content)).toEqual(['m4', 'm5', 'm6', 'm7']);
        expect((await store.listMessages('alice', id, { limit: 4, cursor: middle.nextCursor! })).messages.map((m) => m.content)).toEqual(['m12', 'm13', 'm14', 'm15']);
        expect((await store.listMessages('alice', id, { limit: 4 })).prevCursor).toBeNull();
        expect((await store.listMessages('alice', id, { latest: true, limit: 100 })).messages).toHaveLength(23);
        await expectCode(store.listMessages('alice', id, { before: 'garbage!' }), 'MEMEX_INVALID_CURSOR');
        await expectCode(store.listMessages('alice', id, { before: middle.prevCursor!, latest: true }), 'MEMEX_INVALID_INPUT');
      });

      it('streams the whole history', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const written = await store.appendMessages('alice', id, Array.from({ length: 300 }, (_, i) => ({ role: 'user' as const, content: `line ${i} ${'é'.repeat(i % 7)}` })));
        expect(await collect(store.streamMessages('alice', id))).toEqual(written);
      });

      it('refuses bad messages with coded errors and writes nothing', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const bad: [unknown, string][] = [
          [{ role: 'wizard', content: 'x' }, 'MEMEX_INVALID_INPUT'],
          [{ role: 'user' }, 'MEMEX_INVALID_INPUT'],
          [{ role: 'user', content: '   ' }, 'MEMEX_INVALID_INPUT'],
          [{ role: 'user', content: 'x', toolCallId: 'c1' }, 'MEMEX_INVALID_INPUT'],
          [{ role: 'user', content: 'x', createdAt: 'yesterday' }, 'MEMEX_INVALID_INPUT'],
          [{ role: 'user', content: 'x', unknownField: 1 }, 'MEMEX_INVALID_INPUT'],
          [{ role: 'user', content: 'x', id: '../../escape' }, 'MEMEX_INVALID_ID'],
          [{ role: 'user', content: 'x', attachments: [{ fileId: 'a'.repeat(64) }] }, 'MEMEX_FILE_NOT_FOUND'],
        ];
        for (const [input, code] of bad) {
          // A good message first in the batch: the batch is all or nothing.
          await expectCode(store.appendMessages('alice', id, [{ role: 'user', content: 'fine' }, input as NewMessage]), code as never);
        }
        await expectCode(store.appendMessages('alice', id, []), 'MEMEX_INVALID_INPUT');
        await store.appendMessages('alice', id, [{ role: 'user', content: 'kept', id: 'msg_custom' }]);
        await expectCode(store.appendMessages('alice', id, [{ role: 'user', content: 'again', id: 'msg_custom' }]), 'MEMEX_MESSAGE_EXISTS');
        expect((await store.listMessages('alice', id)).messages.map((m) => m.content)).toEqual(['kept']);
        await expectCode(store.getMessage('alice', id, 'msg_nope'), 'MEMEX_MESSAGE_NOT_FOUND');
      });

      it('never interleaves or loses concurrent appends', async () => {
        const { store } = await withUser();
        const sessions = await Promise.all([0, 1, 2].map(() => store.createSession('alice')));
        const long = 'x'.repeat(20_000);
        await Promise.all(
          Array.from({ length: 150 }, (_, i) => {
            const session = sessions[i % 3]!;
            return i % 10 === 0
              ? store.appendMessages('alice', session.id, [
                  { role: 'user', content: `${i}a ${long}` },
                  { role: 'assistant', content: `${i}b` },
                ])
              : store.appendMessages('alice', session.id, [{ role: 'user', content: `${i} ${long}` }]);
          }),
        );
        let total = 0;
        for (const session of sessions) {
          const messages = await collect(store.streamMessages('alice', session.id));
          total += messages.length;
          expect((await store.getSession('alice', session.id)).messageCount).toBe(messages.length);
          // A batch stays together.
          for (const [i, m] of messages.entries()) if (m.content.match(/^\d+a /)) expect(messages[i + 1]!.content).toBe(`${m.content.split('a ')[0]}b`);
        }
        expect(total).toBe(165);
      });

      it('returns what was written after a reopen (property)', async () => {
        const harness = await setup();
        await harness.store.createUser({ id: 'alice' });
        const { id } = await harness.store.createSession('alice');
        const messageArb = fc.record({
          role: fc.constantFrom('user' as const, 'assistant' as const, 'system' as const),
          content: fc.string({ minLength: 1, maxLength: 200, unit: 'grapheme' }).filter((s) => s.trim() !== ''),
          metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.integer(), fc.string(), fc.boolean())),
        });
        const written: Message[] = [];
        await fc.assert(
          fc.asyncProperty(fc.array(messageArb, { minLength: 1, maxLength: 5 }), async (batch) => {
            written.push(...(await harness.store.appendMessages('alice', id, batch)));
          }),
          { numRuns: 30 },
        );
        const reopened = await harness.reopen();
        expect(await collect(reopened.streamMessages('alice', id))).toEqual(written);
        expect((await reopened.getSession('alice', id)).messageCount).toBe(written.length);
      });
    });

    describe('messages around messages (messagesAround)', () => {
      it('gives what a before page and a cursor page per message give, for any messages and counts, in one call', async () => {
        const { store } = await withUser();
        const session = await store.createSession('alice');
        const written = await store.appendMessages('alice', session.id, Array.from({ length: 40 }, (_, i) => ({ role: i % 2 === 0 ? ('user' as const) : ('assistant' as const), content: `turn ${i} ${'long '.repeat(i % 3 === 0 ? 1500 : 0)}` })));
        // Some turns are long, so some neighbours lie far apart in the file.
        await store.deleteMessage('alice', session.id, written[7]?.id as string);
        const live = written.filter((_, i) => i !== 7);
        await fc.assert(
          fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 0, max: 39 }), { maxLength: 12 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), async (picks, before, after) => {
            const ids = picks.map((i) => (written[i] as Message).id);
            const around = await store.messagesAround('alice', session.id, ids, { before, after });
            for (const id of ids) {
              const at = live.findIndex((m) => m.id === id);
              if (at < 0) {
                // The deleted one has no neighbours to give.
                expect(around.has(id)).toBe(false);
                continue;
              }
              const cursor = (await store.listMessages('alice', session.id, { limit: 1, offset: at })).prevCursor;
              const pageBefore = before === 0 || at === 0 ? [] : (await store.listMessages('alice', session.id, { limit: before, offset: Math.max(0, at - before) })).messages.slice(0, at - Math.max(0, at - before));
              const pageAfter = after === 0 ? [] : (await store.listMessages('alice', session.id, { limit: after, offset: at + 1 })).messages;
              expect(cursor === null).toBe(at === 0);
              expect(around.get(id)).toEqual({ before: pageBefore, after: pageAfter });
            }
          }),
          { numRuns: 25 },
        );
        await expectCode(store.messagesAround('alice', 'nope', [written[0]?.id as string], { before: 1, after: 1 }), 'MEMEX_SESSION_NOT_FOUND');
      });
    });

    describe('personas', () => {
      it('creates, lists, updates, attaches and deletes', async () => {
        const { store } = await withUser();
        const tutor = await store.createPersona('alice', { id: 'tutor', name: 'Tutor', instructions: 'Explain step by step.' });
        const other = await store.createPersona('alice', { name: 'Critic', instructions: 'Be blunt.' });
        expect(other.id).toMatch(/^persona_/);
        expect((await store.listPersonas('alice')).map((p) => p.name)).toEqual(['Critic', 'Tutor']);
        expect((await store.updatePersona('alice', 'tutor', { instructions: 'Use examples.' })).instructions).toBe('Use examples.');
        await expectCode(store.createPersona('alice', { id: 'tutor', name: 'x', instructions: '' }), 'MEMEX_PERSONA_EXISTS');

        const session = await store.createSession('alice', { personaId: tutor.id });
        expect(session.personaId).toBe('tutor');
        await expectCode(store.createSession('alice', { personaId: 'ghost' }), 'MEMEX_PERSONA_NOT_FOUND');
        await expectCode(store.updateSession('alice', session.id, { personaId: 'ghost' }), 'MEMEX_PERSONA_NOT_FOUND');

        await store.deletePersona('alice', 'tutor');
        await expectCode(store.getPersona('alice', 'tutor'), 'MEMEX_PERSONA_NOT_FOUND');
        expect((await store.getSession('alice', session.id)).personaId).toBeNull();
        await store.createUser({ id: 'bob' });
        await expectCode(store.getPersona('bob', other.id), 'MEMEX_PERSONA_NOT_FOUND');
      });

      it('refuses a second persona with the same name, ignoring case, on create and on rename (regression: duplicate names)', async () => {
        const { store } = await withUser();
        const tutor = await store.createPersona('alice', { name: 'Tutor', instructions: '' });
        await expectCode(store.createPersona('alice', { name: ' tUTOR', instructions: '' }), 'MEMEX_PERSONA_EXISTS');
        // Concurrent creates of one name: exactly one wins.
        const raced = await Promise.allSettled([1, 2, 3].map(() => store.createPersona('alice', { name: 'Critic', instructions: '' })));
        expect(raced.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const critic = (await store.listPersonas('alice')).find((p) => p.name === 'Critic');
        await expectCode(store.updatePersona('alice', critic?.id ?? '', { name: 'TUTOR' }), 'MEMEX_PERSONA_EXISTS');
        // Renaming to its own name (another case) is fine, and other users may use the name.
        expect((await store.updatePersona('alice', tutor.id, { name: 'TUTOR' })).name).toBe('TUTOR');
        await store.createUser({ id: 'bob' });
        expect((await store.createPersona('bob', { name: 'Tutor', instructions: '' })).name).toBe('Tutor');
        expect((await store.listPersonas('alice')).map((p) => p.name)).toEqual(['Critic', 'TUTOR']);
      });
    });

    describe('notes and summaries', () => {
      it("keeps a user's notes: add, list in order, update, delete; never another user's", async () => {
        const { store, harness } = await withUser();
        expect(await store.listNotes('alice')).toEqual([]);
        const units = await store.addNote('alice', { text: 'Prefers metric units', kind: 'preference' });
        const sister = await store.addNote('alice', { id: 'sister', text: '  Has a sister called Ana ', pinned: false });
        expect(units).toMatchObject({ kind: 'preference', pinned: true, text: 'Prefers metric units' });
        expect(units.id).toMatch(/^note_/);
        expect(sister).toMatchObject({ id: 'sister', kind: 'note', pinned: false, text: 'Has a sister called Ana' });
        expect((await store.updateNote('alice', 'sister', { pinned: true })).pinned).toBe(true);
        const reopened = await harness.reopen();
        expect((await reopened.listNotes('alice')).map((n) => [n.id, n.pinned])).toEqual([[units.id, true], ['sister', true]]);
        await expectCode(reopened.addNote('alice', { id: 'sister', text: 'again' }), 'MEMEX_NOTE_EXISTS');
        await expectCode(reopened.addNote('alice', { text: '   ' }), 'MEMEX_INVALID_INPUT');
        await expectCode(reopened.updateNote('alice', '../sister', { pinned: false }), 'MEMEX_INVALID_ID');
        await reopened.createUser({ id: 'bob' });
        expect(await reopened.listNotes('bob')).toEqual([]);
        await expectCode(reopened.updateNote('bob', 'sister', { text: 'mine now' }), 'MEMEX_NOTE_NOT_FOUND');
        await expectCode(reopened.deleteNote('bob', 'sister'), 'MEMEX_NOTE_NOT_FOUND');
        await reopened.deleteNote('alice', 'sister');
        expect((await reopened.listNotes('alice')).map((n) => n.id)).toEqual([units.id]);
        await expectCode(reopened.listNotes('nobody'), 'MEMEX_USER_NOT_FOUND');
      });

      it("keeps a session's summary until a message is deleted", async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        expect(await store.getSummary('alice', id)).toBeNull();
        const [first, second] = await store.appendMessages('alice', id, [
          { role: 'user', content: 'one' },
          { role: 'user', content: 'two' },
        ]);
        const summary = {
          v: 1 as const,
          sessionId: id,
          text: 'one',
          coversThroughMessageId: first!.id,
          coveredMessages: 1,
          method: 'model' as const,
          tokens: 1,
          updatedAt: new Date().toISOString(),
        };
        await store.setSummary('alice', id, summary);
        expect(await store.getSummary('alice', id)).toEqual(summary);
        const other = await store.createSession('alice');
        await expectCode(store.setSummary('alice', other.id, summary), 'MEMEX_INVALID_INPUT');
        await store.deleteMessage('alice', id, second!.id);
        expect(await store.getSummary('alice', id)).toBeNull();
        await store.setSummary('alice', id, summary);
        await store.setSummary('alice', id, null);
        expect(await store.getSummary('alice', id)).toBeNull();
        await store.createUser({ id: 'bob' });
        await expectCode(store.getSummary('bob', id), 'MEMEX_SESSION_NOT_FOUND');
      });
    });

    describe('reading an archived session (readArchivedSession)', () => {
      const DIM = 6;
      const rowOf = (seed: number): Float32Array => Float32Array.from({ length: DIM }, (_, i) => Math.fround(Math.sin(seed * 7 + i) / (i + 1.5)));
      const bits = (vectors: Float32Array): string => Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength).toString('hex');

      /** A session with messages, two files (one with artifacts), message and file rows and a summary. */
      async function fullSession(store: Store): Promise<string> {
        const session = await store.createSession('alice', { title: 'Archive me', metadata: { k: 'v' } });
        const { file } = await store.putFile('alice', session.id, { source: { bytes: Buffer.from('%PDF-1.4 not really\n') }, name: 'a.txt', metadata: { n: 1 } });
        await store.writeFileArtifact('alice', session.id, file.id, 'text.json', JSON.stringify({ units: ['one'] }));
        await store.writeFileArtifact('alice', session.id, file.id, 'thumb.webp', Buffer.from([0, 1, 2, 255]));
        await store.putFile('alice', session.id, { source: { bytes: Buffer.from('plain second file\n') }, name: 'b.txt' });
        const messages = await store.appendMessages('alice', session.id, [
          { role: 'user', content: 'first 😀', attachments: [{ fileId: file.id }] },
          { role: 'assistant', content: 'second <b>', metadata: { model: 'm' } },
          { role: 'user', content: 'third' },
        ]);
        const chunks = messages.map((m) => ({ chunkId: `${m.id}:0`, source: { kind: 'message' as const, messageId: m.id, role: m.role, createdAt: m.createdAt }, part: { index: 0, count: 1 }, span: { start: 0, end: m.content.length }, text: m.content, tokens: 2 }));
        await store.appendVectors('alice', session.id, { model: 'test-model', chunks, vectors: chunks.map((_, i) => rowOf(i)) });
        await store.appendVectors('alice', session.id, {
          model: 'test-model',
          chunks: [{ chunkId: `${file.id}:1:0`, source: { kind: 'file', fileId: file.id, page: 1 }, part: { index: 0, count: 1 }, span: { start: 0, end: 3 }, text: 'pdf', tokens: 1 }],
          vectors: [rowOf(9)],
        });
        await store.setSummary('alice', session.id, { v: 1, sessionId: session.id, text: 'They talked.', coversThroughMessageId: messages[0]!.id, coveredMessages: 1, method: 'model', tokens: 3, updatedAt: '2024-01-01T00:00:00.000Z' });
        return session.id;
      }

      /** The session's content read the live way, in the shape readArchivedSession gives. */
      async function liveContent(store: Store, sid: string) {
        const files = [];
        for (const record of await store.listFiles('alice', sid)) {
          const artifacts: Record<string, string> = {};
          for (const name of ['text.json', 'thumb.webp', 'display.webp'] as const) {
            const bytes = await store.readFileArtifact('alice', sid, record.id, name).catch(() => null);
            if (bytes) artifacts[name] = bytes.toString('hex');
          }
          files.push({ record, bytes: Buffer.concat(await collect(await store.readFile('alice', sid, record.id))).toString('hex'), artifacts });
        }
        const { vectors, ...status } = await store.readVectors('alice', sid);
        return { messages: await collect(store.streamMessages('alice', sid)), vectors: { ...status, bits: bits(vectors) }, files, summary: await store.getSummary('alice', sid) };
      }

      function comparable(content: Awaited<ReturnType<Store['readArchivedSession']>>) {
        const { vectors, ...status } = content.vectors;
        return {
          messages: content.messages,
          vectors: { ...status, bits: bits(vectors) },
          files: content.files.map((f) => ({ record: f.record, bytes: f.bytes.toString('hex'), artifacts: Object.fromEntries(Object.entries(f.artifacts).map(([k, v]) => [k, v.toString('hex')])) })),
          summary: content.summary,
        };
      }

      it('gives back what the session held before archiving (messages, rows bit for bit, file bytes, summary) and changes nothing', async () => {
        const { store, harness } = await withUser();
        const sid = await fullSession(store);
        const before = await liveContent(store, sid);
        expect(before.vectors.rows).toBe(4);
        const archived = (await store.archiveSession('alice', sid, { now: new Date('2025-02-03T04:05:06.789Z') })).session;
        const stored = await harness.fingerprint?.();

        const content = await store.readArchivedSession('alice', sid);
        expect(comparable(content)).toEqual(before);
        expect(content.session).toEqual(archived);
        expect(content.session.archivedAt).toBe('2025-02-03T04:05:06.789Z');
        expect((await store.readArchivedSession('alice', sid)).messages).toEqual(before.messages);

        // Still archived, exactly as it was.
        expect(await harness.fingerprint?.()).toEqual(stored);
        expect(await store.getSession('alice', sid)).toEqual(archived);
        expect((await store.listSessions('alice', { archived: 'only' })).sessions.map((s) => s.id)).toEqual([sid]);
        await expectCode(store.listMessages('alice', sid), 'MEMEX_SESSION_ARCHIVED');
        const again = await harness.reopen();
        expect(comparable(await again.readArchivedSession('alice', sid))).toEqual(before);
        await again.unarchiveSession('alice', sid);
        expect(await liveContent(again, sid)).toEqual(before);
      });

      it('a live session is MEMEX_SESSION_NOT_ARCHIVED; a missing one MEMEX_SESSION_NOT_FOUND; an empty archived one reads empty', async () => {
        const { store } = await withUser();
        const live = await store.createSession('alice');
        await store.appendMessages('alice', live.id, [{ role: 'user', content: 'hi' }]);
        await expectCode(store.readArchivedSession('alice', live.id), 'MEMEX_SESSION_NOT_ARCHIVED');
        await expectCode(store.readArchivedSession('alice', '20240101-000000-zzzzzz'), 'MEMEX_SESSION_NOT_FOUND');
        await expectCode(store.readArchivedSession('alice', '../x'), 'MEMEX_INVALID_ID');
        const empty = await store.createSession('alice');
        await store.archiveSession('alice', empty.id);
        const content = await store.readArchivedSession('alice', empty.id);
        expect(content).toMatchObject({ messages: [], files: [], summary: null, vectors: { rows: 0, lines: [], model: null, dimension: null, tail: null, from: 0 } });
        expect(content.vectors.vectors.length).toBe(0);
      });
    });

    describe('files', () => {
      it('stores the same bytes once, content-addressed, and links them from messages', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(5000, 7)]);
        const sha = createHash('sha256').update(pdf).digest('hex');
        const first = await store.putFile('alice', id, { source: { bytes: pdf }, name: 'report.txt' });
        expect(first.created).toBe(true);
        expect(first.file).toMatchObject({ id: sha, sha256: sha, size: pdf.length, mimeType: 'application/pdf', ext: 'pdf', name: 'report.txt' });
        const again = await store.putFile('alice', id, { source: { stream: (async function* () { yield pdf.subarray(0, 100); yield pdf.subarray(100); })() }, name: 'copy.pdf' });
        expect(again).toEqual({ file: first.file, created: false });
        expect(await store.listFiles('alice', id)).toEqual([first.file]);
        const bytes = Buffer.concat(await collect(await store.readFile('alice', id, sha)));
        expect(bytes.equals(pdf)).toBe(true);

        const [message] = await store.appendMessages('alice', id, [{ role: 'user', content: 'see attached', attachments: [{ fileId: sha, name: 'report.pdf' }] }]);
        expect(message!.attachments).toEqual([{ fileId: sha, name: 'report.pdf' }]);
        await expectCode(store.getFile('alice', id, 'b'.repeat(64)), 'MEMEX_FILE_NOT_FOUND');
        await expectCode(store.getFile('alice', id, '../../etc/passwd'), 'MEMEX_INVALID_ID');
        const elsewhere = await store.createSession('alice');
        await expectCode(store.getFile('alice', elsewhere.id, sha), 'MEMEX_FILE_NOT_FOUND');
      });
    });

    describe('restoring a copy (memex migrate)', () => {
      const t = (n: number): string => new Date(Date.UTC(2021, 0, 1) + n * 60_000).toISOString();

      it('restores a profile, a persona and a note exactly, ids and times kept, and replaces them when run again', async () => {
        const harness = await setup();
        const store = harness.store;
        const profile = { v: 1 as const, id: 'alice', name: 'Alice', createdAt: t(1), updatedAt: t(2), metadata: { plan: 'pro' } } as unknown as Profile;
        expect(await store.restoreUser(profile)).toEqual(profile);
        const persona = { v: 1 as const, id: 'tutor', userId: 'alice', name: 'Tutor', instructions: 'Teach.', createdAt: t(3), updatedAt: t(4), metadata: {} } as Persona;
        expect(await store.restorePersona('alice', persona)).toEqual(persona);
        const note = { id: 'n1', kind: 'fact' as const, text: 'Likes tea', pinned: false, createdAt: t(5), updatedAt: t(6), metadata: { from: 'chat' } } as unknown as Note;
        expect(await store.restoreNote('alice', note)).toEqual(note);
        const reopened = await harness.reopen();
        expect(await reopened.getUser('alice')).toEqual(profile);
        expect(await reopened.getPersona('alice', 'tutor')).toEqual(persona);
        expect(await reopened.listNotes('alice')).toEqual([note]);
        // Again, changed: replaced in place, nothing doubled.
        expect(await reopened.restoreUser({ ...profile, name: 'Alice B.' })).toMatchObject({ name: 'Alice B.', createdAt: t(1) });
        await reopened.restorePersona('alice', { ...persona, instructions: 'Teach well.' });
        await reopened.restoreNote('alice', { ...note, text: 'Likes green tea' });
        expect((await reopened.listPersonas('alice')).map((p: Persona) => p.instructions)).toEqual(['Teach well.']);
        expect((await reopened.listNotes('alice')).map((n) => n.text)).toEqual(['Likes green tea']);
      });

      it('refuses a restore that would clash or belongs to someone else', async () => {
        const { store } = await withUser();
        await expectCode(store.restoreUser({ v: 1, id: 'ALICE', name: 'A', createdAt: t(1), updatedAt: t(1), metadata: {} } as Profile), 'MEMEX_USER_EXISTS');
        await store.createPersona('alice', { id: 'p1', name: 'Coach', instructions: '' });
        const other = { v: 1 as const, id: 'p2', userId: 'alice', name: 'coach', instructions: '', createdAt: t(1), updatedAt: t(1), metadata: {} } as Persona;
        await expectCode(store.restorePersona('alice', other), 'MEMEX_PERSONA_EXISTS');
        await store.createUser({ id: 'bob' });
        await expectCode(store.restorePersona('bob', { ...other, name: 'Other' }), 'MEMEX_INVALID_INPUT');
        await expectCode(store.restoreNote('nobody', { id: 'n', kind: 'note', text: 'x', pinned: true, createdAt: t(1), updatedAt: t(1), metadata: {} } as Note), 'MEMEX_USER_NOT_FOUND');
        await expectCode(store.restoreSession('alice', { id: 'sess-1', title: null, titleSource: null, personaId: 'missing', origin: { kind: 'native' }, createdAt: t(1), updatedAt: t(1), metadata: {} } as RestoredSession), 'MEMEX_PERSONA_NOT_FOUND');
        await expectCode(store.restoreSession('alice', { id: '../x', title: null, titleSource: null, personaId: null, origin: { kind: 'native' }, createdAt: t(1), updatedAt: t(1), metadata: {} } as RestoredSession), 'MEMEX_INVALID_ID');
      });

      it('restores a session with its id, title and times; counts follow its messages; restoring again after appending keeps updatedAt', async () => {
        const { store, harness } = await withUser();
        await store.createPersona('alice', { id: 'tutor', name: 'Tutor', instructions: 'Teach.' });
        const record = {
          id: 'sess-restored',
          title: 'Old chat',
          titleSource: 'auto' as const,
          personaId: 'tutor',
          origin: { kind: 'imported' as const, source: 'chatgpt' as const, conversationId: 'c-1' },
          createdAt: t(10),
          updatedAt: t(20),
          metadata: { topic: 'x' },
        } as unknown as RestoredSession;
        const created = await store.restoreSession('alice', record);
        expect(created).toMatchObject({ ...record, userId: 'alice', messageCount: 0, lastMessageAt: null });
        const [first] = await store.appendMessages('alice', record.id, [
          { id: 'm1', role: 'user', content: 'hello there', createdAt: t(11) },
          { id: 'm2', role: 'assistant', content: 'hi', createdAt: t(12) },
        ]);
        expect(first!.id).toBe('m1');
        const again = await store.restoreSession('alice', { ...record, updatedAt: t(21) });
        expect(again).toMatchObject({ ...record, updatedAt: t(21), title: 'Old chat', titleSource: 'auto', messageCount: 2, lastMessageAt: t(12) });
        const reopened = await harness.reopen();
        expect(await reopened.getSession('alice', record.id)).toEqual(again);
        expect((await reopened.listSessions('alice')).sessions.map((s) => s.id)).toEqual([record.id]);
        expect((await reopened.listMessages('alice', record.id)).messages.map((m) => [m.id, m.createdAt])).toEqual([['m1', t(11)], ['m2', t(12)]]);
      });

      it('keeps a restored file its time, and reads vector rows in windows', async () => {
        const { store } = await withUser();
        const { id } = await store.createSession('alice');
        const { file } = await store.putFile('alice', id, { source: { bytes: Buffer.from('plain words\n') }, name: 'a.txt', createdAt: t(30) });
        expect(file.createdAt).toBe(t(30));
        const messages = await store.appendMessages('alice', id, [1, 2, 3, 4, 5].map((n) => ({ role: 'user' as const, content: `message ${n}` })));
        const chunks = messages.map((m) => ({
          chunkId: `${m.id}:0`,
          source: { kind: 'message' as const, messageId: m.id, role: m.role, createdAt: m.createdAt },
          part: { index: 0, count: 1 },
          span: { start: 0, end: m.content.length },
          text: m.content,
          tokens: 2,
        }));
        const vectors = chunks.map((_, i) => Float32Array.from([i, 1, 0]));
        await store.appendVectors('alice', id, { model: 'test-model', chunks, vectors });
        const window = await store.readVectors('alice', id, { from: 1, limit: 2 });
        expect(window).toMatchObject({ rows: 5, from: 1, dimension: 3 });
        expect(window.lines.map((l) => [l.row, l.chunkId])).toEqual([[1, chunks[1]!.chunkId], [2, chunks[2]!.chunkId]]);
        expect(Array.from(window.vectors)).toEqual([1, 1, 0, 2, 1, 0]);
        expect((await store.readVectors('alice', id, { from: 4, limit: 10 })).lines.map((l) => l.row)).toEqual([4]);
        expect((await store.readVectors('alice', id, { from: 2 })).lines).toHaveLength(3);
      });
    });

    describe('lineage and panels', () => {
      it('keeps participants, forks, forkedFrom and mergedFrom, and the persona of a message, across a reopen (regression: a restore that named no lineage reset it to none)', async () => {
        const { store, harness } = await withUser();
        const a = await store.createPersona('alice', { name: 'A', instructions: 'a' });
        const b = await store.createPersona('alice', { name: 'B', instructions: 'b' });
        await expectCode(store.createSession('alice', { participants: ['persona_missing'] }), 'MEMEX_PERSONA_NOT_FOUND');
        const panel = await store.createSession('alice', { participants: [a.id] });
        expect(panel).toMatchObject({ participants: [a.id], forks: [], forkedFrom: null, mergedFrom: [] });
        expect((await store.updateSession('alice', panel.id, { participants: [a.id, b.id] })).participants).toEqual([a.id, b.id]);
        await expectCode(store.updateSession('alice', panel.id, { participants: ['persona_missing'] }), 'MEMEX_PERSONA_NOT_FOUND');
        const [said] = await store.appendMessages('alice', panel.id, [{ role: 'assistant', content: 'hello', personaId: b.id }]);
        expect(said?.personaId).toBe(b.id);
        // A fork is recorded once, however often it is named.
        const fork = await store.createSession('alice');
        await store.updateSession('alice', panel.id, { addFork: fork.id });
        expect((await store.updateSession('alice', panel.id, { addFork: fork.id })).forks).toEqual([fork.id]);
        const restored = await store.restoreSession('alice', { ...fork, forkedFrom: { sessionId: panel.id, messageId: said!.id }, mergedFrom: [panel.id] });
        expect(restored).toMatchObject({ forkedFrom: { sessionId: panel.id, messageId: said!.id }, mergedFrom: [panel.id] });
        // A restore that names no lineage keeps the session's own.
        const { forkedFrom: _f, forks: _k, mergedFrom: _m, participants: _p, ...plain } = restored;
        expect(await store.restoreSession('alice', plain)).toMatchObject({ forkedFrom: { sessionId: panel.id }, mergedFrom: [panel.id] });
        const again = await harness.reopen();
        expect(await again.getSession('alice', panel.id)).toMatchObject({ participants: [a.id, b.id], forks: [fork.id] });
        expect((await again.listSessions('alice')).sessions.find((s) => s.id === fork.id)?.forkedFrom).toEqual({ sessionId: panel.id, messageId: said!.id });
        expect((await again.getMessage('alice', panel.id, said!.id)).personaId).toBe(b.id);
      });
    });
  });
}
