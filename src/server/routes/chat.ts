import type { FastifyRequest } from 'fastify';
import { ChatInputSchema, MemexError } from '../../core/index.js';
import type { ChatEvent } from '../../index.js';
import { userOf, type App, type ServerContext } from '../app.js';

/** Comments keep idle proxies from closing a stream while the model thinks. */
const HEARTBEAT_MS = 15_000;

/** `Accept: application/json` (and no event stream named) asks for the whole reply at once. */
function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/event-stream');
}

/** One retrieval-augmented chat turn with the configured model, streamed as server-sent events. */
export function chatRoutes(app: App, { memex, streams }: ServerContext): void {
  app.post(
    '/chat',
    {
      schema: {
        summary:
          'A chat turn: stores the text (in a new session when none is named), builds the window, streams the model\'s reply as server-sent events (`session`, `context`, `delta`..., then `done` or `error`) and stores it; `Accept: application/json` answers the whole turn at once',
        tags: ['chat'],
        body: ChatInputSchema,
        produces: ['text/event-stream', 'application/json'],
      },
    },
    async (request, reply) => {
      const userId = userOf(request);
      const controller = new AbortController();
      // The socket, not the reply: a client that leaves mid-stream closes it, and the model call must stop with it.
      const socket = request.raw.socket;
      const gone = (): void => controller.abort(new MemexError('MEMEX_ABORTED', 'the client went away'));
      socket.once('close', gone);
      const events = memex.chat(userId, { ...request.body, signal: controller.signal })[Symbol.asyncIterator]();
      try {
        // Refusals (no model, an unknown session, a read-only one) come before anything is stored: a problem with its status, not a stream.
        const first = await events.next();
        if (wantsJson(request)) return await whole(first.done ? [] : [first.value], events);
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': request.id });
        const send = (event: ChatEvent): void => {
          if (!out.destroyed && !out.writableEnded) out.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        };
        const heartbeat = setInterval(() => !out.destroyed && out.write(': alive\n\n'), HEARTBEAT_MS);
        const end = (): void => {
          controller.abort(new MemexError('MEMEX_SHUTTING_DOWN', 'the server is shutting down'));
        };
        streams.add(end);
        try {
          if (!first.done) send(first.value);
          for (let next = await events.next(); !next.done; next = await events.next()) send(next.value);
        } finally {
          clearInterval(heartbeat);
          streams.delete(end);
          if (!out.writableEnded) out.end();
        }
        return reply;
      } finally {
        socket.off('close', gone);
      }
    },
  );
}

/** The turn's events gathered into one answer; a turn that ended in an error answers that error's problem. */
async function whole(seen: ChatEvent[], events: AsyncIterator<ChatEvent>): Promise<Record<string, unknown>> {
  for (let next = await events.next(); !next.done; next = await events.next()) seen.push(next.value);
  const last = seen.at(-1);
  if (last?.type === 'error') throw new MemexError(last.error.code, last.error.message, { details: { ...last.error.details, partialMessageId: last.partial?.id ?? null } });
  const start = seen.find((e) => e.type === 'session');
  const context = seen.find((e) => e.type === 'context');
  if (last?.type !== 'done' || start?.type !== 'session') throw new MemexError('MEMEX_INTERNAL', 'the chat turn ended without a reply');
  return {
    created: start.created,
    session: last.session,
    userMessage: start.userMessage,
    message: last.message,
    model: last.model,
    usage: last.usage,
    context: context?.type === 'context' ? context.report : null,
  };
}
