import { MemexError } from '../core/index.js';

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

/** A session cursor names the last session of a page by its place in the order: activity time, then id. */
export interface SessionPosition {
  activity: string;
  id: string;
}

export function sessionCursor(position: SessionPosition): string {
  return encode({ t: position.activity, s: position.id });
}

export function readSessionCursor(cursor: string): SessionPosition {
  const { t, s } = decode(cursor);
  if (typeof t === 'string' && typeof s === 'string') return { activity: t, id: s };
  throw notOurs();
}

function encode(value: Record<string, string>): string {
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
