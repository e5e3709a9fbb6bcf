import { expect } from 'vitest';
import { isMemexError, type MemexError, type MemexErrorCode } from '../../src/core/index.js';

/** Asserts that `promise` rejects with a MemexError of `code` (never the message: messages may change). */
export async function expectCode(promise: Promise<unknown> | (() => unknown), code: MemexErrorCode): Promise<MemexError> {
  let caught: unknown = null;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected ${code}`).not.toBeNull();
  if (!isMemexError(caught)) throw caught as Error;
  expect(caught.code).toBe(code);
  return caught;
}
