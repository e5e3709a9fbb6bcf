import { randomBytes } from 'node:crypto';
import fastifyCompress from '@fastify/compress';
import fastifyMultipart from '@fastify/multipart';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import { jsonSchemaTransform, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { MemexError, isMemexError, parseId, parseInput, type Config } from '../core/index.js';
import type { JobRunnerOptions, Memex } from '../index.js';
import { KeyedMutex, type ApiKeyStore, type Caller } from '../store/index.js';
import { FailedAuthLimiter } from './auth-limit.js';
import type { IngestJobs } from './jobs.js';
import { isLocalSecret, LOCAL_USER_HEADER } from './announce.js';
import { documentationOnly } from './documentation-only.js';
import { depthLimitedJson } from './json-body.js';
import { clientError, sendProblem } from './problem.js';
import { adminRoutes } from './routes/admin.js';
import { importRoutes } from './routes/imports.js';
import { backupRoutes } from './routes/backup.js';
import { mcpRoutes } from './routes/mcp.js';
import { fileRoutes } from './routes/files.js';
import { noteRoutes } from './routes/notes.js';
import { personaRoutes } from './routes/personas.js';
import { userRoutes } from './routes/users.js';
import { proxyRoutes } from './routes/proxy.js';
import { searchRoutes } from './routes/search.js';
import { sessionRoutes } from './routes/sessions.js';
import { trashRoutes } from './routes/trash.js';
import { systemRoutes } from './routes/system.js';
import { chatRoutes } from './routes/chat.js';
import { forkRoutes } from './routes/fork.js';
import { archiveRoutes } from './routes/archive.js';
import { scheduleRetention } from './retention.js';
import { webRoutes } from './web.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking: set by the authentication hook before anything else runs. */
    caller: Caller | null;
  }
  interface FastifyContextConfig {
    /** Answered without authentication (health, readiness, the OpenAPI document). */
    public?: boolean;
  }
}

export type App = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, ZodTypeProvider>;

export interface AppOptions {
  /** API keys; default the Memex's own (the data dir's `api_keys.json`, or the database's). */
  keys?: ApiKeyStore;
  /** How the ingest job runner paces itself (heartbeat, polling, attempts); the queue is the Memex's. */
  jobs?: Omit<JobRunnerOptions, 'onError'>;
  /** Settings that win over `memex.config.server`. */
  server?: Partial<Config['server']>;
  /** Fastify's logger: false (default), true, or pino options. */
  logger?: boolean | Record<string, unknown>;
  /**
   * The local-admin secret (see `announce.ts`): a bearer token that acts as the user named by
   * `X-Memex-User`, and may use the admin routes. `serve` makes one and writes it to server.json.
   */
  localSecret?: string;
}

/** What route handlers reach: the library, the ingest jobs, and the settings. */
export interface ServerContext {
  memex: Memex;
  jobs: IngestJobs;
  keys: ApiKeyStore;
  /** Read-merge-write of metadata (merge patches) runs one at a time per record. */
  patches: KeyedMutex;
  settings: Config['server'];
  /** Set once the app begins to close: readiness fails and streams end. */
  closing: { value: boolean };
  /** Open server-sent event streams, ended when the app closes. */
  streams: Set<() => void>;
}

/**
 * The HTTP service over one Memex instance: every route resolves the caller first (an API key, or
 * a trusted gateway's `X-User-ID` when enabled), then calls the library as that user, so another
 * user's ids answer 404 exactly as ids that do not exist. Bodies, queries and params are checked by
 * the library's own zod schemas, which also make the OpenAPI document at `/v1/openapi.json`.
 *
 * ```ts
 * const app = await buildApp(memex);
 * const res = await app.inject({ url: '/v1/sessions', headers: { authorization: `Bearer ${key}` } });
 * ```
 */
