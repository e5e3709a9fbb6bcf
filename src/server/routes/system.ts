import { ProfilePatchSchema } from '../../core/index.js';
import { userOf, type App, type ServerContext } from '../app.js';
import { MetadataPatchSchema, mergeMetadata } from '../merge-patch.js';
import { UserSchema, publicUser } from './users.js';

const ProfilePatchBody = ProfilePatchSchema.extend({ metadata: MetadataPatchSchema });

/** Liveness, readiness, the OpenAPI document, and the caller's own profile. */
export function systemRoutes(app: App, { memex, jobs, closing, patches }: ServerContext): void {
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

  // GET and PATCH answer the same shape: the profile (the key in use is in `x-memex-key-id`).
  app.get('/me', { schema: { summary: "The calling user's profile", tags: ['user'], response: { 200: UserSchema } } }, async (request, reply) => {
    if (request.caller?.keyId) void reply.header('x-memex-key-id', request.caller.keyId);
    return publicUser(await memex.users.get(userOf(request)));
  });

  app.patch(
    '/me',
    { schema: { summary: "Change the calling user's name; `metadata` is a JSON merge patch (null deletes a key)", tags: ['user'], body: ProfilePatchBody, response: { 200: UserSchema } } },
    async (request) => {
      const userId = userOf(request);
      const { metadata, ...rest } = request.body;
      return patches.run(`${userId}/profile`, async () => {
        const next = metadata === undefined ? {} : { metadata: mergeMetadata((await memex.users.get(userId)).metadata, metadata) };
        return publicUser(await memex.users.update(userId, { ...rest, ...next }));
      });
    },
  );
}
