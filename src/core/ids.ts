import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { MemexError } from './errors.js';

/**
 * Ids become folder and file names, so they are checked before they touch a path: 1-128 characters
 * of ASCII letters, digits, `.`, `_`, `-`; not starting with `.`; never containing `..`.
 * That excludes `/`, `\`, NUL and every other separator or control character by construction.
 */
export const MAX_ID_LENGTH = 128;
const ID_CHARS = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Why `value` is not a valid id, or null when it is. */
export function idProblem(value: unknown): string | null {
  if (typeof value !== 'string') return 'must be a string';
  if (value.length === 0) return 'must not be empty';
  if (value.length > MAX_ID_LENGTH) return `must be at most ${MAX_ID_LENGTH} characters (got ${value.length})`;
  if (value.includes('\0')) return 'must not contain NUL';
  if (value.includes('/') || value.includes('\\')) return 'must not contain a path separator';
  if (value.includes('..')) return 'must not contain ".."';
  if (value.startsWith('.')) return 'must not start with "."';
  if (!ID_CHARS.test(value)) return 'may only contain letters, digits, ".", "_" and "-"';
  return null;
}

function idSchema<const B extends string>(brand: B) {
  return z
    .string()
    .superRefine((value, ctx) => {
      const problem = idProblem(value);
      if (problem !== null) ctx.addIssue({ code: 'custom', message: `invalid ${brand}: ${problem}` });
    })
    .brand<B>();
}

export const UserIdSchema = idSchema('UserId');
export const SessionIdSchema = idSchema('SessionId');
export const MessageIdSchema = idSchema('MessageId');
export const PersonaIdSchema = idSchema('PersonaId');
export const NoteIdSchema = idSchema('NoteId');
/** A file id is the lowercase hex sha256 of the file's bytes. */
export const FileIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'invalid FileId: must be a lowercase hex sha256').brand<'FileId'>();

export type UserId = z.infer<typeof UserIdSchema>;
export type SessionId = z.infer<typeof SessionIdSchema>;
export type MessageId = z.infer<typeof MessageIdSchema>;
export type PersonaId = z.infer<typeof PersonaIdSchema>;
export type NoteId = z.infer<typeof NoteIdSchema>;
export type FileId = z.infer<typeof FileIdSchema>;

type IdKind = 'user' | 'session' | 'message' | 'persona' | 'note' | 'file';
const schemas = {
  user: UserIdSchema,
  session: SessionIdSchema,
  message: MessageIdSchema,
  persona: PersonaIdSchema,
  note: NoteIdSchema,
  file: FileIdSchema,
} as const;
type IdOf<K extends IdKind> = z.infer<(typeof schemas)[K]>;

/** Validates an id from outside (CLI, HTTP, library caller) or throws MEMEX_INVALID_ID. */
export function parseId<K extends IdKind>(kind: K, value: unknown): IdOf<K> {
  const result = schemas[kind].safeParse(value);
  if (result.success) return result.data as IdOf<K>;
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : String(value);
  const reason = kind === 'file' ? 'must be a lowercase hex sha256' : (idProblem(value) ?? 'is invalid');
  throw new MemexError('MEMEX_INVALID_ID', `invalid ${kind} id ${shown}: ${reason}`, { details: { kind } });
}

// Crockford base32, lowercase: sortable, no ambiguous letters, safe in paths and URLs.
const B32 = '0123456789abcdefghjkmnpqrstvwxyz';

function base32(bytes: Uint8Array, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += B32.charAt((bytes[i] ?? 0) % 32);
  return out;
}

let lastUlidTime = -1;
let lastUlidRandom: Uint8Array = new Uint8Array(16);

/**
 * A ULID (48-bit milliseconds + 80 random bits, 26 base32 chars), monotonic within the process:
 * ids made in the same millisecond increment the random part, so they still sort in creation order.
 */
export function ulid(now: number = Date.now()): string {
  let random: Uint8Array;
  if (now <= lastUlidTime) {
    now = lastUlidTime;
    random = lastUlidRandom.slice();
    for (let i = random.length - 1; i >= 0; i--) {
      const next = ((random[i] ?? 0) + 1) % 32;
      random[i] = next;
      if (next !== 0) break;
    }
  } else {
    random = new Uint8Array(randomBytes(16)).map((b) => b % 32);
  }
  lastUlidTime = now;
  lastUlidRandom = random;
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = B32.charAt(t % 32) + time;
    t = Math.floor(t / 32);
  }
  return time + base32(random, 16);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Session ids read as their creation time and sort by it: `20240722-153012-k3x9q2`. */
export function newSessionId(now: Date = new Date()): SessionId {
  const stamp =
    `${now.getUTCFullYear()}${pad(now.getUTCMonth() + 1)}${pad(now.getUTCDate())}-` +
    `${pad(now.getUTCHours())}${pad(now.getUTCMinutes())}${pad(now.getUTCSeconds())}`;
  return `${stamp}-${base32(randomBytes(6), 6)}` as SessionId;
}

/** An import's id: `imp_` and a ULID, so a user's imports sort by when they ran. */
export function newImportId(now?: number): string {
  return `imp_${ulid(now)}`;
}

export function newImportJobId(now?: number): string {
  return `ijob_${ulid(now)}`;
}

export function newMessageId(now?: number): MessageId {
  return `msg_${ulid(now)}` as MessageId;
}

export function newPersonaId(now?: number): PersonaId {
  return `persona_${ulid(now)}` as PersonaId;
}

export function newNoteId(now?: number): NoteId {
  return `note_${ulid(now)}` as NoteId;
}

/** The services whose exports Memex imports; `memex` is its own session export. */
export const IMPORT_SOURCES = ['chatgpt', 'claude', 'gemini', 'memex'] as const;
export type ImportSource = (typeof IMPORT_SOURCES)[number];

const IMPORTED_ID = /^(chatgpt|claude|gemini|memex)\.([A-Za-z0-9_-][A-Za-z0-9_-]*)$/;
const SAFE_KEY = /^[A-Za-z0-9_-]{1,100}$/;

/**
 * The session id of an imported conversation: `<source>.<key>`, the same on every import of it, so a
 * second import finds what the first wrote. The key is the service's conversation id when that is a
 * safe name (ChatGPT's and Claude's UUIDs), else `h` and 40 hex digits of its sha256. Native ids
 * never hold a `.`, so the two never meet, and the flat files keep imported conversations in their
 * own folder (`users/<id>/imported/<source>/<key>/`) by the id alone.
 */
export function importedSessionId(source: ImportSource, conversationId: string): SessionId {
  const key = SAFE_KEY.test(conversationId) ? conversationId : `h${createHash('sha256').update(conversationId).digest('hex').slice(0, 40)}`;
  return `${source}.${key}` as SessionId;
}

/** The source and folder name of an imported conversation's session id; null for a native id. */
export function importedSessionParts(sessionId: string): { source: ImportSource; key: string } | null {
  const match = IMPORTED_ID.exec(sessionId);
  return match ? { source: match[1] as ImportSource, key: match[2] as string } : null;
}
