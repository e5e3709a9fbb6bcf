import { join } from 'node:path';
import { FORMAT_VERSION, isMemexError, MemexError, type NewUser, NewUserSchema, parseId, parseInput, type Profile, type ProfilePatch, ProfilePatchSchema, ProfileSchema, toMemexError, type UserId } from '../../core/index.js';
import { readJsonRecord } from '../durable.js';
import { definedOnly, type FlatFileContext, listDir, nowIso } from './context.js';

export async function createUser(ctx: FlatFileContext, input: NewUser): Promise<Profile> {
  ctx.assertOpen();
  const { id, name, metadata } = parseInput(NewUserSchema, input, 'user');
  return ctx.mutex.run(`user:${id}`, async () => {
    const existing = await readProfile(ctx, id);
    if (existing) throw new MemexError('MEMEX_USER_EXISTS', `user ${id} already exists`, { details: { userId: id } });
    await makeUserDirs(ctx, id);
    const now = nowIso();
    const profile: Profile = { v: FORMAT_VERSION, id, name: name ?? id, createdAt: now, updatedAt: now, metadata: metadata ?? {} };
    await ctx.durability.writeJsonAtomic(ctx.layout.profile(id), profile);
    await ctx.durability.syncDir(ctx.layout.user(id));
    ctx.profiles.set(id, profile);
    return profile;
  });
}

export async function restoreUser(ctx: FlatFileContext, input: Profile): Promise<Profile> {
  ctx.assertOpen();
  const profile = parseInput(ProfileSchema, input, 'profile');
  const id = profile.id;
  return ctx.mutex.run(`user:${id}`, async () => {
    // An unreadable profile is replaced, like a repair would.
    const existing = await readProfile(ctx, id).catch(() => null);
    if (!existing) await makeUserDirs(ctx, id);
    await ctx.durability.writeJsonAtomic(ctx.layout.profile(id), profile);
    await ctx.durability.syncDir(ctx.layout.user(id));
    ctx.profiles.set(id, profile);
    return profile;
  });
}

/** A new user's folders, unless another user's id differs from this one only in case. */
async function makeUserDirs(ctx: FlatFileContext, id: UserId): Promise<void> {
  // Ids that differ only in case would share a folder on macOS and Windows: refuse them everywhere.
  const clash = (await listDir(ctx.layout.users)).find((other) => other !== id && other.toLowerCase() === id.toLowerCase());
  if (clash) throw new MemexError('MEMEX_USER_EXISTS', `user ${clash} already exists (ids may not differ only in case)`, { details: { userId: clash } });
  await ctx.durability.mkdirp(ctx.layout.sessions(id));
  await ctx.durability.mkdirp(ctx.layout.personas(id));
}

export async function getUser(ctx: FlatFileContext, userId: string): Promise<Profile> {
  ctx.assertOpen();
  return requireUser(ctx, parseId('user', userId));
}

export async function listUsers(ctx: FlatFileContext): Promise<Profile[]> {
  ctx.assertOpen();
  const out: Profile[] = [];
  for (const name of await listDir(ctx.layout.users)) {
    try {
      const profile = await readProfile(ctx, parseId('user', name));
      if (profile) out.push(profile);
    } catch (cause) {
      const error = toMemexError(cause);
      ctx.warn({ kind: 'unreadable', path: join(ctx.layout.users, name), code: error.code, message: error.message });
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

export async function updateUser(ctx: FlatFileContext, userId: string, patch: ProfilePatch): Promise<Profile> {
  ctx.assertOpen();
  const id = parseId('user', userId);
  const changes = parseInput(ProfilePatchSchema, patch, 'profile patch');
  return ctx.mutex.run(`user:${id}`, async () => {
    const profile = await requireUser(ctx, id);
    const next: Profile = { ...profile, ...definedOnly(changes), updatedAt: nowIso() };
    await ctx.durability.writeJsonAtomic(ctx.layout.profile(id), next);
    ctx.profiles.set(id, next);
    return next;
  });
}

export async function deleteUser(ctx: FlatFileContext, userId: string): Promise<void> {
  ctx.assertOpen();
  const id = parseId('user', userId);
  await ctx.mutex.run(`user:${id}`, async () => {
    // An unreadable profile does not keep its user from being deleted.
    await requireUser(ctx, id).catch((cause: unknown) => {
      if (!isMemexError(cause, 'MEMEX_USER_CORRUPT')) throw cause;
    });
    await ctx.moveToTrash(ctx.layout.user(id));
    ctx.profiles.delete(id);
    ctx.indexes.delete(id);
    ctx.loaded.delete(id);
    for (const key of ctx.sessionCache.keys()) if (key.startsWith(`${id}/`)) ctx.sessionCache.delete(key);
    ctx.notesCache.delete(id);
    ctx.durability.forget(ctx.layout.user(id));
    ctx.bumpVectors(id);
  });
}

export async function readProfile(ctx: FlatFileContext, userId: UserId): Promise<Profile | null> {
  const cached = ctx.profiles.get(userId);
  if (cached) return cached;
  const profile = await readJsonRecord(
    ctx.layout.profile(userId),
    ProfileSchema,
    (reason, cause) => new MemexError('MEMEX_USER_CORRUPT', reason, { cause, details: { userId } }),
  );
  // On a case-insensitive file system "Alice" opens alice's folder: the stored id must match exactly.
  if (!profile || profile.id !== userId) return null;
  ctx.profiles.set(userId, profile);
  return profile;
}

export async function requireUser(ctx: FlatFileContext, userId: UserId): Promise<Profile> {
  const profile = await readProfile(ctx, userId);
  if (!profile) throw new MemexError('MEMEX_USER_NOT_FOUND', `user ${userId} does not exist`, { details: { userId } });
  return profile;
}
