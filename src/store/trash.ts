import { MemexError } from '../core/index.js';

/** What writing to a session in the trash gets: it must be restored first. */
export function sessionTrashed(sessionId: string): MemexError {
  return new MemexError('MEMEX_SESSION_TRASHED', `session ${sessionId} is in the trash; restore it first`, { details: { sessionId } });
}

export function notInTrash(sessionId: string): MemexError {
  return new MemexError('MEMEX_NOT_IN_TRASH', `session ${sessionId} is not in the trash`, { details: { sessionId } });
}

export function messageNotInTrash(sessionId: string, messageId: string): MemexError {
  return new MemexError('MEMEX_NOT_IN_TRASH', `message ${messageId} of session ${sessionId} is not in the trash`, { details: { sessionId, messageId } });
}
