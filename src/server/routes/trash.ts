import { z } from 'zod';
import { MessageSchema, SessionSearchOptionsSchema, TagSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { MessageRouteParams, SessionParams, SessionSchema } from './sessions.js';

const TagParams = SessionParams.extend({ tag: TagSchema });
const TagCountsSchema = z.object({ tags: z.array(z.object({ tag: z.string(), sessions: z.number() })) });
const SessionSearchBody = SessionSearchOptionsSchema.extend({ query: z.string().trim().min(1).max(10_000) });
const TrashSchema = z.object({
  sessions: z.array(SessionSchema),
  messages: z.array(z.object({ sessionId: z.string(), message: MessageSchema, trashedAt: z.string() })),
  retentionDays: z.number(),
});
const PurgedSchema = z.object({ sessions: z.array(z.string()), messages: z.array(z.object({ sessionId: z.string(), messageId: z.string() })) });

/** Organising sessions (tags, search by content) and the trash (list, empty, restore). */
export function trashRoutes(app: App, { memex }: ServerContext): void {
  const tags = ['sessions'];

  app.post('/sessions/search', { schema: { summary: 'The sessions best matching a query: the chunk search grouped by session, best first', tags, body: SessionSearchBody } }, async (request) => {
    const { query, ...options } = request.body;
    return memex.sessions.search(userOf(request), query, options);
  });

  app.get('/tags', { schema: { summary: "The caller's tags with how many sessions (outside the trash) carry each, most used first", tags, response: { 200: TagCountsSchema } } }, async (request) => ({
    tags: await memex.sessions.tags(userOf(request)),
  }));

  app.put('/sessions/:sessionId/tags/:tag', { schema: { summary: 'Tag a session', tags, params: TagParams, response: { 200: SessionSchema } } }, async (request) =>
    memex.sessions.tag(userOf(request), request.params.sessionId, [request.params.tag]),
  );

  app.delete('/sessions/:sessionId/tags/:tag', { schema: { summary: 'Remove a tag from a session', tags, params: TagParams, response: { 200: SessionSchema } } }, async (request) =>
    memex.sessions.untag(userOf(request), request.params.sessionId, [request.params.tag]),
  );

  app.post('/sessions/:sessionId/restore', { schema: { summary: 'Take a session out of the trash, exactly as it was', tags: ['trash'], params: SessionParams, response: { 200: SessionSchema } } }, async (request) =>
    memex.sessions.restore(userOf(request), request.params.sessionId),
  );

  app.post('/sessions/:sessionId/messages/:messageId/restore', { schema: { summary: 'Put a trashed message back where it was', tags: ['trash'], params: MessageRouteParams, response: { 200: MessageSchema } } }, async (request) =>
    memex.messages.restore(userOf(request), request.params.sessionId, request.params.messageId),
  );

  app.get('/trash', { schema: { summary: "The caller's trash: sessions and messages deleted without purge (what passed trash.retentionDays is purged first)", tags: ['trash'], response: { 200: TrashSchema } } }, async (request) =>
    memex.trash.list(userOf(request)),
  );

  app.delete('/trash', { schema: { summary: "Empty the caller's trash: everything in it is deleted for good", tags: ['trash'], response: { 200: PurgedSchema } } }, async (request) => memex.trash.empty(userOf(request)));
}
