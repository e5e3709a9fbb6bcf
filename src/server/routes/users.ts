import { z } from 'zod';
import { isMemexError, NewUserSchema, ProfileSchema, UserIdSchema, type Profile } from '../../core/index.js';
import { requireAdmin, type App, type ServerContext } from '../app.js';
import { PageQuery, pageOf } from '../paging.js';

/** What the API shows of a user: the profile (the same shape as `/v1/me`). */
export const UserSchema = ProfileSchema.omit({ v: true });
export function publicUser(profile: Profile): Omit<Profile, 'v'> {
  const { v: _v, ...rest } = profile;
  return rest;
}

const UserParams = z.strictObject({ userId: UserIdSchema });
const UserPageSchema = z.object({ users: z.array(UserSchema), total: z.number(), nextCursor: z.string().nullable() });
const NewKeyBody = z.strictObject({ name: z.string().trim().min(1).max(200).optional(), admin: z.boolean().optional() }).nullish();
const NewKeySchema = z.object({
  key: z.string().describe('the key itself: shown only in this answer'),
  id: z.string(),
  userId: UserIdSchema,
  name: z.string().nullable(),
  admin: z.boolean(),
  createdAt: z.string(),
});

/**
 * Managing users, for admin keys only (`memex keys create --admin`): an app seeds its users here,
 * gives each a key, and each user then works through `/v1/me` and the other routes as themselves.
 */
export function userRoutes(app: App, { memex, jobs, keys }: ServerContext): void {
  const tags = ['users'];

  app.get('/users', { schema: { summary: 'Every user (admin)', tags, querystring: PageQuery, response: { 200: UserPageSchema } } }, async (request) => {
    requireAdmin(request);
    const users = await memex.users.list(); // sorted by id
    const page = pageOf(users, request.query);
    return { users: page.items.map(publicUser), total: page.total, nextCursor: page.nextCursor };
  });

  app.post('/users', { schema: { summary: 'Create a user (admin); 409 MEMEX_USER_EXISTS when the id is taken', tags, body: NewUserSchema, response: { 201: UserSchema } } }, async (request, reply) => {
    requireAdmin(request);
    const user = await memex.users.create(request.body);
    return reply.code(201).header('location', `/v1/users/${user.id}`).send(publicUser(user));
  });

  app.get('/users/:userId', { schema: { summary: 'A user (admin)', tags, params: UserParams, response: { 200: UserSchema } } }, async (request) => {
    requireAdmin(request);
    return publicUser(await memex.users.get(request.params.userId));
  });

  app.post(
    '/users/:userId/keys',
    { schema: { summary: 'Make an API key for an existing user (admin); the key is shown only in this answer', tags, params: UserParams, body: NewKeyBody, response: { 201: NewKeySchema } } },
    async (request, reply) => {
      requireAdmin(request);
      const { userId } = request.params;
      await memex.users.get(userId); // keys only for users that exist: a 404 otherwise
      const { key, info } = await keys.create(userId, request.body?.name, { admin: request.body?.admin ?? false });
      return reply.code(201).send({ key, id: info.id, userId: info.userId, name: info.name, admin: info.admin, createdAt: info.createdAt });
    },
  );

  app.delete(
    '/users/:userId',
    { schema: { summary: "Delete a user (admin): their keys are revoked and their ingest jobs cancelled first, then everything they own goes", tags, params: UserParams } },
    async (request, reply) => {
      requireAdmin(request);
      const { userId } = request.params;
      await memex.users.get(userId).catch((cause: unknown) => {
        if (isMemexError(cause, 'MEMEX_USER_NOT_FOUND') || isMemexError(cause, 'MEMEX_INVALID_ID')) throw cause;
      });
      // Keys first (the server checks keys with this same store): no request can come in as the user,
      // or create them again, from here on. `memex.users.delete` revokes them too, for library callers.
      await keys.revokeUser(userId);
      await jobs.cancelUser(userId);
      await memex.users.delete(userId);
      return reply.code(204).send();
    },
  );
}
