import { InvalidArgumentError, type Command } from 'commander';
import { MemexError } from '../core/index.js';
import type { Memex } from '../memex.js';
import type { Context } from './main.js';

export type ContextOf = (command: Command) => Context;

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

/** The user the command acts as; the implicit `default` user is created on first use. */
export async function userOf(ctx: Context): Promise<{ memex: Memex; user: string }> {
  const memex = await ctx.memex();
  if (ctx.defaultUser) await memex.users.ensure(ctx.user);
  else await memex.users.get(ctx.user);
  return { memex, user: ctx.user };
}

/** The session named by --session, else the user's most recently active one. */
export async function sessionOf(memex: Memex, user: string, session: string | undefined, createIfNone: boolean): Promise<string> {
  if (session) return session;
  const [latest] = (await memex.sessions.list(user, { limit: 1 })).sessions;
  if (latest) return latest.id;
  if (createIfNone) return (await memex.sessions.create(user)).id;
  throw new MemexError('MEMEX_SESSION_NOT_FOUND', `user ${user} has no sessions yet; add a message with \`memex add <text>\` or create one with \`memex session new\``);
}