export async function buildApp(memex: Memex, options: AppOptions = {}): Promise<App> {
  const settings: Config['server'] = { ...memex.config.server, ...options.server };
  const keys = options.keys ?? memex.keys;
  const app: App = Fastify({
    logger: options.logger ?? false,
    bodyLimit: settings.bodyLimit,
    requestTimeout: settings.requestTimeoutMs,
    // Node looks for requests over their time only every `connectionsCheckingInterval` (30 s by
    // default), so a 5 s timeout fired after 30-90 s: look often enough to keep close to the setting.
    http: {
      requestTimeout: settings.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(settings.requestTimeoutMs / 4))),
    },
    // Timeouts and malformed requests the HTTP parser rejects are answered as problems too.
    clientErrorHandler: clientError,
    // Requests get an id the client sees (x-request-id, and `requestId` in errors) and the log keeps.
    genReqId: () => randomBytes(8).toString('hex'),
    // Ids arrive in paths; a path longer than any id allows is refused before routing.
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    // Errors the router finds before any route runs (a malformed URL, an over-long id) are problems too.
    frameworkErrors: (error, request, reply) => {
      void sendProblem(error, request, reply);
    },
  }).withTypeProvider<ZodTypeProvider>();

  // Uploads cut off by a crash or kill left temp files: nothing acknowledged, so they go now.
  const swept = await memex.files.sweepStaleUploads().catch((cause: unknown) => {
    app.log.warn({ err: cause }, 'could not sweep stale upload temp files');
    return 0;
  });
  if (swept > 0) app.log.info({ swept }, 'removed temp files of uploads a crash cut off');
  const jobs = await memex.openJobRunner({ heartbeatMs: settings.jobs.heartbeatMs, ...options.jobs, onError: (error) => app.log.error({ err: error }, 'ingest job failed') });
  const context: ServerContext = { memex, jobs, keys, patches: new KeyedMutex(), settings, closing: { value: false }, streams: new Set() };

  // The library's schemas check every request: a failure is the library's own coded error
  // (MEMEX_INVALID_INPUT, or MEMEX_INVALID_ID for a bad id), as a library call would throw.
  app.setValidatorCompiler(({ schema, httpPart }) => (data) => {
    if (documentationOnly.has(schema as z.ZodType)) return { value: data as unknown };
    try {
      return { value: parseInput(schema as z.ZodType, data, httpPart === 'body' ? 'body' : (httpPart ?? 'request')) };
    } catch (error) {
      return { error: error as Error };
    }
  });
  // Response schemas document the API (and type the handlers); the data comes from the library's
  // own validated records, so it is sent with plain JSON.stringify rather than checked again.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setErrorHandler((error, request, reply) => sendProblem(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(new MemexError('MEMEX_ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`), request, reply),
  );

  // Plain text bodies are not JSON: they get 415 like any other type the API does not take.
  app.removeContentTypeParser('text/plain');
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(['application/json', 'application/merge-patch+json'], { parseAs: 'string' }, depthLimitedJson(defaultJson));
  app.decorateRequest('caller', null);
  // A key's user is created on the key's first use (keys are made without opening the data dir).
  const failedAuth = new FailedAuthLimiter(settings.failedAuthLimit);
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    if (request.routeOptions.config.public) return;
    // The local CLI's secret is checked before the failed-auth limit: guesses on loopback cannot lock it out.
    const caller = await authenticate(request, keys, settings.trustUserHeader, options.localSecret, () => failedAuth.check(request.ip)).catch((cause: unknown) => {
      // Only a key that fails counts: a request with none guesses nothing (the web page asks `/v1/me` keyless on every load).
      if (isMemexError(cause, 'MEMEX_UNAUTHORIZED') && request.headers.authorization !== undefined) failedAuth.fail(request.ip);
      throw cause;
    });
    // The local admin acts as users exactly as the library would: a missing one is an error, not created.
    // (The store caches profiles: after the first request this costs a map lookup.)
    if (!caller.local) await memex.users.ensure(caller.userId);
    request.caller = caller;
  });
  // After authentication, so each key (not each address) has its own budget.
  await app.register(fastifyRateLimit, {
    global: true,
    max: settings.rateLimit.max,
    timeWindow: settings.rateLimit.windowMs,
    // The local CLI is the data dir's owner: it takes turns with itself, not with a rate limit.
    allowList: (request) => request.caller?.local === true,
    keyGenerator: (request) => (request.caller ? (request.caller.keyId ?? `user:${request.caller.userId}`) : `ip:${request.ip}`),
    errorResponseBuilder: (_request, limit) =>
      new MemexError('MEMEX_RATE_LIMITED', `more than ${limit.max} requests in ${limit.after}`, { details: { limit: limit.max, retryAfterSeconds: Math.ceil(limit.ttl / 1000) } }),
  });
  await app.register(fastifyMultipart, {
    limits: {
      // A little over the store's limit, so the store's own check (which keeps nothing) is the one that trips.
      fileSize: memex.config.limits.maxFileBytes + 1024,
      files: 1,
      fields: 8,
      fieldSize: 4096,
      parts: 10,
      headerPairs: 100,
    },
  });
  // Large JSON answers (lists, search, context windows, exports) go compressed to clients that ask.
  // Event streams are left alone (the plugin skips text/event-stream, and they write to the socket).
  await app.register(fastifyCompress, { global: true, threshold: 1024, encodings: ['br', 'gzip', 'deflate'] });
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Memex', version: '1', description: 'Semantic memory for chat assistants: sessions, messages, files, search and context windows.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A key from `memex keys create --user <id>`.' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });

  // A request that arrives on a kept-alive connection while the server stops is still answered,
  // then its connection is closed: otherwise it idles on and the stop waits for it forever.
  app.addHook('onSend', async (_request, reply) => {
    if (context.closing.value) void reply.header('connection', 'close');
  });
  const retention = scheduleRetention(memex, app.log);
  app.addHook('preClose', async () => {
    context.closing.value = true;
    for (const end of context.streams) end();
    await retention.stop();
    await memex.importJobs.stop();
    await jobs.stop();
  });

  await app.register(
    (v1, _options, done) => {
      systemRoutes(v1, context);
      sessionRoutes(v1, context);
      fileRoutes(v1, context);
      searchRoutes(v1, context);
      proxyRoutes(v1, context);
      personaRoutes(v1, context);
      noteRoutes(v1, context);
      userRoutes(v1, context);
      adminRoutes(v1, context);
      importRoutes(v1, context);
      chatRoutes(v1, context);
      forkRoutes(v1, context);
      backupRoutes(v1, context);
      archiveRoutes(v1, context);
      trashRoutes(v1, context);
      done();
    },
    { prefix: '/v1' },
  );
  // MCP clients are given the endpoint's URL; `/mcp` is where they conventionally look.
  await app.register((root, _options, done) => {
    mcpRoutes(root, context);
    webRoutes(root);
    done();
  });
  return app;
}

