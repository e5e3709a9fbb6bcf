import { z } from 'zod';
import { MemexError, NewMessageSchema, type Message, type NewMessage, type SessionSummary } from '../core/index.js';
import type { ContextOptionsInput } from '../core/index.js';
import type { ContextWindow } from '../context/index.js';
import type { AppendOptions } from '../store/index.js';
import { ReplyFold, type ChatChunk, type ChatModel, type ChatReply, type ChatRequest } from '../llm/index.js';

/**
 * The memory proxy: a standard OpenAI Chat Completions request in, the same answer out, with
 * Memex in between. The new turns of the request are stored in the session, the messages sent
 * upstream are the session's budgeted context window (the app's system prompt, persona, notes,
 * summary, memories recalled from all the user's sessions, recent turns), and the reply is stored
 * with its model and token usage. Streamed chunks are passed on as the upstream sent them.
 */

/** The request as any OpenAI SDK sends it; fields Memex does not know pass through to the model. */
export const ProxyRequestSchema = z.looseObject({
  model: z.string().min(1).max(256).optional(),
  messages: z
    .array(z.looseObject({ role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']), content: z.unknown().optional() }))
    .min(1)
    .max(10_000),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
});
export type ProxyRequest = z.infer<typeof ProxyRequestSchema>;

export interface ProxyDeps {
  model(): ChatModel;
  getSession(userId: string, sessionId: string): Promise<SessionSummary>;
  createSession(userId: string): Promise<SessionSummary>;
  /** Stores messages; an imported (read-only) session is refused before anything is written. `embed` queues their embedding. */
  append(userId: string, sessionId: string, messages: NewMessage[]): Promise<Message[]>;
  /** Stores the model's reply, adding its usage to the session's running totals in the same write (and queues its embedding). */
  appendReply(userId: string, sessionId: string, message: NewMessage, options: AppendOptions): Promise<Message>;
  /** Starts embedding the text a window will recall for, so that it is ready when the window is built. */
  warmQuery(query: string): void;
  /** Waits until the user's messages in other sessions are searchable (see `ChatDeps.settle`). */
  settle(userId: string, sessionId: string): Promise<void>;
  /** Queues the session's messages that have no rows yet for background embedding. */
  embed(userId: string, sessionId: string): void;
  /** Builds the window without settling first: `settle` ran before the new turns were stored. */
  buildContext(userId: string, options: ContextOptionsInput): Promise<ContextWindow>;
}

export interface ProxyOptions {
  /** The session to continue (`X-Memex-Session`); a new one is created when absent. */
  sessionId?: string | undefined;
  /** The model's context length in tokens (`X-Memex-Budget`). */
  budget: number;
  signal?: AbortSignal | undefined;
}

export interface ProxyTurn {
  sessionId: string;
  /** Whether this request created the session (its earlier turns, if it sent any, were stored too). */
  created: boolean;
  /** The request's new turns, as stored. */
  turns: Message[];
  /** The request as sent upstream: the client's, with the window for messages. */
  upstream: ChatRequest;
  window: ContextWindow['report'];
}

/** A non-streamed answer: the upstream's JSON, unchanged. */
export interface ProxyCompletion extends ProxyTurn {
  response: unknown;
  stored: Message;
}

/** A streamed answer: the upstream's chunks, unchanged; the reply is stored when they end (or stop). */
export interface ProxyStream extends ProxyTurn {
  chunks: AsyncIterable<ChatChunk>;
  /** Resolves with the stored reply once `chunks` has ended, either way (null when nothing was received). */
  stored: Promise<Message | null>;
}

/** Stores the request's new turns and prepares the upstream request. */
async function openTurn(deps: ProxyDeps, userId: string, raw: unknown, options: ProxyOptions): Promise<ProxyTurn & { request: ProxyRequest }> {
  const parsed = ProxyRequestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MemexError('MEMEX_INVALID_INPUT', `not a Chat Completions request: ${issue ? `${issue.path.join('.') || '(body)'}: ${issue.message}` : 'unreadable'}`);
  }
  const request = parsed.data;
  const model = deps.model(); // MEMEX_LLM_NOT_CONFIGURED before anything is written
  let sessionId = options.sessionId;
  let created = false;
  if (sessionId !== undefined) await deps.getSession(userId, sessionId);
  const system = request.messages.filter((m) => m.role === 'system' || m.role === 'developer').map((m) => textOf(m.content));
  const turns = request.messages.filter((m) => m.role !== 'system' && m.role !== 'developer');
  // A continued session has its history: only what follows the last assistant turn is new (the
  // user's message, or the results of the tools that turn called). A new one takes the whole thread.
  const last = turns.at(-1)?.role;
  if (last !== 'user' && last !== 'tool') throw new MemexError('MEMEX_INVALID_INPUT', "the request's last message must be the user's (or a tool's result): that is the turn the model answers");
  const lastAssistant = turns.map((m) => m.role).lastIndexOf('assistant');
  const fresh = sessionId === undefined ? turns : turns.slice(lastAssistant + 1);
  const messages = fresh.map((m, i) => toNewMessage(m, i));
  if (sessionId === undefined) {
    sessionId = (await deps.createSession(userId)).id;
    created = true;
  }
  // As a chat turn does (chat/turn.ts): the window recalls for the user's latest text, embedded while
  // the turns are stored; this session's new turns are embedded once the window is built (it shows them).
  const asked = fresh.findLast((m) => m.role === 'user');
  if (asked) deps.warmQuery(textOf(asked.content).slice(0, 10_000));
  await deps.settle(userId, sessionId);
  const stored = await deps.append(userId, sessionId, messages);
  let window: ContextWindow;
  try {
    window = await deps.buildContext(userId, { sessionId, budget: options.budget, ...(system.length > 0 ? { system: system.join('\n\n') } : {}) });
  } finally {
    deps.embed(userId, sessionId);
  }
  const { messages: _client, stream: _stream, stream_options: _options, ...rest } = request;
  const upstream: ChatRequest = { ...rest, ...(request.model ? {} : model.model ? { model: model.model } : {}), messages: window.messages.map((message) => ({ ...message })) };
  return { sessionId, created, turns: stored, upstream, window: window.report, request };
}

/** The whole answer at once (`stream` false or absent). */
export async function proxyComplete(deps: ProxyDeps, userId: string, raw: unknown, options: ProxyOptions): Promise<ProxyCompletion> {
  const turn = await openTurn(deps, userId, raw, options);
  const started = Date.now();
  const reply = await deps.model().complete(turn.upstream, options.signal ? { signal: options.signal } : {});
  const stored = await storeReply(deps, userId, turn.sessionId, reply, { latencyMs: Date.now() - started, incomplete: false });
  const { request: _request, ...rest } = turn;
  return { ...rest, response: reply.raw, stored };
}

/** The answer as the upstream's stream of chunks (`stream: true`). */
export async function proxyStream(deps: ProxyDeps, userId: string, raw: unknown, options: ProxyOptions): Promise<ProxyStream> {
  const turn = await openTurn(deps, userId, raw, options);
  const model = deps.model();
  // Usage is asked for to store it; the chunk that carries it goes on only when the client asked too.
  const clientWantsUsage = turn.request.stream_options?.include_usage === true;
  const upstream = { ...turn.upstream, ...(turn.request.stream_options ? { stream_options: { ...turn.request.stream_options, include_usage: true } } : {}) };
  let settle: (message: Message | null) => void = () => undefined;
  const stored = new Promise<Message | null>((resolve) => (settle = resolve));
  const started = Date.now();
  async function* chunks(): AsyncGenerator<ChatChunk> {
    const fold = new ReplyFold(String(upstream.model ?? model.model ?? ''));
    let received = false;
    let complete = false;
    try {
      for await (const chunk of model.stream(upstream, { ...(options.signal ? { signal: options.signal } : {}), includeUsage: true })) {
        received = true;
        fold.add(chunk);
        const usageOnly = Array.isArray(chunk.choices) && chunk.choices.length === 0 && chunk.usage !== undefined;
        if (!usageOnly || clientWantsUsage) yield chunk;
      }
      complete = true;
    } finally {
      // The reply so far is kept, marked incomplete, when the client or the model stopped it.
      const reply = fold.reply();
      const message = received && (reply.content || reply.toolCalls.length > 0) ? await storeReply(deps, userId, turn.sessionId, reply, { latencyMs: Date.now() - started, incomplete: !complete }).catch(() => null) : null;
      settle(message);
    }
  }
  const { request: _request, ...rest } = turn;
  return { ...rest, chunks: chunks(), stored };
}

async function storeReply(deps: ProxyDeps, userId: string, sessionId: string, reply: ChatReply, how: { latencyMs: number; incomplete: boolean }): Promise<Message> {
  const message: NewMessage = {
    role: 'assistant',
    content: reply.content ?? (reply.toolCalls.length > 0 ? null : ''),
    ...(reply.toolCalls.length > 0 ? { tool_calls: reply.toolCalls as NonNullable<NewMessage['tool_calls']> } : {}),
    metadata: { via: 'proxy', model: reply.model, usage: reply.usage, finishReason: reply.finishReason, latencyMs: how.latencyMs, ...(how.incomplete ? { incomplete: true } : {}) },
  };
  return deps.appendReply(userId, sessionId, message, reply.usage ? { usage: reply.usage } : {});
}

/** A client message as a stored one; a message Memex cannot store is the caller's error, with where it is. */
function toNewMessage(message: ProxyRequest['messages'][number], index: number): NewMessage {
  const { role, content, name, tool_calls, tool_call_id } = message as Record<string, unknown>;
  const candidate = {
    role,
    content: content === undefined ? null : content,
    ...(typeof name === 'string' ? { name } : {}),
    ...(tool_calls !== undefined ? { tool_calls } : {}),
    ...(tool_call_id !== undefined ? { tool_call_id } : {}),
    metadata: { via: 'proxy' },
  };
  const parsed = NewMessageSchema.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MemexError('MEMEX_INVALID_INPUT', `message ${index} of the new turns cannot be stored: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`, { details: { index } });
  }
  return parsed.data;
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) => {
        const { type, text } = (typeof part === 'object' && part !== null ? part : {}) as { type?: unknown; text?: unknown };
        return type === 'text' && typeof text === 'string' ? text : '';
      })
      .filter((text) => text !== '')
      .join('\n');
  }
  return '';
}
