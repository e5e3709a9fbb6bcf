import { MemexError, type Config, type Secret } from '../core/index.js';
import { aborted, Attempt, sleep } from './attempt.js';
import { ReplyFold } from './fold.js';
import { sseData } from './sse.js';
import { ChatRequestSchema, ChunkSchema, CompletionSchema, toUsage, type ChatChunk, type ChatReply, type ChatRequest, type ToolCall } from './types.js';

export interface ChatModelOptions {
  /** The API root, ending in `/v1`; requests go to `<baseUrl>/chat/completions`. */
  baseUrl: string;
  /** Sent when a request names no model. */
  model?: string | null;
  /** Sent as `Authorization: Bearer <key>` when set; never put in an error or a log. */
  apiKey?: string | Secret | null;
  headers?: Readonly<Record<string, string>>;
  /** Longest wait for the reply's first byte (default 120 s). */
  timeoutMs?: number;
  /** Longest silence between two reads of the reply once it has begun (default 60 s). */
  idleTimeoutMs?: number;
  /** Retries before any byte of the reply arrived: connection errors, 408, 429, 5xx (default 2). */
  maxRetries?: number;
  /** First backoff; each retry doubles it, up to `retryMaxMs`, with jitter (defaults 500 ms, 8 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** A Retry-After longer than this is not waited for: the call fails at once (default 60 s). */
  maxRetryAfterMs?: number;
  /** The fetch to call (default: Node's). */
  fetch?: typeof fetch;
}

export interface CallOptions {
  /** Cancels the call: the HTTP request to the model (or a backoff wait) ends at once, with MEMEX_ABORTED. */
  signal?: AbortSignal;
}

export interface StreamOptions extends CallOptions {
  /**
   * Ask for token usage in the last chunk (`stream_options: { include_usage: true }`) unless the
   * request sets `stream_options` itself. Servers that ignore it simply report none. Default true.
   */
  includeUsage?: boolean;
}

/** Biggest non-streamed reply read: far beyond any model's output, a bound against a runaway server. */
const MAX_REPLY_CHARS = 64 * 1024 * 1024;
/** Biggest error body read from a refusing server: enough for its message, bounded against a flood. */
const ERROR_BODY_BYTES = 64 * 1024;

/**
 * A client for one OpenAI-compatible Chat Completions server (OpenAI, Ollama, llama.cpp's server,
 * vLLM, LM Studio, ...). Requests pass through as given (unknown fields, tool definitions,
 * multi-part content included), with `model` filled in when absent and `stream` set by the method.
 * A request is retried only while no byte of its reply has arrived; a streamed reply is never retried.
 */
