import { MemexError, type SessionSort } from '../core/index.js';

/**
 * Page cursors are opaque to callers: base64url JSON naming where a page ended, so a page can be
 * continued even while the list grows. Every backend makes and reads them the same way.
 */

/** A message cursor names a message; `cursor` continues after it, `before` before it. */
export function messageCursor(messageId: string): string {
  return encode({ m: messageId });
}

export function readMessageCursor(cursor: string): string {
  const decoded = decode(cursor);
  // `after` is what cursors looked like before `before` existed; they are still accepted.
  const id = decoded.m ?? decoded.after;
  if (typeof id === 'string') return id;
  throw notOurs();
}

/**
 * A session cursor names the last session of a page by its place in the order it was listed in:
 * the sort, the direction, that session's sort value, then its id (the tie-break).
 */
export interface SessionPosition {
  sort: SessionSort;
  order: 'asc' | 'desc';
  value: string | number;
  id: string;
}

export function sessionCursor(position: SessionPosition): string {
  return encode({ k: position.sort, o: position.order, v: position.value, s: position.id });
}

/** The position, refused (MEMEX_INVALID_CURSOR) when it was made for another sort or direction. */
export function readSessionCursor(cursor: string, sort: SessionSort, order: 'asc' | 'desc'): SessionPosition {
  const { t, s, k, o, v } = decode(cursor);
  // Cursors made before sorting existed name an activity time, newest first.
  const made = typeof t === 'string' && k === undefined ? { sort: 'activity', order: 'desc', value: t } : { sort: k, order: o, value: v };
  if (typeof s !== 'string' || (typeof made.value !== 'string' && typeof made.value !== 'number')) throw notOurs();
  if (made.sort !== sort || made.order !== order) {
    throw new MemexError('MEMEX_INVALID_CURSOR', `the cursor continues a listing sorted by ${String(made.sort)} ${String(made.order)}, not ${sort} ${order}`);
  }
  if ((sort === 'messages') !== (typeof made.value === 'number')) throw notOurs();
  return { sort, order, value: made.value, id: s };
}

function encode(value: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decode(cursor: string): Record<string, unknown> {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (decoded !== null && typeof decoded === 'object' && !Array.isArray(decoded)) return decoded as Record<string, unknown>;
  } catch {
    // not JSON: not ours
  }
  throw notOurs();
}

function notOurs(): MemexError {
  return new MemexError('MEMEX_INVALID_CURSOR', 'the cursor is not one Memex made');
}