async function authenticate(request: FastifyRequest, keys: ApiKeyStore, trustUserHeader: boolean, localSecret: string | undefined, limit: () => void): Promise<Caller> {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (token !== undefined && isLocalSecret(token, localSecret)) {
      const named = request.headers[LOCAL_USER_HEADER];
      if (typeof named !== 'string') throw new MemexError('MEMEX_INVALID_INPUT', 'with the local secret, name the user in one X-Memex-User header');
      return { userId: parseId('user', named), keyId: null, admin: true, local: true };
    }
    limit();
    const caller = token === undefined ? null : await keys.verify(token);
    if (!caller) throw new MemexError('MEMEX_UNAUTHORIZED', token === undefined ? 'the Authorization header is not `Bearer <key>`' : 'the API key is not valid (unknown or revoked)');
    return caller;
  }
  limit();
  const named = request.headers['x-user-id'];
  if (trustUserHeader && named !== undefined) {
    if (Array.isArray(named)) throw new MemexError('MEMEX_INVALID_INPUT', 'send one X-User-ID header');
    // The gateway vouches for the user: one it has not sent before is created with defaults.
    return { userId: parseId('user', named), keyId: null, admin: false };
  }
  throw new MemexError('MEMEX_UNAUTHORIZED', trustUserHeader ? 'send `Authorization: Bearer <key>` or X-User-ID' : 'send `Authorization: Bearer <key>`');
}

/** The caller's user id (routes other than public ones always have one). */
export function userOf(request: FastifyRequest): string {
  if (!request.caller) throw new MemexError('MEMEX_UNAUTHORIZED', 'not authenticated');
  return request.caller.userId;
}

/** Admin routes (managing users) need a key made with `memex keys create --admin`. */
export function requireAdmin(request: FastifyRequest): void {
  if (!request.caller?.admin) throw new MemexError('MEMEX_FORBIDDEN', 'this route needs an admin key (`memex keys create --user <id> --admin`)');
}

/** Aborted when the client goes away before the answer is sent: long work stops with it. */
export function signalOf(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new MemexError('MEMEX_ABORTED', 'the client went away'));
  });
  return controller.signal;
}
