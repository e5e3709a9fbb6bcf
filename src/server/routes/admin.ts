import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { MemexError, ProfileSchema, UserIdSchema } from '../../core/index.js';
import type { App, ServerContext } from '../app.js';

const UserParams = z.strictObject({ userId: UserIdSchema });
const ReindexBody = z.strictObject({ userId: UserIdSchema.optional(), force: z.boolean().optional() }).nullish();
const DoctorBody = z.strictObject({ userId: UserIdSchema.optional(), rebuildIndex: z.boolean().optional() }).nullish();

/** Only the data dir's owner (the local CLI, with server.json's secret) may act on the whole data dir. */
function requireLocal(request: FastifyRequest): void {
  if (!request.caller?.local) throw new MemexError('MEMEX_FORBIDDEN', `${request.method} ${request.url.split('?')[0]} is for the local administrator`);
}

/**
 * What the CLI needs from a running server beyond the user routes: the data-dir-wide commands
 * (`reindex`, `doctor`) and the implicit `default` user. Local admin only, and hidden from the
 * OpenAPI document: they are the CLI's, not the API's.
 */
export function adminRoutes(app: App, { memex }: ServerContext): void {
  const schema = { hide: true, tags: ['admin'] };

  app.put('/admin/users/:userId', { schema: { ...schema, params: UserParams, response: { 200: ProfileSchema } } }, async (request) => {
    requireLocal(request);
    return memex.users.ensure(request.params.userId);
  });

  app.post('/admin/reindex', { schema: { ...schema, body: ReindexBody } }, async (request) => {
    requireLocal(request);
    const body = request.body ?? {};
    return memex.reindex({ ...(body.userId ? { userId: body.userId } : {}), ...(body.force ? { force: true } : {}) });
  });

  app.post('/admin/doctor', { schema: { ...schema, body: DoctorBody } }, async (request) => {
    requireLocal(request);
    const body = request.body ?? {};
    return memex.doctor({ ...(body.userId ? { userId: body.userId } : {}), ...(body.rebuildIndex ? { rebuildIndex: true } : {}) });
  });
}
