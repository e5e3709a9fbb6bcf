import { Readable } from 'node:stream';
import { z } from 'zod';
import { ContextOptionsSchema, MemexError, MessageIdSchema, MessageSchema, NewMessageSchema, NewSessionSchema, SessionIdSchema, SessionMetaSchema, SessionPatchSchema, SESSION_SORTS, PersonaIdSchema } from '../../core/index.js';
import { EXPORT_FORMATS } from '../../store/index.js';
import { signalOf, userOf, type App, type ServerContext } from '../app.js';
import { MetadataPatchSchema, mergeMetadata } from '../merge-patch.js';
import { cursorParam, limitParam, offsetParam } from '../paging.js';

export const SessionSchema = SessionMetaSchema.omit({ v: true, messagesBytes: true });
export const MessageRouteParams = z.strictObject({ sessionId: SessionIdSchema, messageId: MessageIdSchema });
export const SessionParams = z.strictObject({ sessionId: SessionIdSchema });
const MessageParams = z.strictObject({ sessionId: SessionIdSchema, messageId: MessageIdSchema });

const flag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1');
const PurgeQuery = z.strictObject({ purge: flag.optional().describe('delete for good at once instead of moving to the trash') });

const SessionListQuery = z.strictObject({
  limit: limitParam,
  offset: offsetParam,
  cursor: cursorParam,
  /** Sessions whose title contains this, ignoring case and accents. */
  title: z.string().trim().min(1).max(500).optional(),
  origin: z.enum(['native', 'imported', 'all']).default('native').describe('native sessions (the default), imported chat exports, or all'),
  archived: z.enum(['include', 'exclude', 'only']).optional().describe('archived sessions are listed by default (with archivedAt); exclude hides them, only lists just them'),
  sort: z.enum(SESSION_SORTS).optional().describe('activity (the default: last message, else creation), created, title or messages'),
  order: z.enum(['asc', 'desc']).optional().describe('desc (the default) or asc'),
  tag: z.string().min(1).max(2000).optional().describe('only sessions with every one of these tags, comma-separated'),
  personaId: PersonaIdSchema.optional(),
  after: z.string().max(64).optional().describe('only sessions last active at or after this time (ISO 8601)'),
  before: z.string().max(64).optional().describe('only sessions last active before this time (ISO 8601)'),
});
const SessionPageSchema = z.object({ sessions: z.array(SessionSchema), total: z.number(), nextCursor: z.string().nullable() });

const MessageListQuery = z.strictObject({
  limit: limitParam,
  offset: offsetParam,
  cursor: cursorParam,
  after: cursorParam.describe('deprecated: the old name of `cursor`'),
  before: cursorParam.describe("the messages before a page: its prevCursor"),
  latest: flag.optional().describe('the last `limit` messages, where a chat view opens'),
});
const MessagePageSchema = z.object({ messages: z.array(MessageSchema), total: z.number(), nextCursor: z.string().nullable(), prevCursor: z.string().nullable() });
const SessionPatchBody = SessionPatchSchema.extend({ metadata: MetadataPatchSchema });

const ExportQuery = z.strictObject({ format: z.enum(EXPORT_FORMATS).default('json') });
const ContextBody = ContextOptionsSchema.omit({ sessionId: true });

