import { InvalidArgumentError, type Command } from 'commander';
import { MemexError, samePersonaName, type Persona } from '../core/index.js';
import type { MemexApi } from './api.js';
import type { Context } from './main.js';

export type ContextOf = (command: Command) => Context;

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * A point in time for a filter: a plain date (`2023-10-01`, midnight UTC) or a full ISO time with
 * its zone (`2023-10-01T12:00:00+02:00`), as the ISO time in UTC the library takes.
 */
export function isoTime(value: string): string {
  const date = DATE.exec(value);
  if (date) {
    const parsed = new Date(`${value}T00:00:00.000Z`);
    // `2023-02-30` parses (as March 2nd): only a date that round-trips is one.
    if (!Number.isNaN(parsed.getTime()) && parsed.toISOString().startsWith(value)) return parsed.toISOString();
  } else if (ISO_TIME.test(value)) {
    const parsed = new Date(value);
    if (!Number.isNaN(parsed.getTime())) return parsed.toISOString();
  }
  throw new InvalidArgumentError('expected a date (2023-10-01, midnight UTC) or an ISO time with its zone (2023-10-01T12:00:00Z)');
}

/** The user the command acts as; the implicit `default` user is created on first use. */
export async function userOf(ctx: Context): Promise<{ memex: MemexApi; user: string }> {
  const memex = await ctx.memex();
  if (ctx.defaultUser) await memex.users.ensure(ctx.user);
  else await memex.users.get(ctx.user);
  return { memex, user: ctx.user };
}

/** The session named by --session, else the user's most recently active one. */
export async function sessionOf(memex: MemexApi, user: string, session: string | undefined, createIfNone: boolean): Promise<string> {
  if (session) return session;
  // The latest live session: an archived one takes no messages.
  const [latest] = (await memex.sessions.list(user, { limit: 1, archived: 'exclude' })).sessions;
  if (latest) return latest.id;
  if (createIfNone) return (await memex.sessions.create(user)).id;
  throw new MemexError('MEMEX_SESSION_NOT_FOUND', `user ${user} has no sessions yet; add a message with \`memex add <text>\` or create one with \`memex session new\``);
}

/** A persona named by its id or, failing that, by its name (ignoring case, as the library keeps names unique). */
export async function personaOf(memex: MemexApi, user: string, idOrName: string): Promise<Persona> {
  const personas = await memex.personas.list(user);
  const byId = personas.find((p) => p.id === idOrName);
  if (byId) return byId;
  const named = personas.filter((p) => samePersonaName(p.name, idOrName));
  if (named.length === 1) return named[0] as Persona;
  if (named.length > 1) {
    throw new MemexError('MEMEX_PERSONA_AMBIGUOUS', `${named.length} personas are named "${idOrName}" (${named.map((p) => p.id).join(', ')}); name one by its id`, {
      details: { name: idOrName, personaIds: named.map((p) => p.id) },
    });
  }
  throw new MemexError('MEMEX_PERSONA_NOT_FOUND', `user ${user} has no persona with the id or name "${idOrName}"`, { details: { persona: idOrName } });
}
