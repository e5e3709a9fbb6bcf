import { ChatInputSchema, MemexError, parseInput, toMemexError, type ChatInput, type Message, type NewMessage, type NewSession, type SessionSummary } from '../core/index.js';
import type { ContextOptions, ContextWindow } from '../context/index.js';
import { ReplyFold, type ChatChunk, type ChatModel, type ChatRequest } from '../llm/index.js';
import type { AppendOptions } from '../store/index.js';
import type { ChatError, ChatEvent, ReplyMetadata } from './events.js';
import { modelTitle } from './title.js';

/**
 * What a chat turn needs of the facade. `append` is the facade's own (the read-only check, then
 * the store), so a turn stores exactly what `messages.append` would; the turn queues the embedding
 * itself (`embed`), once its window is built, so that work runs beside the model call.
 */
export interface ChatDeps {
  /** The chat model; throws MEMEX_LLM_NOT_CONFIGURED when there is none. */
  model(): ChatModel;
  settings: { contextTokens: number; titles: boolean };
  getSession(userId: string, sessionId: string): Promise<SessionSummary>;
  createSession(userId: string, input: NewSession): Promise<SessionSummary>;
  /** Throws MEMEX_PERSONA_NOT_FOUND for a persona the user does not have. */
  requirePersona(userId: string, personaId: string): Promise<void>;
  append(userId: string, sessionId: string, message: NewMessage, options?: AppendOptions): Promise<Message>;
  /**
   * Queues the session's messages that have no rows yet for background embedding; `later` waits a
   * moment first (for the next turn's model call, which takes the work along: see MessageIndexer.defer).
   */
  embed(userId: string, sessionId: string, later?: boolean): void;
  /** Starts embedding a query a window will recall for, so that it is ready when the window is built. */
  warmQuery(query: string): void;
  /**
   * Waits until the user's earlier messages are searchable (catching up after a restart), except
   * those of `sessionId`: the window shows that session's recent turns verbatim.
   */
  settle(userId: string, sessionId: string): Promise<void>;
  /** Builds the window without settling first: `settle` ran before the user's turn was stored. */
  buildContext(userId: string, options: ContextOptions): Promise<ContextWindow>;
}

export interface ChatTurnOptions {
  /** Cancels the turn: the model call ends at once and what it had said is stored marked incomplete. */
  signal?: AbortSignal;
}

/**
 * One chat turn: the user's text stored durably, the window built around it (memories recalled
 * from every session of the user), the model's reply streamed, and the reply stored with its
 * model, usage and timings. Refusals come before anything is written and are thrown by the first
 * `next()` (no model configured, an unknown or another user's session, an imported one, bad
 * input); once the user's turn is stored, every failure ends the stream with an `error` event and
 * the user's turn stays. A consumer that stops iterating (or aborts `signal`) cancels the model
 * call; what it had said is stored marked incomplete.
 */
