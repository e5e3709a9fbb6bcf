import { afterAll, afterEach, beforeAll } from 'vitest';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A FAKE OpenAI-compatible Chat Completions server for tests: a real node:http server on
 * 127.0.0.1, answering each request with the next scripted reply (or `fallback` when the script
 * is empty), in SSE when the request says `stream: true` and as one JSON body otherwise. It
 * records every request (body, headers) and whether the client went away before the reply ended,
 * so a test can assert that an abort reached the upstream.
 */

export interface FakeUsage {
  prompt: number;
  completion: number;
}

export interface FakeToolCall {
  id: string;
  name: string;
  arguments: string;
}

export type FakeReply =
  /** A reply: `text` split into `chunks` streamed pieces (default 3), `delayMs` apart. */
  | {
      kind: 'text';
      text: string;
      chunks?: number;
      delayMs?: number;
      /** Reported when the request asks for it (stream_options.include_usage) or always when not streamed; false: never. */
      usage?: FakeUsage | false;
      /** Behave like servers that ignore stream_options: no usage chunk. */
      ignoreStreamOptions?: boolean;
      model?: string;
      finishReason?: string;
      /** Leave out the final `data: [DONE]`. */
      noDone?: boolean;
      /** Write this SSE text before the first chunk (comments, keep-alives). */
      preamble?: string;
      /** Use CRLF line ends. */
      crlf?: boolean;
    }
  /** Tool calls, the arguments of each streamed in `chunks` pieces. */
  | { kind: 'tool_calls'; calls: FakeToolCall[]; chunks?: number; usage?: FakeUsage | false }
  /** An error status with an OpenAI-style error body. */
  | { kind: 'status'; status: number; message?: string; headers?: Record<string, string>; body?: string }
  /** Never answers (not even headers) until the client goes away. */
  | { kind: 'hang' }
  /** Streams `before` chunks of text, then stalls until the client goes away. */
  | { kind: 'stall'; before: number }
  /** Streams `before` good chunks, then a line that is not JSON. */
  | { kind: 'malformed'; before: number }
  /** Streams `before` good chunks (then a finish chunk when `finished`), then destroys the connection. */
  | { kind: 'drop'; before: number; finished?: boolean }
  /** 200 with a body that is not JSON (non-stream) / not SSE. */
  | { kind: 'garbage'; body: string };

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** True once the client closed the connection before the reply was complete. */
  aborted: boolean;
  /** Resolves when the reply ended, either way (`aborted` then says how). */
  closed: Promise<void>;
}

export interface FakeLlm {
  /** `http://127.0.0.1:<port>/v1` */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Queues replies for the next requests, in order. */
  script(...replies: FakeReply[]): void;
  /** Forgets the recorded requests and any replies still scripted. */
  reset(): void;
  /** The reply when the script is empty (default: text "ok"); may look at the request. */
  fallback: (body: Record<string, unknown>) => FakeReply;
  close(): Promise<void>;
}

const MODEL = 'fake-model';

