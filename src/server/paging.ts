import { z } from 'zod';
import { MemexError } from '../core/index.js';

/**
 * Every list route pages the same way: `limit`, and where to start, either `offset` or `cursor`
 * (a page's `nextCursor`); every list answers `total` and `nextCursor` (null on the last page).
 * Query values arrive as text, so numbers are read from it.
 */
export const limitParam = z.coerce.number().int().min(1).max(1000).optional().describe('items per page (default 50, at most 1000)');
export const offsetParam = z.coerce.number().int().min(0).max(10_000_000).optional().describe('items to skip from the start; pass either offset or cursor');
export const cursorParam = z.string().min(1).max(512).optional().describe("where to continue: the previous page's nextCursor");

export const PageQuery = z.strictObject({ limit: limitParam, offset: offsetParam, cursor: cursorParam });
export type PageQueryInput = z.output<typeof PageQuery>;

export const DEFAULT_LIMIT = 50;

export interface Page<T> {
  items: T[];
  total: number;
  nextCursor: string | null;
}

/**
 * A page of a list held in memory (personas, notes, files, users: short lists). Its cursor names a
 * position, so an item added or removed between pages can shift the next one by that item.
 */
export function pageOf<T>(all: readonly T[], query: PageQueryInput): Page<T> {
  const { limit = DEFAULT_LIMIT, offset, cursor } = query;
  if (offset !== undefined && cursor !== undefined) throw new MemexError('MEMEX_INVALID_INPUT', 'pass either offset or cursor, not both');
  const start = cursor !== undefined ? readPositionCursor(cursor) : (offset ?? 0);
  const items = all.slice(start, start + limit);
  const end = start + items.length;
  return { items, total: all.length, nextCursor: end < all.length ? Buffer.from(JSON.stringify({ o: end })).toString('base64url') : null };
}

function readPositionCursor(cursor: string): number {
  try {
    const { o } = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { o?: unknown };
    if (typeof o === 'number' && Number.isInteger(o) && o >= 0) return o;
  } catch {
    // not JSON: not ours
  }
  throw new MemexError('MEMEX_INVALID_CURSOR', 'the cursor is not one Memex made');
}
