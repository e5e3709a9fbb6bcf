import type { SessionSort, SessionSummary } from '../core/index.js';
import { foldCase } from './text.js';

/**
 * The order of a session listing, as the flat files apply it in memory; the PostgreSQL store says
 * the same in SQL (postgres/sessions.ts). Titles compare folded (case and accents), by code unit,
 * which is the order of PostgreSQL's "C" collation for all but characters beyond the BMP.
 */
type Listed = Pick<SessionSummary, 'id' | 'title' | 'createdAt' | 'lastMessageAt' | 'messageCount'>;

/** The last activity of a session: its last message, else its creation. */
export function activityOf(session: Pick<SessionSummary, 'lastMessageAt' | 'createdAt'>): string {
  return session.lastMessageAt ?? session.createdAt;
}

export function sortValue(session: Listed, sort: SessionSort): string | number {
  switch (sort) {
    case 'activity':
      return activityOf(session);
    case 'created':
      return session.createdAt;
    case 'title':
      return session.title === null ? '' : foldCase(session.title);
    case 'messages':
      return session.messageCount;
  }
}

/** Negative when (a, aId) comes first in ascending order. */
export function comparePositions(a: string | number, aId: string, b: string | number, bId: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return aId < bId ? -1 : aId > bId ? 1 : 0;
}
