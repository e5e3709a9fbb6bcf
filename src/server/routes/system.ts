import { z } from 'zod';
import { ProfilePatchSchema, ProfileSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';

const MeSchema = z.object({ user: ProfileSchema, keyId: z.string().nullable() });

/** Liveness, readiness, the OpenAPI document, and the caller's own profile. */
export function systemRoutes(app: App, { memex, jobs, closing }: ServerContext): void {
  app.get('/health', { config: { public: true, rateLimit: false }, schema: { summary: 'Liveness: the process answers', tags: ['system'], security: [] } }, () => Promise.resolve({ status: 'ok' }));

  app.get('/ready', { config: { public: true, rateLimit: false }, schema: { summary: 'Readiness: the model is loaded and the server is not stopping', tags: ['system'], security: [] } }, async (_request, reply) => {
    if (closing.value) return reply.code(503).send({ ready: false, reason: 'stopping' });
    try {
      const embedder = await memex.embedder();
      return { ready: true, model: { id: embedder.modelId, dimension: embedder.dimension }, jobs: { pending: jobs.pending } };
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'MEMEX_INTERNAL';
      return reply.code(503).send({ ready: false, reason: code });
    }
  });

  app.get('/openapi.json', { config: { public: true, rateLimit: false }, schema: { hide: true } }, () => Promise.resolve(app.swagger()));

  app.get('/me', { schema: { summary: 'The calling user', tags: ['user'], response: { 200: MeSchema } } }, async (request) => ({
    user: await memex.users.get(userOf(request)),
    keyId: request.caller?.keyId ?? null,
  }));

  app.patch('/me', { schema: { summary: "Change the calling user's name or metadata", tags: ['user'], body: ProfilePatchSchema, response: { 200: ProfileSchema } } }, async (request) =>
    memex.users.update(userOf(request), request.body),
  );
}