export async function startFakeLlm(): Promise<FakeLlm> {
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const fake: FakeLlm = {
    baseUrl: '',
    requests,
    script: (...replies) => void queue.push(...replies),
    reset: () => {
      queue.length = 0;
      requests.length = 0;
    },
    fallback: () => ({ kind: 'text', text: 'ok' }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
  const server: Server = createServer((req, res) => {
    void handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await new Promise<string>((resolve, reject) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (part: string) => (text += part));
      req.on('end', () => resolve(text));
      req.on('error', reject);
    });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'the fake wants JSON' } }));
      return;
    }
    let closedResolve = (): void => {};
    const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, aborted: false, closed: new Promise((resolve) => (closedResolve = resolve)) };
    requests.push(record);
    res.on('close', () => {
      record.aborted = !res.writableFinished;
      closedResolve();
    });
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.url ?? ''}` } }));
      return;
    }
    const reply = queue.shift() ?? fake.fallback(body);
    await answer(reply, body, res);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return fake;
}

function split(text: string, parts: number): string[] {
  const n = Math.max(1, Math.min(parts, text.length || 1));
  const size = Math.ceil(text.length / n);
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out.length > 0 ? out : [''];
}

function usageOf(usage: FakeUsage): Record<string, number> {
  return { prompt_tokens: usage.prompt, completion_tokens: usage.completion, total_tokens: usage.prompt + usage.completion };
}

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function answer(reply: FakeReply, body: Record<string, unknown>, res: ServerResponse): Promise<void> {
  const stream = body.stream === true;
  const model = typeof body.model === 'string' ? body.model : MODEL;
  const id = 'chatcmpl-fake';
  const created = 1_700_000_000;
  const chunk = (delta: Record<string, unknown>, finish: string | null = null): Record<string, unknown> => ({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finish }] });
  const wantsUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
  const sse = (res2: ServerResponse, crlf = false): ((data: unknown) => void) => {
    const end = crlf ? '\r\n' : '\n';
    return (data) => void res2.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}${end}${end}`);
  };
  const startStream = (): void => void res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const goodChunks = (count: number): Record<string, unknown>[] => split('partial reply text '.repeat(Math.max(1, count)), count).slice(0, count).map((text, i) => chunk(i === 0 ? { role: 'assistant', content: text } : { content: text }));

  switch (reply.kind) {
    case 'text': {
      const usage = reply.usage === undefined ? { prompt: 11, completion: 7 } : reply.usage;
      const finish = reply.finishReason ?? 'stop';
      const replyModel = reply.model ?? model;
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created,
            model: replyModel,
            choices: [{ index: 0, message: { role: 'assistant', content: reply.text }, finish_reason: finish }],
            ...(usage ? { usage: usageOf(usage) } : {}),
          }),
        );
        return;
      }
      startStream();
      if (reply.preamble) res.write(reply.preamble);
      const send = sse(res, reply.crlf);
      const pieces = split(reply.text, reply.chunks ?? 3);
      for (const [i, piece] of pieces.entries()) {
        if (res.destroyed) return;
        send({ ...chunk(i === 0 ? { role: 'assistant', content: piece } : { content: piece }), model: replyModel });
        if (reply.delayMs) await wait(reply.delayMs);
      }
      send({ ...chunk({}, finish), model: replyModel });
      if (usage && wantsUsage && !reply.ignoreStreamOptions) send({ id, object: 'chat.completion.chunk', created, model: replyModel, choices: [], usage: usageOf(usage) });
      if (!reply.noDone) send('[DONE]');
      res.end();
      return;
    }
    case 'tool_calls': {
      const usage = reply.usage === undefined ? { prompt: 20, completion: 9 } : reply.usage;
      const calls = reply.calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id,
            object: 'chat.completion',
            created,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: calls }, finish_reason: 'tool_calls' }],
            ...(usage ? { usage: usageOf(usage) } : {}),
          }),
        );
        return;
      }
      startStream();
      const send = sse(res);
      send(chunk({ role: 'assistant', content: null }));
      for (const [index, call] of reply.calls.entries()) {
        send(chunk({ tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] }));
        for (const part of split(call.arguments, reply.chunks ?? 3)) send(chunk({ tool_calls: [{ index, function: { arguments: part } }] }));
      }
      send(chunk({}, 'tool_calls'));
      if (usage && wantsUsage) send({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: usageOf(usage) });
      send('[DONE]');
      res.end();
      return;
    }
    case 'status':
      res
        .writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
        .end(reply.body ?? JSON.stringify({ error: { message: reply.message ?? `fake error ${reply.status}`, type: 'fake_error', code: null } }));
      return;
    case 'hang':
      // Nothing is written; the client's timeout or abort ends it.
      return;
    case 'stall': {
      startStream();
      const send = sse(res);
      for (const c of goodChunks(reply.before)) send(c);
      return;
    }
    case 'malformed': {
      startStream();
      const send = sse(res);
      for (const c of goodChunks(reply.before)) send(c);
      res.write('data: {"id": "chatcmpl-fake", "choices": [{"delta": {"content": "tor\n\n');
      // Keep the connection open: the client must stop on the bad chunk, not on the end of the body.
      return;
    }
    case 'drop': {
      startStream();
      const send = sse(res);
      for (const c of goodChunks(reply.before)) send(c);
      if (reply.finished) send(chunk({}, 'stop'));
      await wait(20);
      res.socket?.destroy();
      return;
    }
    case 'garbage':
      res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' }).end(reply.body);
      return;
  }
}

/**
 * The fake for a whole test file: started before its tests, reset after each (after the file's
 * own afterEach hooks registered before this call), closed after all. Returns a getter.
 */
export function useFakeLlm(): () => FakeLlm {
  let fake: FakeLlm | null = null;
  beforeAll(async () => {
    fake = await startFakeLlm();
  });
  afterEach(() => fake?.reset());
  afterAll(async () => {
    await fake?.close();
  });
  return () => {
    if (!fake) throw new Error('the fake LLM starts in beforeAll: call this inside a test or hook');
    return fake;
  };
}
