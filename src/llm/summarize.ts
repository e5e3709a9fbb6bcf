import { MemexError } from '../core/index.js';
import type { ChatModel } from './client.js';

/** What a model summary is made from (the shape of context's `ModelSummaryRequest`). */
export interface SummaryRequest {
  previous: string | null;
  messages: readonly { role: string; content: string; createdAt: string }[];
  maxTokens: number;
  signal?: AbortSignal;
}

const INSTRUCTIONS = [
  'You maintain the running summary of a conversation between a user and an assistant.',
  'You get the summary so far (maybe none) and the turns that come right after it.',
  'Write the updated summary: keep every durable fact, decision, preference, name, date and open question;',
  'drop greetings and small talk; write plain sentences in the third person ("The user ..."), oldest first;',
  'no preamble, no headings, no markdown. Never invent anything that is not in the turns.',
].join(' ');

/** The chat request that asks a model to extend a rolling summary. */
export function summaryMessages(request: SummaryRequest): { role: string; content: string }[] {
  const turns = request.messages.map((m) => `[${m.createdAt.slice(0, 16).replace('T', ' ')}] ${m.role}: ${m.content}`).join('\n');
  const user = [
    `Summary so far:\n${request.previous?.trim() || '(none yet)'}`,
    `New turns:\n${turns}`,
    `Write the updated summary in at most ${Math.max(16, Math.floor(request.maxTokens * 0.75))} words.`,
  ].join('\n\n');
  return [
    { role: 'system', content: INSTRUCTIONS },
    { role: 'user', content: user },
  ];
}

/** Asks `model` for the extended summary; its text, trimmed. */
export async function summarizeWith(model: ChatModel, request: SummaryRequest): Promise<string> {
  // No max_tokens or temperature: reasoning models refuse both (they take max_completion_tokens and
  // a fixed temperature), and the prompt's word limit plus the summarizer's clipping to its cap suffice.
  const reply = await model.complete({ messages: summaryMessages(request) }, request.signal ? { signal: request.signal } : {});
  const text = reply.content?.trim() ?? '';
  if (text === '') throw new MemexError('MEMEX_LLM_BAD_RESPONSE', 'the chat model returned an empty summary');
  return text;
}