/** Sessions and their messages, the context window for a session's next turn, and export. */
export function sessionRoutes(app: App, { memex, patches }: ServerContext): void {
  const tags = ['sessions'];

  app.get('/sessions', { schema: { summary: 'Sessions, most recently active first, with message counts and a preview', tags, querystring: SessionListQuery, response: { 200: SessionPageSchema } } }, async (request) => {
    const { tag, ...query } = request.query;
    const { sessions, total, nextCursor } = await memex.sessions.list(userOf(request), { ...query, ...(tag !== undefined ? { tags: tag.split(',') } : {}) });
    return { sessions, total, nextCursor };
  });

  app.post('/sessions', { schema: { summary: 'Start a session', tags, body: NewSessionSchema.nullish(), response: { 201: SessionSchema } } }, async (request, reply) => {
    const session = await memex.sessions.create(userOf(request), request.body ?? {});
    return reply.code(201).header('location', `/v1/sessions/${session.id}`).send(session);
  });

  app.get('/sessions/:sessionId', { schema: { summary: 'A session', tags, params: SessionParams, response: { 200: SessionSchema } } }, async (request) =>
    memex.sessions.get(userOf(request), request.params.sessionId),
  );

  app.patch(
    '/sessions/:sessionId',
    { schema: { summary: 'Rename a session or change its persona; `metadata` is a JSON merge patch (null deletes a key)', tags, params: SessionParams, body: SessionPatchBody, response: { 200: SessionSchema } } },
    async (request) => {
      const userId = userOf(request);
      const { sessionId } = request.params;
      const { metadata, ...rest } = request.body;
      return patches.run(`${userId}/session/${sessionId}`, async () => {
        const next = metadata === undefined ? {} : { metadata: mergeMetadata((await memex.sessions.get(userId, sessionId)).metadata, metadata) };
        return memex.sessions.update(userId, sessionId, { ...rest, ...next });
      });
    },
  );

  app.delete('/sessions/:sessionId', { schema: { summary: 'Move a session to the trash (restorable until trash.retentionDays pass); ?purge=true deletes it with its messages, files and vectors at once', tags, params: SessionParams, querystring: PurgeQuery } }, async (request, reply) => {
    await memex.sessions.delete(userOf(request), request.params.sessionId, { purge: request.query.purge ?? false });
    return reply.code(204).send();
  });

  app.get('/sessions/:sessionId/messages', { schema: { summary: 'A page of messages, oldest first within the page', tags, params: SessionParams, querystring: MessageListQuery, response: { 200: MessagePageSchema } } }, async (request) => {
    const { limit: size, offset, cursor: named, after, before, latest } = request.query;
    if (named !== undefined && after !== undefined) throw new MemexError('MEMEX_INVALID_INPUT', 'pass cursor (after is its deprecated name), not both');
    const cursor = named ?? after;
    const page = await memex.messages.list(userOf(request), request.params.sessionId, {
      ...(size !== undefined ? { limit: size } : {}),
      ...(offset !== undefined ? { offset } : {}),
      ...(cursor !== undefined ? { cursor } : {}),
      ...(before !== undefined ? { before } : {}),
      ...(latest ? { latest } : {}),
    });
    return { messages: page.messages, total: page.total, nextCursor: page.nextCursor, prevCursor: page.prevCursor };
  });

  app.post('/sessions/:sessionId/messages', { schema: { summary: 'Append a message (durable when answered; embedded in the background)', tags, params: SessionParams, body: NewMessageSchema, response: { 201: MessageSchema } } }, async (request, reply) => {
    const message = await memex.messages.append(userOf(request), request.params.sessionId, request.body);
    return reply.code(201).send(message);
  });

  app.get('/sessions/:sessionId/messages/:messageId', { schema: { summary: 'A message', tags, params: MessageParams, response: { 200: MessageSchema } } }, async (request) =>
    memex.messages.get(userOf(request), request.params.sessionId, request.params.messageId),
  );

  app.delete('/sessions/:sessionId/messages/:messageId', { schema: { summary: 'Move a message and its vectors to the trash; ?purge=true deletes them at once', tags, params: MessageParams, querystring: PurgeQuery } }, async (request, reply) => {
    await memex.messages.delete(userOf(request), request.params.sessionId, request.params.messageId, { purge: request.query.purge ?? false });
    return reply.code(204).send();
  });

  app.post('/sessions/:sessionId/context', { schema: { summary: "The messages for the session's next model call, fitted to a token budget, with a report", tags, params: SessionParams, body: ContextBody } }, async (request, reply) =>
    memex.buildContext(userOf(request), { ...request.body, sessionId: request.params.sessionId, signal: signalOf(reply) }),
  );

  app.get('/sessions/:sessionId/export', { schema: { summary: 'The whole session as a JSON, Markdown or HTML document, streamed', tags, params: SessionParams, querystring: ExportQuery } }, async (request, reply) => {
    const { sessionId } = request.params;
    const { format } = request.query;
    const pieces = memex.sessions.export(userOf(request), sessionId, format, { signal: signalOf(reply) })[Symbol.asyncIterator]();
    // The first piece is read before answering: a missing session is a 404, not a broken stream.
    const first = await pieces.next();
    async function* all(): AsyncGenerator<string> {
      if (!first.done) yield first.value;
      for (let next = await pieces.next(); !next.done; next = await pieces.next()) yield next.value;
    }
    return reply
      .type(format === 'json' ? 'application/json; charset=utf-8' : format === 'html' ? 'text/html; charset=utf-8' : 'text/markdown; charset=utf-8')
      .header('content-disposition', `attachment; filename="${sessionId}.${format}"`)
      .send(Readable.from(all()));
  });
}
