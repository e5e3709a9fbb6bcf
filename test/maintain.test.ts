import { afterEach, describe, expect, it } from 'vitest';
import { Memex, type ConfigInput } from '../src/index.js';
import { BACKENDS, backendConfig, type Backend } from './helpers/backends.js';
import { modelEnv } from './helpers/model.js';
import { tempDir } from './helpers/tmp.js';

const open: Memex[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((memex) => memex.close()));
});

/** The fake clock every policy measures against. */
const NOW = new Date('2031-06-01T12:00:00.000Z');
const daysAgo = (days: number): string => new Date(NOW.getTime() - days * 86_400_000).toISOString();

async function openMemex(backend: Backend, retention: ConfigInput['retention']): Promise<Memex> {
  const dir = await tempDir();
  const memex = await Memex.open({ dataDir: dir, env: modelEnv, config: { ...(await backendConfig(backend, dir)), ...(retention ? { retention } : {}) } });
  open.push(memex);
  await memex.users.ensure('alice');
  await memex.users.ensure('bob');
  return memex;
}

/** Sessions without messages, so their activity is their creation time. */
async function sessionsAged(memex: Memex, userId: string, ages: readonly number[]): Promise<string[]> {
  const ids: string[] = [];
  for (const age of ages) ids.push((await memex.sessions.create(userId, { title: `${age} days old`, createdAt: daysAgo(age) })).id);
  return ids;
}

async function state(memex: Memex, userId: string): Promise<Record<string, string>> {
  const page = await memex.sessions.list(userId, { limit: 1000 });
  return Object.fromEntries(page.sessions.map((s) => [s.id, s.archivedAt === null ? `live ${s.messageCount}` : `archived ${s.messageCount}`]));
}

describe.each(BACKENDS)('retention policies on %s (fake clock)', (backend) => {
  it('maxAgeDays with archive archives sessions idle past the limit; a dry run first changes nothing', async () => {
    const memex = await openMemex(backend, { maxAgeDays: { limit: 30, action: 'archive' } });
    const [fresh, old, older] = await sessionsAged(memex, 'alice', [3, 45, 400]);
    const untouched = await state(memex, 'alice');

    const dry = await memex.maintain({ dryRun: true, now: NOW });
    expect(dry.dryRun).toBe(true);
    expect(dry.actions.map((a) => [a.sessionId, a.policy, a.action, a.status]).sort()).toEqual(
      [[old, 'maxAgeDays', 'archive', 'planned'], [older, 'maxAgeDays', 'archive', 'planned']].sort(),
    );
    expect(await state(memex, 'alice')).toEqual(untouched);

    const done = await memex.maintain({ now: NOW });
    expect(done.actions.every((a) => a.status === 'done')).toBe(true);
    expect(await state(memex, 'alice')).toEqual({ [fresh as string]: 'live 0', [old as string]: 'archived 0', [older as string]: 'archived 0' });
    // Archived ones are not archived again.
    expect((await memex.maintain({ now: NOW })).actions).toEqual([]);
  });

  it('maxAgeDays with trash deletes sessions idle past the limit (the session delete, which moves to the trash)', async () => {
    const memex = await openMemex(backend, { maxAgeDays: { limit: 30, action: 'trash' } });
    const [fresh] = await sessionsAged(memex, 'alice', [3, 45]);
    const report = await memex.maintain({ now: NOW });
    expect(report.actions.map((a) => [a.action, a.status])).toEqual([['trash', 'done']]);
    expect(Object.keys(await state(memex, 'alice'))).toEqual([fresh]);
  });

  it('maxSessionsPerUser keeps the most recently active sessions, per user, archiving or trashing the rest', async () => {
    for (const action of ['archive', 'trash'] as const) {
      const memex = await openMemex(backend, { maxSessionsPerUser: { limit: 2, action } });
      const [a, b, c, d] = await sessionsAged(memex, 'alice', [1, 2, 3, 4]);
      const bobs = await sessionsAged(memex, 'bob', [5, 6]);
      const dry = await memex.maintain({ dryRun: true, now: NOW, userId: 'alice' });
      expect(dry.users).toBe(1);
      expect(dry.actions.map((x) => x.sessionId).sort()).toEqual([c, d].sort());
      await memex.maintain({ now: NOW });
      const expected = action === 'archive' ? { [a as string]: 'live 0', [b as string]: 'live 0', [c as string]: 'archived 0', [d as string]: 'archived 0' } : { [a as string]: 'live 0', [b as string]: 'live 0' };
      expect(await state(memex, 'alice')).toEqual(expected);
      expect(Object.keys(await state(memex, 'bob')).sort()).toEqual([...bobs].sort());
    }
  });

  it('maxMessagesPerSession with trash drops the oldest messages down to the limit; with archive it archives the session', async () => {
    for (const action of ['trash', 'archive'] as const) {
      const memex = await openMemex(backend, { maxMessagesPerSession: { limit: 3, action } });
      const big = await memex.sessions.create('alice', { title: 'big' });
      const small = await memex.sessions.create('alice', { title: 'small' });
      for (let i = 1; i <= 5; i++) await memex.messages.append('alice', big.id, { role: 'user', content: `turn ${i}` });
      await memex.messages.append('alice', small.id, { role: 'user', content: 'only turn' });
      const dry = await memex.maintain({ dryRun: true, now: NOW });
      expect(dry.actions.map((x) => [x.sessionId, x.action, x.messages])).toEqual([[big.id, action, action === 'trash' ? 2 : null]]);
      expect((await memex.messages.list('alice', big.id)).messages).toHaveLength(5);
      await memex.maintain({ now: NOW });
      if (action === 'trash') {
        expect((await memex.messages.list('alice', big.id)).messages.map((m) => m.content)).toEqual(['turn 3', 'turn 4', 'turn 5']);
        expect(await state(memex, 'alice')).toEqual({ [big.id]: 'live 3', [small.id]: 'live 1' });
      } else {
        expect(await state(memex, 'alice')).toEqual({ [big.id]: 'archived 5', [small.id]: 'live 1' });
      }
    }
  });

  it('no policy configured: nothing to do', async () => {
    const memex = await openMemex(backend, undefined);
    await sessionsAged(memex, 'alice', [1000]);
    expect((await memex.maintain({ now: NOW })).actions).toEqual([]);
  });
});
