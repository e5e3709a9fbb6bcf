import { z } from 'zod';
import { MessageIdSchema, MessageSchema, NewPanelSchema, PanelTurnSchema, SessionIdSchema } from '../../core/index.js';
import { MergeOptionsSchema } from '../../store/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { SessionParams, SessionSchema } from './sessions.js';

const ForkBody = z.strictObject({
  /** The last message the fork keeps. */
  messageId: MessageIdSchema,
  title: z.string().trim().min(1).max(500).optional(),
});
const ForkResultSchema = z.object({ session: SessionSchema, messages: z.number(), files: z.number(), vectorRows: z.number() });

const MergeBody = MergeOptionsSchema.extend({ sessionIds: z.array(SessionIdSchema).min(2).max(100) });
const MergeResultSchema = z.object({ session: SessionSchema, messages: z.number(), shared: z.number(), files: z.number(), vectorRows: z.number() });

const ParticipantBody = z.strictObject({ persona: z.string().trim().min(1).max(200) });

/** Forking a session at a message, merging sessions, and panels (several personas in one session). */
export function forkRoutes(app: App, { memex }: ServerContext): void {
  const tags = ['sessions'];

  app.post(
    '/sessions/:sessionId/fork',
    { schema: { summary: 'A new session with the turns up to and including a message, their files and vectors (copied, not embedded again)', tags, params: SessionParams, body: ForkBody, response: { 201: ForkResultSchema } } },
    async (request, reply) => {
      const { messageId, title } = request.body;
      const result = await memex.sessions.fork(userOf(request), request.params.sessionId, messageId, title !== undefined ? { title } : {});
      return reply.code(201).header('location', `/v1/sessions/${result.session.id}`).send(result);
    },
  );

  app.post(
    '/sessions/merge',
    { schema: { summary: 'One new session with the messages, files and vectors of several (mode time or concat); the sources are kept unless deleteSources', tags, body: MergeBody, response: { 201: MergeResultSchema } } },
    async (request, reply) => {
      const { sessionIds, ...options } = request.body;
      const result = await memex.sessions.merge(userOf(request), sessionIds, options);
      return reply.code(201).header('location', `/v1/sessions/${result.session.id}`).send(result);
    },
  );

  app.post('/panels', { schema: { summary: 'Start a panel: a session with several personas (ids or names) as participants', tags: ['panels'], body: NewPanelSchema, response: { 201: SessionSchema } } }, async (request, reply) => {
    const session = await memex.panels.create(userOf(request), request.body);
    return reply.code(201).header('location', `/v1/sessions/${session.id}`).send(session);
  });

  app.post(
    '/panels/:sessionId/turns',
    { schema: { summary: "A participant's turn: an assistant message spoken by the persona", tags: ['panels'], params: SessionParams, body: PanelTurnSchema, response: { 201: MessageSchema } } },
    async (request, reply) => reply.code(201).send(await memex.panels.say(userOf(request), request.params.sessionId, request.body)),
  );

  app.post(
    '/panels/:sessionId/participants',
    { schema: { summary: 'Add a persona to the panel', tags: ['panels'], params: SessionParams, body: ParticipantBody, response: { 200: SessionSchema } } },
    async (request) => memex.panels.join(userOf(request), request.params.sessionId, request.body.persona),
  );
}
