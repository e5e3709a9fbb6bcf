import { describe, expect, it } from 'vitest';
import { idProblem, newMessageId, newSessionId, parseId, ulid } from '../../src/core/index.js';
import { expectCode } from '../helpers/errors.js';

describe('ids', () => {
  it.each(['alice', 'user-1', 'a.b_c', 'U123ABC', '20240722-153012-k3x9q2', 'x'.repeat(128)])('accepts %s', (id) => {
    expect(idProblem(id)).toBeNull();
    expect(parseId('user', id)).toBe(id);
  });

  it.each([
    ['a slash', 'a/b'],
    ['a backslash', 'a\\b'],
    ['dot-dot', '..'],
    ['dot-dot inside', 'a..b'],
    ['a traversal', '../etc'],
    ['NUL', 'a\0b'],
    ['too long', 'x'.repeat(129)],
    ['empty', ''],
    ['a leading dot', '.hidden'],
    ['a space', 'a b'],
    ['unicode', 'usér'],
  ])('refuses an id with %s', async (_why, id) => {
    expect(idProblem(id)).not.toBeNull();
    await expectCode(() => parseId('session', id), 'MEMEX_INVALID_ID');
  });

  it('refuses non-strings', async () => {
    await expectCode(() => parseId('user', 42), 'MEMEX_INVALID_ID');
    await expectCode(() => parseId('file', 'abc'), 'MEMEX_INVALID_ID');
  });

  it('makes session ids that read as their UTC creation time and sort by it', () => {
    const id = newSessionId(new Date('2024-07-22T15:30:12Z'));
    expect(id).toMatch(/^20240722-153012-[0-9a-z]{6}$/);
    expect(newSessionId(new Date('2024-07-22T15:30:13Z')) > id).toBe(true);
  });

  it('makes ULIDs that sort in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 1000 }, () => ulid(1_700_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(newMessageId()).toMatch(/^msg_[0-9a-z]{26}$/);
  });
});
