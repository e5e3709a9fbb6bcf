import { z } from 'zod';
import { MemexError, SessionIdSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { PROBLEM_TYPE, asMemexError, problemOf } from '../problem.js';

const ProxyHeaders = z.looseObject({
  'x-memex-session': SessionIdSchema.optional(),
  'x-memex-budget': z.coerce.number().int().min(256).max(10_000_000).optional(),
});

/**
 * The memory proxy: `POST /v1/chat/completions` as the OpenAI API has it, so any OpenAI SDK pointed
 * at Memex (`baseURL: http://host:8420/v1`, the Memex API key as its key) gets memory. The session
 * comes from `X-Memex-Session` (created when absent and returned in that header), the window size
 * from `X-Memex-Budget` (default `llm.contextTokens`).
 */
export function proxyRoutes(app: App, { memex, streams }: ServerContext): void {
  void app.register((scope: App, _options, done) => {
    // Errors carry OpenAI's `error` object beside the problem's fields, so OpenAI SDKs show the message.
    scope.setErrorHandler((error, request, reply) => {
      const memexError = asMemexError(error);
      if (memexError.statusCode >= 500) request.log.error({ err: error, code: memexError.code }, memexError.message);
      const problem = problemOf(memexError, request);
      return reply
        .code(memexError.statusCode)
        .type(PROBLEM_TYPE)
        .send(JSON.stringify({ ...problem, error: { message: `${memexError.message} (${memexError.hint})`, type: 'memex_error', code: memexError.code, param: null } }));
    });

    scope.post(
      '/chat/completions',
      {
        schema: {
          summary:
            'OpenAI Chat Completions through Memex: the new turns are stored, the model gets the session\'s context window (`X-Memex-Session`, created when absent and returned; `X-Memex-Budget`), the reply streams back unchanged and is stored',
          tags: ['proxy'],
          headers: ProxyHeaders,
          body: z.looseObject({ messages: z.array(z.unknown()), stream: z.boolean().optional() }),
        },
      },
      async (request, reply) => {
        const userId = userOf(request);
        const headers = request.headers as z.infer<typeof ProxyHeaders>;
        const controller = new AbortController();
        // The client going away stops the model (and keeps what it had said, marked incomplete).
        const gone = (): void => {
          if (!reply.raw.writableFinished) controller.abort(new MemexError('MEMEX_ABORTED', 'the client went away'));
        };
        reply.raw.once('close', gone);
        const options = {
          signal: controller.signal,
          ...(headers['x-memex-session'] !== undefined ? { sessionId: headers['x-memex-session'] } : {}),
          ...(headers['x-memex-budget'] !== undefined ? { budget: headers['x-memex-budget'] } : {}),
        };
        if (request.body.stream !== true) {
          const result = await memex.proxy.complete(userId, request.body, options);
          return reply.header('x-memex-session', result.sessionId).send(result.response);
        }
        const result = await memex.proxy.stream(userId, request.body, options);
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': request.id, 'x-memex-session': result.sessionId });
        const stop = (): void => controller.abort(new MemexError('MEMEX_ABORTED', 'the server is stopping'));
        streams.add(stop);
        try {
          for await (const chunk of result.chunks) out.write(`data: ${JSON.stringify(chunk)}\n\n`);
          out.write('data: [DONE]\n\n');
        } catch (cause) {
          // Headers are gone: the error goes in the stream, where OpenAI SDKs look for it.
          const error = asMemexError(cause);
          if (!out.destroyed) out.write(`data: ${JSON.stringify({ error: { message: error.message, type: 'memex_error', code: error.code, param: null } })}\n\n`);
        } finally {
          streams.delete(stop);
          await result.stored;
          if (!out.writableEnded) out.end();
        }
      },
    );
    done();
  });
}
