import { randomBytes, timingSafeEqual } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { FORMAT_VERSION, MemexError } from '../core/index.js';
import { Durability, isAlive, readJsonRecord } from '../store/index.js';

/**
 * `<dataDir>/server.json`: how the CLI finds the `memex serve` that owns a data dir, and the secret
 * that lets it act there. Only the data dir's owner can read the file (mode 0600), so holding the
 * secret proves what the lock would: the caller may use this data dir anyway. The server writes it
 * once it listens and removes it when it stops; one left by a crash names a dead pid, or a port
 * that refuses, and is ignored.
 */
export const SERVER_FILE = 'server.json';

/** The header that names the user a local-admin request acts as. */
export const LOCAL_USER_HEADER = 'x-memex-user';

const ServerFileSchema = z.object({
  v: z.literal(FORMAT_VERSION),
  url: z.url(),
  pid: z.number().int().positive(),
  hostname: z.string(),
  secret: z.string().min(32),
  startedAt: z.string(),
});
export type ServerFile = z.infer<typeof ServerFileSchema>;

export function newLocalSecret(): string {
  return `mxlocal_${randomBytes(32).toString('base64url')}`;
}

/** Constant-time comparison of a bearer token with the local secret. */
export function isLocalSecret(token: string, secret: string | undefined): boolean {
  if (secret === undefined) return false;
  const a = Buffer.from(token);
  const b = Buffer.from(secret);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Writes the file atomically, readable by its owner only (created 0600, then renamed into place). */
export async function writeServerFile(dataDir: string, info: { url: string; secret: string }): Promise<ServerFile> {
  const record: ServerFile = { v: FORMAT_VERSION, url: info.url, pid: process.pid, hostname: hostname(), secret: info.secret, startedAt: new Date().toISOString() };
  const durability = new Durability('always');
  // On PostgreSQL nothing else makes the data dir, which then only holds this file.
  await durability.mkdirp(dataDir);
  await durability.writeJsonAtomic(join(dataDir, SERVER_FILE), record, { mode: 0o600 });
  return record;
}

/** Removes the file if it is still this server's (a newer server's is left alone). */
export async function removeServerFile(dataDir: string, secret: string): Promise<void> {
  const current = await readServerFile(dataDir);
  if (current?.secret === secret) await unlink(join(dataDir, SERVER_FILE)).catch(() => undefined);
}

/** The file's record, or null when there is none, it is unreadable, or its process is gone. */
export async function readServerFile(dataDir: string): Promise<ServerFile | null> {
  const record = await readJsonRecord(join(dataDir, SERVER_FILE), ServerFileSchema, (reason) => new MemexError('MEMEX_INVALID_INPUT', reason)).catch(() => null);
  if (!record || (record.hostname === hostname() && !isAlive(record.pid))) return null;
  return record;
}
