import { describe, expect, it } from 'vitest';
import { errorCodes, isMemexError, MemexError, toMemexError } from '../../src/core/index.js';

describe('error catalogue', () => {
  it('gives every code an HTTP status and a hint', () => {
    for (const code of errorCodes) {
      const error = new MemexError(code, 'x');
      expect(error.statusCode).toBeGreaterThanOrEqual(400);
      expect(error.hint.length).toBeGreaterThan(10);
      expect(code).toMatch(/^MEMEX_[A-Z_]+$/);
    }
  });

  it('keeps the native cause and serialises without it', () => {
    const cause = new Error('disk on fire');
    const error = new MemexError('MEMEX_IO', 'cannot write', { cause, details: { path: '/x' } });
    expect(error.cause).toBe(cause);
    expect(JSON.parse(JSON.stringify(error))).toEqual({ code: 'MEMEX_IO', message: 'cannot write', hint: error.hint, details: { path: '/x' } });
  });

  it('wraps system errors as MEMEX_IO (a full disk as MEMEX_DISK_FULL) and anything else as MEMEX_INTERNAL', () => {
    const eacces = Object.assign(new Error('denied'), { code: 'EACCES' });
    expect(toMemexError(eacces).code).toBe('MEMEX_IO');
    // A full disk (or quota) is its own code: the caller can act on it.
    const enospc = Object.assign(new Error('no space'), { code: 'ENOSPC' });
    expect(toMemexError(enospc)).toMatchObject({ code: 'MEMEX_DISK_FULL', statusCode: 507 });
    expect(toMemexError(new TypeError('oops')).code).toBe('MEMEX_INTERNAL');
    const known = new MemexError('MEMEX_USER_NOT_FOUND', 'nope');
    expect(toMemexError(known)).toBe(known);
    expect(isMemexError(known, 'MEMEX_USER_NOT_FOUND')).toBe(true);
    expect(isMemexError(known, 'MEMEX_IO')).toBe(false);
  });
});
