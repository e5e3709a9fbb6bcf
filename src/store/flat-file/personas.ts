import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { z } from 'zod';
import { FORMAT_VERSION, MemexError, type NewPersona, newPersonaId, NewPersonaSchema, parseId, parseInput, type Persona, type PersonaPatch, type SessionId, PersonaPatchSchema, PersonaSchema, samePersonaName, toMemexError, type UserId } from '../../core/index.js';
import { readJsonRecord, wrapIo } from '../durable.js';
import { definedOnly, type FlatFileContext, listDir, nowIso } from './context.js';
import { requireUser } from './users.js';
import { userIndex } from './listing.js';

export async function createPersona(ctx: FlatFileContext, userId: string, input: NewPersona): Promise<Persona> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const fields = parseInput(NewPersonaSchema, input, 'persona');
  const id = fields.id ?? newPersonaId();
  // The user's personas turn first: names are unique per user, so two creates must not both pass the check.
  return ctx.mutex.run(`personas:${uid}`, () => ctx.mutex.run(`persona:${uid}/${id}`, async () => {
    await requireUser(ctx, uid);
    if (await readPersona(ctx, uid, id)) throw new MemexError('MEMEX_PERSONA_EXISTS', `persona ${id} already exists`, { details: { personaId: id } });
    await assertPersonaNameFree(ctx, uid, fields.name, null);
    const now = nowIso();
    const persona: Persona = { v: FORMAT_VERSION, id, userId: uid, name: fields.name, instructions: fields.instructions, createdAt: now, updatedAt: now, metadata: fields.metadata ?? {} };
    await ctx.durability.mkdirp(ctx.layout.personas(uid));
    await ctx.durability.writeJsonAtomic(ctx.layout.persona(uid, id), persona);
    await ctx.durability.syncDir(ctx.layout.personas(uid));
    return persona;
  }));
}

export async function restorePersona(ctx: FlatFileContext, userId: string, input: Persona): Promise<Persona> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const persona = parseInput(PersonaSchema, input, 'persona');
  if (persona.userId !== uid) throw new MemexError('MEMEX_INVALID_INPUT', `persona ${persona.id} belongs to user ${persona.userId}, not ${uid}`);
  return ctx.mutex.run(`personas:${uid}`, () => ctx.mutex.run(`persona:${uid}/${persona.id}`, async () => {
    await requireUser(ctx, uid);
    await assertPersonaNameFree(ctx, uid, persona.name, persona.id);
    await ctx.durability.mkdirp(ctx.layout.personas(uid));
    await ctx.durability.writeJsonAtomic(ctx.layout.persona(uid, persona.id), persona);
    await ctx.durability.syncDir(ctx.layout.personas(uid));
    return persona;
  }));
}

/** MEMEX_PERSONA_EXISTS when another persona of the user (not `except`) has this name, ignoring case. */
async function assertPersonaNameFree(ctx: FlatFileContext, userId: UserId, name: string, except: string | null): Promise<void> {
  const taken = (await listPersonas(ctx, userId)).find((persona) => persona.id !== except && samePersonaName(persona.name, name));
  if (taken) {
    throw new MemexError('MEMEX_PERSONA_EXISTS', `user ${userId} already has a persona named "${taken.name}" (${taken.id})`, { details: { personaId: taken.id, name: taken.name } });
  }
}

export async function getPersona(ctx: FlatFileContext, userId: string, personaId: string): Promise<Persona> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  const pid = parseId('persona', personaId);
  await requireUser(ctx, uid);
  const persona = await readPersona(ctx, uid, pid);
  if (!persona) throw new MemexError('MEMEX_PERSONA_NOT_FOUND', `persona ${pid} does not exist for user ${uid}`, { details: { personaId: pid } });
  return persona;
}

export async function listPersonas(ctx: FlatFileContext, userId: string): Promise<Persona[]> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  const out: Persona[] = [];
  for (const name of await listDir(ctx.layout.personas(uid))) {
    if (!name.endsWith('.json')) continue;
    try {
      const persona = await readPersona(ctx, uid, parseId('persona', name.slice(0, -'.json'.length)));
      if (persona) out.push(persona);
    } catch (cause) {
      const error = toMemexError(cause);
      ctx.warn({ kind: 'unreadable', path: join(ctx.layout.personas(uid), name), code: error.code, message: error.message });
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}

export async function updatePersona(ctx: FlatFileContext, userId: string, personaId: string, patch: PersonaPatch): Promise<Persona> {
  const changes = parseInput(PersonaPatchSchema, patch, 'persona patch');
  const [uid, pid] = [parseId('user', userId), parseId('persona', personaId)];
  // Read inside the persona's turn, so two concurrent updates cannot overwrite each other.
  return ctx.mutex.run(`personas:${uid}`, () => ctx.mutex.run(`persona:${uid}/${pid}`, async () => {
    const current = await getPersona(ctx, uid, pid);
    if (changes.name !== undefined) await assertPersonaNameFree(ctx, current.userId, changes.name, current.id);
    const next: Persona = { ...current, ...definedOnly(changes), updatedAt: nowIso() };
    await ctx.durability.writeJsonAtomic(ctx.layout.persona(current.userId, current.id), next);
    return next;
  }));
}

/**
 * `unsetPersona` takes the persona off one of its sessions (sessions.ts's updateSession, passed in
 * by the store so this module does not import the sessions module, which imports this one).
 */
export async function deletePersona(
  ctx: FlatFileContext,
  userId: string,
  personaId: string,
  unsetPersona: (userId: UserId, sessionId: SessionId) => Promise<unknown>,
): Promise<void> {
  const persona = await getPersona(ctx, userId, personaId);
  const uid = persona.userId;
  const index = await userIndex(ctx, uid);
  for (const entry of [...index.entries.values()].filter((e) => e.personaId === persona.id)) {
    await unsetPersona(uid, entry.id);
  }
  await ctx.mutex.run(`persona:${uid}/${persona.id}`, () =>
    rm(ctx.layout.persona(uid, persona.id), { force: true }).catch((cause: unknown) => {
      throw wrapIo(cause, 'cannot delete persona');
    }),
  );
}

async function readPersona(ctx: FlatFileContext, userId: UserId, personaId: z.infer<typeof PersonaSchema>['id']): Promise<Persona | null> {
  const persona = await readJsonRecord(
    ctx.layout.persona(userId, personaId),
    PersonaSchema,
    (reason, cause) => new MemexError('MEMEX_PERSONA_CORRUPT', reason, { cause, details: { personaId } }),
  );
  return persona && persona.id === personaId && persona.userId === userId ? persona : null;
}
