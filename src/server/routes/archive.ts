import { z } from 'zod';
import { MemexError, UserIdSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { SessionParams, SessionSchema } from './sessions.js';

const ArchiveResultSchema = z.object({
  session: SessionSchema,
  rawBytes: z.number().describe('the content before compression, in bytes (0 when nothing changed)'),
  archiveBytes: z.number().describe("the archive's size in bytes"),
  archivedNow: z.boolean().describe('false when the session already was in the state asked for'),
});

const MaintainBody = z
  .strictObject({
    dryRun: z.boolean().optional().describe('report what the policies would do, changing nothing'),
    userId: UserIdSchema.optional().describe("the caller's own user (the local administrator may name any, or leave it out for every user)"),
  })
  .nullish();

/** Archive and unarchive a session; apply the retention policies (README "Archive and retention"). */
export function archiveRoutes(app: App, { memex }: ServerContext): void {
  const tags = ['sessions'];

  app.post(
    '/sessions/:sessionId/archive',
    { schema: { summary: 'Archive a session: compressed, still listed (with archivedAt), out of search; its content answers 409 MEMEX_SESSION_ARCHIVED until unarchived', tags, params: SessionParams, response: { 200: ArchiveResultSchema } } },
    async (request) => memex.sessions.archive(userOf(request), request.params.sessionId),
  );

  app.post(
    '/sessions/:sessionId/unarchive',
    { schema: { summary: 'Unarchive a session: messages, files, vectors and summary back exactly as they were', tags, params: SessionParams, response: { 200: ArchiveResultSchema } } },
    async (request) => memex.sessions.unarchive(userOf(request), request.params.sessionId),
  );

  app.post('/maintain', { schema: { summary: "Apply the server's retention policies to the caller's sessions (dryRun: only say what they would do)", tags: ['maintenance'], body: MaintainBody } }, async (request) => {
    const body = request.body ?? {};
    const caller = userOf(request);
    const local = request.caller?.local === true;
    if (!local && body.userId !== undefined && body.userId !== caller) throw new MemexError('MEMEX_FORBIDDEN', 'maintenance of another user is for the local administrator');
    // The local CLI without --user maintains the whole data dir, as it would with the data dir open.
    const userId = body.userId ?? (local ? undefined : caller);
    return memex.maintain({ ...(body.dryRun ? { dryRun: true } : {}), ...(userId !== undefined ? { userId } : {}) });
  });
}