export class ChatModel {
  readonly baseUrl: string;
  readonly model: string | null;
  private readonly url: string;
  /** A true private field: `console.log(model)` and JSON.stringify show no key. */
  readonly #apiKey: string | null;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly timeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private readonly maxRetryAfterMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: ChatModelOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.url = `${this.baseUrl}/chat/completions`;
    this.model = options.model ?? null;
    const key = options.apiKey ?? null;
    this.#apiKey = key === null ? null : typeof key === 'string' ? key : key.reveal();
    this.headers = options.headers ?? {};
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    this.maxRetries = options.maxRetries ?? 2;
    this.retryBaseMs = options.retryBaseMs ?? 500;
    this.retryMaxMs = options.retryMaxMs ?? 8_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    this.fetch = options.fetch ?? fetch;
  }

  /** The whole reply at once (`stream: false`). */
  async complete(request: ChatRequest, options: CallOptions = {}): Promise<ChatReply> {
    const body = this.body(request, false);
    const { response, attempt } = await this.send(body, options.signal);
    try {
      const text = await readText(response, attempt, this.idleTimeoutMs, MAX_REPLY_CHARS);
      if (text.length >= MAX_REPLY_CHARS) throw badResponse(`a reply longer than ${MAX_REPLY_CHARS} characters`, undefined, null);
      const parsed = parseJson(text, 'reply');
      const result = CompletionSchema.safeParse(parsed);
      const choice = result.success ? result.data.choices[0] : undefined;
      if (!result.success || !choice) throw badResponse('a reply without choices', result.success ? undefined : result.error, parsed);
      const { data } = result;
      const toolCalls = (choice.message.tool_calls ?? []).map(
        (call): ToolCall => ({ ...call, id: call.id ?? '', type: call.type ?? 'function', function: { ...call.function, name: call.function?.name ?? '', arguments: call.function?.arguments ?? '' } }),
      );
      return {
        id: data.id ?? null,
        model: data.model ?? (body.model as string),
        content: choice.message.content ?? null,
        toolCalls,
        finishReason: choice.finish_reason ?? null,
        usage: toUsage(data.usage),
        raw: parsed as Record<string, unknown>,
      };
    } finally {
      attempt.close();
    }
  }

  /**
   * The reply as it streams: each `chat.completion.chunk` object exactly as the server sent it
   * (a proxy can forward it unchanged), until `data: [DONE]`. Fold them with `ReplyFold`. Breaking
   * out of the loop cancels the upstream request.
   */
  async *stream(request: ChatRequest, options: StreamOptions = {}): AsyncGenerator<ChatChunk, void, undefined> {
    const body = this.body(request, true);
    if ((options.includeUsage ?? true) && body.stream_options === undefined) body.stream_options = { include_usage: true };
    const { response, attempt } = await this.send(body, options.signal);
    try {
      const type = response.headers.get('content-type') ?? '';
      if (type.includes('application/json')) throw badResponse('a JSON body where a stream (text/event-stream) was asked for', undefined, null);
      let done = false;
      let finished = false;
      try {
        for await (const data of sseData(timedBody(response, attempt, this.idleTimeoutMs))) {
          if (done) continue;
          if (data.trim() === '[DONE]') {
            done = true;
            continue;
          }
          const parsed = parseJson(data, 'stream chunk');
          if (parsed !== null && typeof parsed === 'object' && (parsed as { error?: unknown }).error != null) {
            throw new MemexError('MEMEX_LLM_UNAVAILABLE', `the chat model failed mid-reply: ${this.redact(errorMessage(parsed))}`, { details: { upstreamStatus: response.status } });
          }
          const chunk = ChunkSchema.safeParse(parsed);
          if (!chunk.success) throw badResponse('a stream chunk that is not a chat.completion.chunk', chunk.error, parsed);
          if (chunk.data.choices?.some((c) => c.finish_reason)) finished = true;
          yield parsed as ChatChunk;
        }
      } catch (cause) {
        // After [DONE], or a finish reason, the reply is whole: a server that then stalls or drops
        // the connection changes nothing (only the usage chunk may be lost). A cancel still counts.
        const late = done || (finished && cause instanceof MemexError && (cause.code === 'MEMEX_LLM_UNAVAILABLE' || cause.code === 'MEMEX_LLM_TIMEOUT'));
        if (!late) throw cause;
      }
      // Some servers end without [DONE]; a finish reason says the reply is whole all the same.
      if (!done && !finished) throw new MemexError('MEMEX_LLM_UNAVAILABLE', 'the chat model\'s stream ended before the reply was complete (no finish reason, no [DONE])');
    } finally {
      attempt.close();
    }
  }

  /** `stream` folded into one reply, calling `onDelta` with each piece of text as it arrives. */
  async streamReply(request: ChatRequest, options: StreamOptions & { onDelta?: (text: string) => void } = {}): Promise<ChatReply> {
    const fold = new ReplyFold(request.model ?? this.model ?? '');
    for await (const chunk of this.stream(request, options)) {
      const text = fold.add(chunk);
      if (text !== '') options.onDelta?.(text);
    }
    return fold.reply();
  }

  private body(request: ChatRequest, stream: boolean): Record<string, unknown> {
    const parsed = ChatRequestSchema.safeParse(request);
    if (!parsed.success) {
      const summary = parsed.error.issues.map((i) => `${i.path.join('.') || '(request)'}: ${i.message}`).join('; ');
      throw new MemexError('MEMEX_INVALID_INPUT', `invalid chat request: ${summary}`, { cause: parsed.error });
    }
    const model = request.model ?? this.model;
    if (!model) throw new MemexError('MEMEX_LLM_NOT_CONFIGURED', 'no chat model is named: the request has none and llm.model is not set');
    // The request as given (unknown fields kept), not zod's copy of it.
    const body: Record<string, unknown> = { ...request, model, stream };
    if (!stream) delete body.stream_options;
    return body;
  }

  /** Sends the request, retrying failures that came before any byte of the reply; returns an OK response whose body is unread. */
  private async send(body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<{ response: Response; attempt: Attempt }> {
    const payload = JSON.stringify(body);
    const headers: Record<string, string> = { ...this.headers, 'content-type': 'application/json', accept: body.stream ? 'text/event-stream' : 'application/json' };
    if (this.#apiKey !== null) headers.authorization = `Bearer ${this.#apiKey}`;
    for (let tried = 0; ; tried++) {
      if (signal?.aborted) throw aborted(signal);
      const attempt = new Attempt(signal);
      let failure: MemexError;
      let retryAfterMs: number | null = null;
      try {
        attempt.arm('first-byte', this.timeoutMs);
        const response = await this.fetch(this.url, { method: 'POST', headers, body: payload, signal: attempt.signal });
        if (response.ok) {
          attempt.disarm();
          return { response, attempt };
        }
        const status = response.status;
        const message = this.redact(errorMessage(await readErrorBody(response, attempt, this.idleTimeoutMs)));
        attempt.close();
        retryAfterMs = retryAfter(response.headers);
        const details = { upstreamStatus: status, attempts: tried + 1 };
        if (status === 429) failure = new MemexError('MEMEX_LLM_RATE_LIMITED', `the chat model's server is rate limiting (429): ${message}`, { details });
        else if (status === 408 || (status >= 500 && status !== 501)) failure = new MemexError('MEMEX_LLM_UNAVAILABLE', `the chat model's server failed (${status}): ${message}`, { details });
        else throw new MemexError('MEMEX_LLM_REFUSED', `the chat model's server refused the request (${status}): ${message}`, { details });
      } catch (cause) {
        attempt.close();
        if (cause instanceof MemexError && cause.code === 'MEMEX_LLM_REFUSED') throw cause;
        failure = attempt.failure(cause, 'before replying');
        if (!(failure.code === 'MEMEX_LLM_UNAVAILABLE' && attempt.retryable())) throw failure;
      }
      if (tried >= this.maxRetries) throw failure;
      if (retryAfterMs !== null && retryAfterMs > this.maxRetryAfterMs) throw failure;
      await sleep(retryAfterMs ?? this.backoff(tried), signal);
    }
  }

  /** Exponential backoff with jitter: half the step fixed, half random, so retrying clients spread out. */
  private backoff(tried: number): number {
    const step = Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** tried);
    return step / 2 + Math.random() * (step / 2);
  }

  /** An upstream's message could echo the request's headers; the key never leaves this class. */
  private redact(text: string): string {
    return this.#apiKey === null ? text : text.split(this.#apiKey).join('[redacted]');
  }
}

