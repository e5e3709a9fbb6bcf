import type { PoolClient } from 'pg';
import {
  FORMAT_VERSION,
  MemexError,
  NewPersonaSchema,
  newPersonaId,
  parseId,
  parseInput,
  PersonaPatchSchema,
  PersonaSchema,
  samePersonaName,
  type NewPersona,
  type Persona,
  type PersonaId,
  type PersonaPatch,
  type UserId,
} from '../../core/index.js';
import { iso, type PgContext, sqlState } from './context.js';
import { lockUser, requireUser } from './users.js';

interface PersonaRow {
  user_id: UserId;
  id: PersonaId;
  name: string;
  instructions: string;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'user_id, id, name, instructions, metadata, created_at, updated_at';

function personaOf(row: PersonaRow): Persona {
  return {
    v: FORMAT_VERSION,
    id: row.id,
    userId: row.user_id,
    name: row.name,
    instructions: row.instructions,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    metadata: row.metadata,
  };
}

export async function createPersona(ctx: PgContext, userId: string, input: NewPersona): Promise<Persona> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const fields = parseInput(NewPersonaSchema, input, 'persona');
  const id = fields.id ?? newPersonaId();
  return ctx.as(uid, async (client) => {
    // The profile row is locked so two creates of one name take turns through the check below.
    await lockUser(client, uid);
    const existing = await client.query('SELECT 1 FROM memex.personas WHERE user_id = $1 AND id = $2', [uid, id]);
    if (existing.rowCount) throw new MemexError('MEMEX_PERSONA_EXISTS', `persona ${id} already exists`, { details: { personaId: id } });
    await assertNameFree(client, uid, fields.name, null);
    const { rows } = await insertOrClash(client, `INSERT INTO memex.personas (user_id, id, name, instructions, metadata) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`, [
      uid,
      id,
      fields.name,
      fields.instructions,
      fields.metadata ?? {},
    ]);
    return personaOf(rows[0] as PersonaRow);
  });
}

export async function getPersona(ctx: PgContext, userId: string, personaId: string): Promise<Persona> {
  const uid = parseId('user', userId);
  const pid = parseId('persona', personaId);
  return ctx.as(uid, async (client) => personaOf(await requirePersonaRow(client, uid, pid)));
}

export async function listPersonas(ctx: PgContext, userId: string): Promise<Persona[]> {
  const uid = parseId('user', userId);
  return ctx.as(uid, async (client) => {
    await requireUser(client, uid);
    const { rows } = await client.query<PersonaRow>(`SELECT ${COLUMNS} FROM memex.personas WHERE user_id = $1`, [uid]);
    // Sorted here, not by the database's collation, so both backends list in the same order.
    return rows.map(personaOf).sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  });
}

export async function updatePersona(ctx: PgContext, userId: string, personaId: string, patch: PersonaPatch): Promise<Persona> {
  const uid = parseId('user', userId);
  const pid = parseId('persona', personaId);
  const changes = parseInput(PersonaPatchSchema, patch, 'persona patch');
  return ctx.as(uid, async (client) => {
    await lockUser(client, uid);
    await requirePersonaRow(client, uid, pid);
    if (changes.name !== undefined) await assertNameFree(client, uid, changes.name, pid);
    const { rows } = await insertOrClash(
      client,
      `UPDATE memex.personas SET name = coalesce($3, name), instructions = coalesce($4, instructions), metadata = coalesce($5, metadata), updated_at = now()
       WHERE user_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [uid, pid, changes.name ?? null, changes.instructions ?? null, changes.metadata ?? null],
    );
    return personaOf(rows[0] as PersonaRow);
  });
}

/** Sessions that used the persona keep their messages and lose the link, in the same transaction. */
export async function deletePersona(ctx: PgContext, userId: string, personaId: string): Promise<void> {
  const uid = parseId('user', userId);
  const pid = parseId('persona', personaId);
  await ctx.as(uid, async (client) => {
    await requirePersonaRow(client, uid, pid);
    await client.query('UPDATE memex.sessions SET persona_id = NULL, updated_at = now() WHERE user_id = $1 AND persona_id = $2', [uid, pid]);
    await client.query('DELETE FROM memex.personas WHERE user_id = $1 AND id = $2', [uid, pid]);
  });
}

export async function requirePersona(client: PoolClient, userId: UserId, personaId: string): Promise<void> {
  await requirePersonaRow(client, userId, parseId('persona', personaId));
}

async function requirePersonaRow(client: PoolClient, userId: UserId, personaId: string): Promise<PersonaRow> {
  const { rows } = await client.query<PersonaRow>(`SELECT ${COLUMNS} FROM memex.personas WHERE user_id = $1 AND id = $2`, [userId, personaId]);
  if (!rows[0]) {
    await requireUser(client, userId);
    throw new MemexError('MEMEX_PERSONA_NOT_FOUND', `persona ${personaId} does not exist for user ${userId}`, { details: { personaId } });
  }
  return rows[0];
}

/** MEMEX_PERSONA_EXISTS when another persona of the user (not `except`) has this name, ignoring case. */
async function assertNameFree(client: PoolClient, userId: UserId, name: string, except: string | null): Promise<void> {
  const { rows } = await client.query<{ id: string; name: string }>('SELECT id, name FROM memex.personas WHERE user_id = $1', [userId]);
  const taken = rows.find((persona) => persona.id !== except && samePersonaName(persona.name, name));
  if (taken) throw nameTaken(userId, taken);
}

function nameTaken(userId: string, taken: { id: string; name: string }): MemexError {
  return new MemexError('MEMEX_PERSONA_EXISTS', `user ${userId} already has a persona named "${taken.name}" (${taken.id})`, { details: { personaId: taken.id, name: taken.name } });
}

/** The unique name index is the backstop for a clash the check above could not see (another instance's create). */
async function insertOrClash(client: PoolClient, sql: string, values: unknown[]): Promise<{ rows: PersonaRow[] }> {
  try {
    return await client.query<PersonaRow>(sql, values);
  } catch (error) {
    if (sqlState(error) === '23505') throw new MemexError('MEMEX_PERSONA_EXISTS', 'another persona of this user has that name or id', { cause: error });
    throw error;
  }
}

// ---- restoring a copy (memex migrate): the record as given, ids and times included

export async function restorePersona(ctx: PgContext, userId: string, input: Persona): Promise<Persona> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const persona = parseInput(PersonaSchema, input, 'persona');
  if (persona.userId !== uid) throw new MemexError('MEMEX_INVALID_INPUT', `persona ${persona.id} belongs to user ${persona.userId}, not ${uid}`);
  return ctx.as(uid, async (client) => {
    await lockUser(client, uid);
    await assertNameFree(client, uid, persona.name, persona.id);
    const { rows } = await insertOrClash(
      client,
      `INSERT INTO memex.personas (user_id, id, name, instructions, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (user_id, id) DO UPDATE SET name = EXCLUDED.name, instructions = EXCLUDED.instructions, metadata = EXCLUDED.metadata, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
       RETURNING ${COLUMNS}`,
      [uid, persona.id, persona.name, persona.instructions, persona.metadata, persona.createdAt, persona.updatedAt],
    );
    return personaOf(rows[0] as PersonaRow);
  });
}
