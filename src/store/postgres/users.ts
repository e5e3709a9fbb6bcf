import type { PoolClient } from 'pg';
import { FORMAT_VERSION, MemexError, NewUserSchema, parseId, parseInput, ProfilePatchSchema, ProfileSchema, type NewUser, type Profile, type ProfilePatch, type UserId } from '../../core/index.js';
import { iso, type PgContext } from './context.js';
import { ADMIN_ROLE, APP_ROLE } from './with-user.js';

interface UserRow {
  user_id: UserId;
  name: string;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'user_id, name, metadata, created_at, updated_at';

function profileOf(row: UserRow): Profile {
  return { v: FORMAT_VERSION, id: row.user_id, name: row.name, createdAt: iso(row.created_at), updatedAt: iso(row.updated_at), metadata: row.metadata };
}

export async function createUser(ctx: PgContext, input: NewUser): Promise<Profile> {
  const { id, name, metadata } = parseInput(NewUserSchema, input, 'user');
  return ctx.as(id, async (client) => {
    const clash = await sameFoldedId(client, id);
    if (clash) {
      const message = clash.user_id === id ? `user ${id} already exists` : `user ${clash.user_id} already exists (ids may not differ only in case)`;
      throw new MemexError('MEMEX_USER_EXISTS', message, { details: { userId: clash.user_id } });
    }
    const { rows } = await client.query<UserRow>(`INSERT INTO memex.users (user_id, name, metadata) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`, [id, name ?? id, metadata ?? {}]);
    return profileOf(rows[0] as UserRow);
  });
}

export async function getUser(ctx: PgContext, userId: string): Promise<Profile> {
  const uid = parseId('user', userId);
  return ctx.as(uid, (client) => requireUser(client, uid));
}

export async function listUsers(ctx: PgContext): Promise<Profile[]> {
  return ctx.admin(async (client) => {
    const { rows } = await client.query<UserRow>(`SELECT ${COLUMNS} FROM memex.users ORDER BY user_id COLLATE "C"`);
    return rows.map(profileOf);
  });
}

export async function updateUser(ctx: PgContext, userId: string, patch: ProfilePatch): Promise<Profile> {
  const uid = parseId('user', userId);
  const changes = parseInput(ProfilePatchSchema, patch, 'profile patch');
  return ctx.as(uid, async (client) => {
    const { rows } = await client.query<UserRow>(
      `UPDATE memex.users SET name = coalesce($2, name), metadata = coalesce($3, metadata), updated_at = now() WHERE user_id = $1 RETURNING ${COLUMNS}`,
      [uid, changes.name ?? null, changes.metadata ?? null],
    );
    if (!rows[0]) throw userNotFound(uid);
    return profileOf(rows[0]);
  });
}

/** Deletes the user; the foreign keys cascade to everything under them in the same transaction. */
export async function deleteUser(ctx: PgContext, userId: string): Promise<void> {
  const uid = parseId('user', userId);
  await ctx.as(uid, async (client) => {
    const { rowCount } = await client.query('DELETE FROM memex.users WHERE user_id = $1', [uid]);
    if (!rowCount) throw userNotFound(uid);
  });
}

export async function requireUser(client: PoolClient, userId: UserId): Promise<Profile> {
  const { rows } = await client.query<UserRow>(`SELECT ${COLUMNS} FROM memex.users WHERE user_id = $1`, [userId]);
  if (!rows[0]) throw userNotFound(userId);
  return profileOf(rows[0]);
}

/**
 * A user whose id folds to the same lowercase id, if any. Ids that differ only in case would share a
 * folder on macOS and Windows, so the flat files refuse them; the database does too, so a data dir
 * and a database hold the same users. (Not a unique index on lower(user_id): Citus cannot distribute
 * one.) Writers of one folded id take turns on an advisory lock held to the end of the transaction,
 * and the clash is looked for as memex_admin, which sees every profile.
 */
async function sameFoldedId(client: PoolClient, id: UserId): Promise<{ user_id: string } | undefined> {
  await client.query("SELECT pg_advisory_xact_lock(hashtext('memex.user:' || lower($1)))", [id]);
  await client.query(`SET LOCAL ROLE ${ADMIN_ROLE}`);
  const clash = (await client.query<{ user_id: string }>('SELECT user_id FROM memex.users WHERE lower(user_id) = lower($1)', [id])).rows[0];
  await client.query(`SET LOCAL ROLE ${APP_ROLE}`);
  return clash;
}

/** Locks the user's profile row, so writes that check something across the user's rows (persona names) take turns. */
export async function lockUser(client: PoolClient, userId: UserId): Promise<void> {
  const { rowCount } = await client.query('SELECT 1 FROM memex.users WHERE user_id = $1 FOR UPDATE', [userId]);
  if (!rowCount) throw userNotFound(userId);
}

export function userNotFound(userId: string): MemexError {
  return new MemexError('MEMEX_USER_NOT_FOUND', `user ${userId} does not exist`, { details: { userId } });
}

// ---- restoring a copy (memex migrate): the record as given, ids and times included

export async function restoreUser(ctx: PgContext, input: Profile): Promise<Profile> {
  const profile = parseInput(ProfileSchema, input, 'profile');
  const id = profile.id;
  return ctx.as(id, async (client) => {
    // The same case-folded clash check as createUser, other than the user itself.
    const clash = await sameFoldedId(client, id);
    if (clash && clash.user_id !== id) throw new MemexError('MEMEX_USER_EXISTS', `user ${clash.user_id} already exists (ids may not differ only in case)`, { details: { userId: clash.user_id } });
    const { rows } = await client.query<UserRow>(
      `INSERT INTO memex.users (user_id, name, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (user_id) DO UPDATE SET name = EXCLUDED.name, metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
       RETURNING ${COLUMNS}`,
      [id, profile.name, profile.metadata, profile.createdAt, profile.updatedAt],
    );
    return profileOf(rows[0] as UserRow);
  });
}