/** The client for the configured model; MEMEX_LLM_NOT_CONFIGURED (saying how to configure one) when there is none. */
export function chatModelFromConfig(llm: Config['llm'], extra: Pick<ChatModelOptions, 'fetch' | 'retryBaseMs' | 'retryMaxMs' | 'maxRetryAfterMs'> = {}): ChatModel {
  if (llm.baseUrl === null) throw new MemexError('MEMEX_LLM_NOT_CONFIGURED', 'no chat model is configured (llm.baseUrl is not set)');
  return new ChatModel({ ...extra, baseUrl: llm.baseUrl, model: llm.model, apiKey: llm.apiKey, headers: llm.headers, timeoutMs: llm.timeoutMs, idleTimeoutMs: llm.idleTimeoutMs, maxRetries: llm.maxRetries });
}

/** Reads the body, each read within `idleMs` of the last, turning failures into coded errors. */
async function* timedBody(response: Response, attempt: Attempt, idleMs: number): AsyncGenerator<Uint8Array> {
  if (!response.body) return;
  const reader = response.body.getReader();
  try {
    for (;;) {
      attempt.arm('idle', idleMs);
      let result: Awaited<ReturnType<typeof reader.read>>;
      try {
        result = await reader.read();
      } catch (cause) {
        throw attempt.failure(cause, 'mid-reply');
      } finally {
        attempt.disarm();
      }
      if (result.done) return;
      yield result.value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function readText(response: Response, attempt: Attempt, idleMs: number, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const bytes of timedBody(response, attempt, idleMs)) {
    text += decoder.decode(bytes, { stream: true });
    if (text.length > limit) return text.slice(0, limit);
  }
  return text + decoder.decode();
}

async function readErrorBody(response: Response, attempt: Attempt, idleMs: number): Promise<string> {
  try {
    return await readText(response, attempt, idleMs, ERROR_BODY_BYTES);
  } catch (cause) {
    if (cause instanceof MemexError && cause.code === 'MEMEX_ABORTED') throw cause;
    return '';
  }
}

/** The human part of an error body: OpenAI's `{ error: { message } }`, its variants, or the text itself. */
function errorMessage(body: unknown): string {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.trim().slice(0, 500) || 'no message';
    }
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const error = record.error;
    if (typeof error === 'string') return error.slice(0, 500);
    if (error !== null && typeof error === 'object' && typeof (error as Record<string, unknown>).message === 'string') return ((error as Record<string, unknown>).message as string).slice(0, 500);
    for (const key of ['message', 'detail']) if (typeof record[key] === 'string') return (record[key]).slice(0, 500);
  }
  return JSON.stringify(value).slice(0, 500);
}

/** Retry-After as milliseconds: OpenAI's `retry-after-ms`, else seconds or an HTTP date; null when absent or unreadable. */
function retryAfter(headers: Headers): number | null {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : null;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new MemexError('MEMEX_LLM_BAD_RESPONSE', `the chat model's server sent a ${what} that is not JSON: ${JSON.stringify(text.slice(0, 120))}`, { cause });
  }
}

function badResponse(what: string, cause: unknown, body: unknown): MemexError {
  const upstream = body !== null && typeof body === 'object' && 'error' in body ? `: ${errorMessage(body)}` : '';
  return new MemexError('MEMEX_LLM_BAD_RESPONSE', `the chat model's server sent ${what}${upstream}`, cause === undefined ? {} : { cause });
}
