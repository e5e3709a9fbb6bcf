import type { Message, MemexErrorCode, SessionSummary } from '../core/index.js';
import type { ContextReport } from '../context/index.js';
import type { Usage } from '../llm/index.js';

/** A coded error as a chat stream carries it (a MemexError's JSON). */
export interface ChatError {
  code: MemexErrorCode;
  message: string;
  hint: string;
  details: Readonly<Record<string, unknown>>;
}

/**
 * What one chat turn streams, in order: `session` once the user's turn is stored, `context` once
 * the window is built, `delta` for each piece of the reply, then `done` (the assistant's stored
 * turn) or `error` (the user's turn stays stored; a partial reply is stored marked incomplete).
 * Each event is plain JSON, the same in the library, over HTTP (one SSE event each) and in the CLI.
 */
export type ChatEvent =
  | { type: 'session'; created: boolean; session: SessionSummary; userMessage: Message }
  | { type: 'context'; report: ContextReport }
  | { type: 'delta'; text: string }
  | { type: 'done'; message: Message; session: SessionSummary; model: string; usage: Usage | null }
  | { type: 'error'; error: ChatError; userMessage: Message; partial: Message | null };

/**
 * What an assistant turn stored by chat has in its metadata: the model that answered, its token
 * usage (null when the server reported none), and timings of the model call (first text, whole reply).
 */
export interface ReplyMetadata {
  model: string;
  usage: Usage | null;
  finishReason: string | null;
  latencyMs: number;
  firstTokenMs: number | null;
  /** Set on a reply cut short (the client went away, the model failed mid-reply): what arrived is kept. */
  incomplete?: true;
  /** Why it was cut short. */
  error?: MemexErrorCode;
}
