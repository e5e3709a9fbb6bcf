import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { MemexError, toMemexError, type MemexErrorCode } from '../core/index.js';

/**
 * Errors as RFC 9457 problem details (`application/problem+json`), always with the catalogue's
 * `code` and `hint`. A 4xx says what was wrong with the request; a 5xx says only its code, hint
 * and request id: messages of server faults can name paths, so they go to the log, never to the client.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: MemexErrorCode;
  detail: string;
  hint: string;
  instance: string;
  requestId: string;
  details?: Readonly<Record<string, unknown>>;
}

export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

/** Fastify's and its plugins' own errors, by code, as catalogue errors. */
const FRAMEWORK_CODES: Record<string, MemexErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'MEMEX_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MEMEX_INVALID_INPUT',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MEMEX_CONTENT_TYPE_UNSUPPORTED',
  FST_ERR_CTP_INVALID_TYPE: 'MEMEX_CONTENT_TYPE_UNSUPPORTED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MEMEX_INVALID_INPUT',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MEMEX_INVALID_INPUT',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'MEMEX_CONTENT_TYPE_UNSUPPORTED',
  FST_REQ_FILE_TOO_LARGE: 'MEMEX_FILE_TOO_LARGE',
  FST_FILES_LIMIT: 'MEMEX_BODY_TOO_LARGE',
  FST_PARTS_LIMIT: 'MEMEX_BODY_TOO_LARGE',
  FST_FIELDS_LIMIT: 'MEMEX_BODY_TOO_LARGE',
  FST_PROTO_VIOLATION: 'MEMEX_INVALID_INPUT',
  FST_ERR_VALIDATION: 'MEMEX_INVALID_INPUT',
  FST_ERR_BAD_URL: 'MEMEX_INVALID_INPUT',
  FST_ERR_MAX_PARAM_LENGTH: 'MEMEX_INVALID_ID',
};

/** Any error a request ran into, as the catalogue error the client gets. */
export function asMemexError(error: unknown): MemexError {
  if (error instanceof MemexError) return error;
  const framework = error as Partial<FastifyError> | undefined;
  const code = framework?.code !== undefined ? FRAMEWORK_CODES[framework.code] : undefined;
  if (code) return new MemexError(code, framework?.message ?? code, { cause: error });
  // Anything else with a 4xx status (a malformed request a library noticed) is the client's input.
  const status = framework?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new MemexError(status === 413 ? 'MEMEX_BODY_TOO_LARGE' : status === 415 ? 'MEMEX_CONTENT_TYPE_UNSUPPORTED' : 'MEMEX_INVALID_INPUT', framework?.message ?? 'bad request', { cause: error });
  }
  return toMemexError(error, 'request failed');
}

export function problemOf(error: MemexError, request: FastifyRequest): Problem {
  const serverFault = error.statusCode >= 500;
  return {
    type: `urn:memex:error:${error.code}`,
    title: error.code,
    status: error.statusCode,
    code: error.code,
    detail: serverFault ? `the server could not complete the request (${error.code}); its log has the cause under request ${request.id}` : error.message,
    hint: error.hint,
    instance: request.url.split('?')[0] ?? request.url,
    requestId: request.id,
    ...(!serverFault && Object.keys(error.details).length > 0 ? { details: error.details } : {}),
  };
}

export function sendProblem(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const memexError = asMemexError(error);
  if (memexError.statusCode >= 500) request.log.error({ err: error, code: memexError.code }, memexError.message);
  else request.log.info({ code: memexError.code }, memexError.message);
  if (memexError.code === 'MEMEX_RATE_LIMITED') {
    const retryAfter = memexError.details.retryAfterSeconds;
    if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  }
  return reply.code(memexError.statusCode).type(PROBLEM_TYPE).send(JSON.stringify(problemOf(memexError, request)));
}

/**
 * Errors Node's HTTP parser meets before a request exists (a client too slow to send its request
 * within server.requestTimeoutMs, a malformed request line, headers too large): a problem on the
 * raw socket, which is then closed, as Node itself does.
 */
export function clientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const memexError =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new MemexError('MEMEX_REQUEST_TIMEOUT', 'the request was not received in time')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new MemexError('MEMEX_HEADERS_TOO_LARGE', 'the request headers are too large')
        : new MemexError('MEMEX_INVALID_INPUT', 'the request is not valid HTTP');
  const problem = JSON.stringify({
    type: `urn:memex:error:${memexError.code}`,
    title: memexError.code,
    status: memexError.statusCode,
    code: memexError.code,
    detail: memexError.message,
    hint: memexError.hint,
  });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${memexError.statusCode} ${memexError.code}\r\nConnection: close\r\nContent-Type: ${PROBLEM_TYPE}\r\nContent-Length: ${Buffer.byteLength(problem)}\r\n\r\n${problem}`);
  }
  socket.destroy();
}