export async function* chatTurn(deps: ChatDeps, userId: string, input: ChatInput, options: ChatTurnOptions = {}): AsyncGenerator<ChatEvent, void, undefined> {
  // Parsed inside the generator: bad input is thrown by the first `next()`, as every refusal is.
  const turn = parseInput(ChatInputSchema, input, 'chat input');
  yield* runTurn(deps, userId, {
    message: { role: 'user', content: turn.text },
    query: turn.text,
    ...(turn.sessionId !== undefined ? { sessionId: turn.sessionId } : {}),
    ...(turn.personaId !== undefined ? { personaId: turn.personaId } : {}),
    ...(turn.budget !== undefined ? { budget: turn.budget } : {}),
    ...(turn.reserve !== undefined ? { reserve: turn.reserve } : {}),
    ...(turn.system !== undefined ? { system: turn.system } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * A turn as `runTurn` takes it: what `chatTurn` makes of its input, and what a caller with its own
 * wire format (the OpenAI-compatible memory proxy) builds: the user's message as stored (content
 * parts, a name), the request sent upstream made from the window (tools, sampling settings kept),
 * and each raw chunk handed over as it arrives (to forward unchanged).
 */
export interface TurnSpec {
  /** The user's turn, stored before the model is called. */
  message: NewMessage;
  /** What the window recalls memories for (default: the stored user turn's text). */
  query?: string;
  sessionId?: string;
  personaId?: string | null;
  budget?: number;
  reserve?: number;
  system?: string;
  /** The request sent upstream (default: the window's messages alone). */
  request?: (window: ContextWindow) => ChatRequest;
  /** Each chunk as the model's server sent it, before its text becomes a `delta`. */
  onChunk?: (chunk: ChatChunk) => void;
  /** Title a new session by the model (default `llm.titles`). */
  title?: boolean;
  signal?: AbortSignal;
}

/** The turn `chatTurn` runs, for callers that speak another wire format; see `TurnSpec`. */
export async function* runTurn(deps: ChatDeps, userId: string, spec: TurnSpec): AsyncGenerator<ChatEvent, void, undefined> {
  const { signal } = spec;
  const model = deps.model();
  if (signal?.aborted) throw new MemexError('MEMEX_ABORTED', 'the chat turn was cancelled before it began');

  let session: SessionSummary;
  const created = spec.sessionId === undefined;
  if (spec.sessionId !== undefined) {
    session = await deps.getSession(userId, spec.sessionId);
    if (session.origin.kind === 'imported') {
      throw new MemexError('MEMEX_SESSION_READ_ONLY', `session ${session.id} is an imported conversation and cannot be changed; start a new session to go on from it`, { details: { sessionId: session.id } });
    }
    if (session.trashedAt !== null) throw new MemexError('MEMEX_SESSION_TRASHED', `session ${session.id} is in the trash; restore it first`, { details: { sessionId: session.id } });
    if (spec.personaId) await deps.requirePersona(userId, spec.personaId);
  } else {
    session = await deps.createSession(userId, spec.personaId ? { personaId: spec.personaId } : {});
  }
  const sessionId = session.id;
  // The window recalls for this text: its embedding runs while the turn is stored.
  if (spec.query !== undefined) deps.warmQuery(spec.query);
  // The user's turns in other sessions become searchable first. This session's latest turns, and
  // the new one, are embedded beside the model call instead of before it: the window shows them
  // verbatim, so recall would drop them as in-window anyway.
  await deps.settle(userId, sessionId);
  const userMessage = await deps.append(userId, sessionId, spec.message);
  try {
    yield* afterUserTurn(deps, userId, spec, { model, sessionId, created, userMessage });
  } finally {
    // However the turn ends (done, an error, a consumer that stopped listening), what it stored gets
    // rows: shortly, so that a next turn right after (an agent's loop) has its query embedded first.
    deps.embed(userId, sessionId, true);
  }
}

/** The rest of a turn once the user's message is stored: the window, the model's reply, the reply stored. */
async function* afterUserTurn(
  deps: ChatDeps,
  userId: string,
  spec: TurnSpec,
  turn: { model: ChatModel; sessionId: string; created: boolean; userMessage: Message },
): AsyncGenerator<ChatEvent, void, undefined> {
  const { signal } = spec;
  const { model, sessionId, created, userMessage } = turn;
  yield { type: 'session', created, session: await deps.getSession(userId, sessionId), userMessage };

  const fail = (cause: unknown, partial: Message | null = null): ChatEvent => {
    const error = toMemexError(cause, 'the chat turn failed');
    const shown: ChatError = { code: error.code, message: error.message, hint: error.hint, details: { ...error.details, sessionId, userMessageId: userMessage.id } };
    return { type: 'error', error: shown, userMessage, partial };
  };

  let window: ContextWindow;
  try {
    window = await deps.buildContext(userId, {
      sessionId,
      budget: spec.budget ?? deps.settings.contextTokens,
      ...(spec.reserve !== undefined ? { reserve: spec.reserve } : {}),
      ...(spec.system !== undefined ? { system: spec.system } : {}),
      ...(spec.query !== undefined ? { query: spec.query.slice(0, 10_000) } : {}),
      ...(spec.personaId !== undefined && !created ? { personaId: spec.personaId } : {}),
      ...(signal ? { signal } : {}),
    });
  } catch (cause) {
    yield fail(cause);
    return;
  }
  // The new turn is embedded now, beside the model call: the window just built shows it verbatim,
  // and building it did not wait behind that work.
  deps.embed(userId, sessionId);
  yield { type: 'context', report: window.report };

  // The window's messages are plain JSON objects of the chat format; the wire type only adds an index signature.
  const request: ChatRequest = spec.request ? spec.request(window) : { messages: window.messages.map((m) => ({ ...m })) };
  const fold = new ReplyFold(model.model ?? '');
  const started = performance.now();
  let firstTokenMs: number | null = null;
  let outcome: 'streaming' | 'complete' | 'failed' = 'streaming';
  let failure: MemexError | null = null;
  const metadata = (extra: Partial<ReplyMetadata> = {}): ReplyMetadata => {
    const reply = fold.reply();
    return { model: reply.model, usage: reply.usage, finishReason: reply.finishReason, latencyMs: round(performance.now() - started), firstTokenMs, ...extra };
  };
  /** What the model had said when the turn was cut short, stored marked incomplete (nothing when it had said nothing). */
  const keepPartial = async (code: MemexError['code']): Promise<Message | null> => {
    const text = fold.reply().content ?? '';
    if (text === '') return null;
    const meta = metadata({ incomplete: true, error: code });
    return deps.append(userId, sessionId, { role: 'assistant', content: text, metadata: { ...meta } }, meta.usage ? { usage: meta.usage } : {});
  };

  try {
    for await (const chunk of model.stream(request, signal ? { signal } : {})) {
      spec.onChunk?.(chunk);
      const text = fold.add(chunk);
      if (text === '') continue;
      firstTokenMs ??= round(performance.now() - started);
      yield { type: 'delta', text };
    }
    outcome = 'complete';
  } catch (cause) {
    outcome = 'failed';
    failure = toMemexError(cause, 'the chat model failed');
  } finally {
    // Still 'streaming' here: the consumer stopped iterating at a `delta` (a CLI's Ctrl-C, a
    // `break`); the model call was cancelled by leaving the loop. What came is kept.
    if (outcome === 'streaming') await keepPartial('MEMEX_ABORTED').catch(() => null);
  }

  if (failure) {
    let partial: Message | null = null;
    try {
      partial = await keepPartial(failure.code);
    } catch {
      // The failure reported is the model's; a store that also fails is the next turn's to report.
    }
    yield fail(failure, partial);
    return;
  }

  try {
    const reply = fold.reply();
    const content = reply.content ?? '';
    const meta = metadata();
    const asked = typeof userMessage.content === 'string' ? userMessage.content : '';
    const title = created && (spec.title ?? deps.settings.titles) && asked !== '' ? await modelTitle(model, asked, content, signal) : null;
    const appendOptions: AppendOptions = { ...(reply.usage ? { usage: reply.usage } : {}), ...(title !== null ? { autoTitle: title } : {}) };
    // Tool calls the model asked for are stored with the turn (the proxy passes tools through).
    const calls = reply.toolCalls.filter((call) => call.id !== '' && call.function.name !== '').map((call) => ({ id: call.id, type: 'function' as const, function: call.function }));
    const stored: NewMessage = calls.length > 0 ? { role: 'assistant', content: reply.content, tool_calls: calls, metadata: { ...meta } } : { role: 'assistant', content, metadata: { ...meta } };
    const message = await deps.append(userId, sessionId, stored, appendOptions);
    yield { type: 'done', message, session: await deps.getSession(userId, sessionId), model: reply.model, usage: reply.usage };
  } catch (cause) {
    yield fail(cause);
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
