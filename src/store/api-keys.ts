import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { FORMAT_VERSION, MemexError, TimestampSchema, UserIdSchema, parseId } from '../core/index.js';
import { Durability, isNotFound, readJsonRecord } from './durable.js';
import { DataDirLock } from './lock.js';

/**
 * API keys, one user each, in `<dataDir>/api_keys.json`. Only a SHA-256 of each key's secret is
 * kept: the key itself is shown once, when it is made. (The secret is 32 random bytes, so a fast
 * hash is enough; slow password hashes are for secrets people choose.)
 *
 * The file sits outside the data dir's lock, so `memex keys create|revoke` work while a server
 * runs; the server notices a changed file within `recheckMs` and a revoked key stops working then.
 *
 * A file that cannot be read is never rewritten or set aside here: every key request answers
 * MEMEX_KEYS_UNREADABLE (503) until a person restores or replaces it, and the server takes the fixed
 * file up without a restart. Starting over with an empty file instead would drop every revocation
 * with it and turn a fixable fault into "all keys are invalid"; failing closed, loudly, keeps both.
 */
const KeyRecordSchema = z.object({
  id: z.string().regex(/^[0-9a-z]{12}$/),
  userId: UserIdSchema,
  name: z.string().max(200).nullable(),
  /** Hex SHA-256 of the secret part of the key. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: TimestampSchema,
  revokedAt: TimestampSchema.nullable(),
  /** May manage users (create, list, delete) over HTTP. Files written before the flag read as false. */
  admin: z.boolean().default(false),
});
type KeyRecord = z.infer<typeof KeyRecordSchema>;
/** A key as stored: its id, user, name, times, admin flag and the hash of its secret (never the secret). */
export type ApiKeyRecord = KeyRecord;

/** Checks records copied from another key store before any is written. */
export function parseKeyRecords(records: readonly ApiKeyRecord[]): ApiKeyRecord[] {
  const parsed = z.array(KeyRecordSchema).safeParse(records);
  if (!parsed.success) throw new MemexError('MEMEX_INVALID_INPUT', `an API key record to copy is not valid: ${parsed.error.issues[0]?.message ?? 'malformed'}`);
  return parsed.data;
}

const KeyFileSchema = z.object({ v: z.literal(FORMAT_VERSION), keys: z.array(KeyRecordSchema) });

/** What listing a key shows: everything but its hash. */
export type ApiKeyInfo = Omit<KeyRecord, 'hash'> & { prefix: string };

/** Who a request is: the user, and the key it came with (null when a trusted gateway named the user). */
export interface Caller {
  userId: string;
  keyId: string | null;
  /** The key may manage users. */
  admin: boolean;
  /** The local CLI, with the secret from server.json: may act as any user and use the admin routes. */
  local?: boolean;
}

/**
 * Where API keys live: the data dir's api_keys.json (`KeyStore`), or the database when several
 * service instances share one (`PostgresKeyStore`). Both pass test/store/api-keys.conformance.ts.
 */
export interface ApiKeyStore {
  /** Makes a key for the user; the returned `key` is the only time the secret is seen. */
  create(userId: string, name?: string, options?: { admin?: boolean }): Promise<{ key: string; info: ApiKeyInfo }>;
  /** Every key (of one user, when given), oldest first; revoked keys show when they were revoked. */
  list(userId?: string): Promise<ApiKeyInfo[]>;
  /** Revokes a key by its id (or the whole key); MEMEX_KEY_NOT_FOUND when there is none. */
  revoke(keyOrId: string): Promise<ApiKeyInfo>;
  /** Revokes every live key of the user; resolves with how many were revoked. */
  revokeUser(userId: string): Promise<number>;
  /** Throws a coded error when the keys cannot be read (what `doctor` reports). */
  check(): Promise<void>;
  /**
   * The caller a bearer token names, or null when it is not a live key. A key revoked anywhere is
   * refused within a second.
   */
  verify(token: string): Promise<Caller | null>;
  /** Whether any key is live (a server without one, and without trusted headers, admits nobody). */
  hasLiveKeys(): Promise<boolean>;
  /** The users that have keys (live or revoked), sorted. */
  keyUsers(): Promise<string[]>;
  /** The user's keys as stored, hashes included, oldest first: what `memex migrate` copies. */
  records(userId: string): Promise<ApiKeyRecord[]>;
  /**
   * Adds keys copied from another store as they were (ids, hashes, names, times, revocations), so
   * the same keys work here. A key this store already has (same user and id) is left as it is, so
   * copying again adds nothing. Resolves with how many were added.
   */
  copyIn(records: readonly ApiKeyRecord[]): Promise<number>;
}

const PREFIX = 'mx_';
const KEY_PATTERN = /^mx_([0-9a-z]{12})_([A-Za-z0-9_-]{43})$/;
const B32 = '0123456789abcdefghjkmnpqrstvwxyz';

/** A new key's parts: the id, the full key to show once, and the hash to keep. */
export function newKey(): { id: string; key: string; hash: string } {
  const id = Array.from(randomBytes(12), (byte) => B32.charAt(byte % 32)).join('');
  const secret = randomBytes(32).toString('base64url');
  return { id, key: `${PREFIX}${id}_${secret}`, hash: sha256(secret) };
}

/** The id and the secret's hash of a well-formed key; null for anything else. */
export function parseKey(token: string): { id: string; hash: string } | null {
  const match = KEY_PATTERN.exec(token);
  if (!match) return null;
  const [, id, secret] = match as unknown as [string, string, string];
  return { id, hash: sha256(secret) };
}

/** The key id in what `memex keys revoke` was given: a whole key, `mx_<id>`, or the id. */
export function keyIdOf(keyOrId: string): string {
  return KEY_PATTERN.exec(keyOrId)?.[1] ?? keyOrId.replace(new RegExp(`^${PREFIX}`), '');
}

/** How a key is shown in listings: never its secret. */
export function keyPrefix(id: string): string {
  return `${PREFIX}${id}_…`;
}

export class KeyStore implements ApiKeyStore {
  readonly path: string;
  /** The records as last read, or why they could not be (kept until the file changes, so a bad file is read once). */
  private cache: { records: Map<string, KeyRecord>; error: null; mtimeMs: number } | { records: null; error: MemexError; mtimeMs: number } | null = null;
  private checkedAt = 0;
  private readonly durability = new Durability('always');

  constructor(
    dataDir: string,
    private readonly options: { recheckMs?: number; lockTimeoutMs?: number } = {},
  ) {
    this.path = join(dataDir, 'api_keys.json');
  }

  /** Makes a key for the user; the returned `key` is the only time the secret is seen. */
  async create(userId: string, name?: string, options: { admin?: boolean } = {}): Promise<{ key: string; info: ApiKeyInfo }> {
    const uid = parseId('user', userId);
    const { id, key, hash } = newKey();
    const record: KeyRecord = { id, userId: uid, name: name?.trim() || null, hash, createdAt: new Date().toISOString(), revokedAt: null, admin: options.admin ?? false };
    await this.change((records) => records.push(record));
    return { key, info: infoOf(record) };
  }

  /** Every key (of one user, when given), oldest first; revoked keys show when they were revoked. */
  async list(userId?: string): Promise<ApiKeyInfo[]> {
    const records = await this.read();
    return records.filter((record) => userId === undefined || record.userId === userId).map(infoOf);
  }

  /** Revokes a key by its id (or the whole key); requests with it answer 401 from then on. */
  async revoke(keyOrId: string): Promise<ApiKeyInfo> {
    const id = keyIdOf(keyOrId);
    let revoked: KeyRecord | undefined;
    await this.change((records) => {
      const record = records.find((candidate) => candidate.id === id);
      if (!record) throw new MemexError('MEMEX_KEY_NOT_FOUND', `no API key ${id}`, { details: { keyId: id } });
      record.revokedAt ??= new Date().toISOString();
      revoked = record;
    });
    return infoOf(revoked as KeyRecord);
  }

  /**
   * Revokes every live key of the user (what deleting the user does first, so no request can
   * come in as them, or create them again). Resolves with how many were revoked; writes nothing
   * when there were none (or no key file).
   */
  async revokeUser(userId: string): Promise<number> {
    const uid = parseId('user', userId);
    const live = (await this.read()).filter((record) => record.userId === uid && record.revokedAt === null);
    if (live.length === 0) return 0;
    let revoked = 0;
    await this.change((records) => {
      const now = new Date().toISOString();
      for (const record of records) {
        if (record.userId !== uid || record.revokedAt !== null) continue;
        record.revokedAt = now;
        revoked++;
      }
    });
    return revoked;
  }

  /** Throws MEMEX_KEYS_UNREADABLE when the file exists and cannot be read (what `doctor` checks). */
  async check(): Promise<void> {
    await this.read();
  }

  /** The caller a bearer token names, or null when it is not a live key. Constant-time in the secret. */
  async verify(token: string): Promise<Caller | null> {
    const parsed = parseKey(token);
    if (!parsed) return null;
    const record = (await this.current()).get(parsed.id);
    if (!record || record.revokedAt !== null) return null;
    const expected = Buffer.from(record.hash, 'hex');
    const actual = Buffer.from(parsed.hash, 'hex');
    return timingSafeEqual(expected, actual) ? { userId: record.userId, keyId: record.id, admin: record.admin } : null;
  }

  /** Whether any key is live (a server without one, and without trusted headers, admits nobody). */
  async hasLiveKeys(): Promise<boolean> {
    return [...(await this.current()).values()].some((record) => record.revokedAt === null);
  }

  async keyUsers(): Promise<string[]> {
    return [...new Set((await this.read()).map((record) => record.userId))].sort();
  }

  async records(userId: string): Promise<ApiKeyRecord[]> {
    const uid = parseId('user', userId);
    return (await this.read()).filter((record) => record.userId === uid);
  }

  async copyIn(records: readonly ApiKeyRecord[]): Promise<number> {
    const incoming = parseKeyRecords(records);
    let added = 0;
    await this.change((current) => {
      const known = new Set(current.map((record) => `${record.userId}\u0000${record.id}`));
      for (const record of incoming) {
        const key = `${record.userId}\u0000${record.id}`;
        if (known.has(key)) continue;
        known.add(key);
        current.push(record);
        added++;
      }
    });
    return added;
  }

  /** The keys as last read, read again when the file changed (looked at most every `recheckMs`). */
  private async current(): Promise<Map<string, KeyRecord>> {
    const now = Date.now();
    if (!this.cache || now - this.checkedAt >= (this.options.recheckMs ?? 1000)) {
      this.checkedAt = now;
      const mtimeMs = await stat(this.path).then(
        (info) => info.mtimeMs,
        (cause: unknown) => {
          if (isNotFound(cause)) return -1;
          throw unreadable(`cannot look at ${this.path}: ${(cause as Error).message}`, cause);
        },
      );
      if (!this.cache || this.cache.mtimeMs !== mtimeMs) {
        try {
          const records = mtimeMs === -1 ? [] : await this.read();
          this.cache = { records: new Map(records.map((record) => [record.id, record])), error: null, mtimeMs };
        } catch (cause) {
          this.cache = { records: null, error: cause instanceof MemexError ? cause : unreadable(`cannot read ${this.path}`, cause), mtimeMs };
        }
      }
    }
    if (this.cache.records === null) throw this.cache.error;
    return this.cache.records;
  }

  private async read(): Promise<KeyRecord[]> {
    try {
      const file = await readJsonRecord(this.path, KeyFileSchema, (reason, cause) => unreadable(reason, cause));
      return file?.keys ?? [];
    } catch (cause) {
      // Unreadable for any reason (bad JSON, a newer format, permissions): the same coded answer.
      if (cause instanceof MemexError && cause.code === 'MEMEX_KEYS_UNREADABLE') throw cause;
      throw unreadable(cause instanceof Error ? cause.message : String(cause), cause);
    }
  }

  /** Read, change, write atomically, under a lock file so two `memex keys` commands never lose each other's change. */
  private async change(edit: (records: KeyRecord[]) => void): Promise<void> {
    await this.durability.mkdirp(join(this.path, '..'));
    const lock = await DataDirLock.acquire(`${this.path}.lock`, this.options.lockTimeoutMs ?? 5000);
    try {
      const records = await this.read();
      edit(records);
      await this.durability.writeJsonAtomic(this.path, { v: FORMAT_VERSION, keys: records });
      this.cache = null;
    } finally {
      await lock.release();
    }
  }
}

function unreadable(reason: string, cause: unknown): MemexError {
  return new MemexError('MEMEX_KEYS_UNREADABLE', `the API key file cannot be read: ${reason}`, { cause });
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function infoOf(record: KeyRecord): ApiKeyInfo {
  const { hash: _hash, ...info } = record;
  return { ...info, prefix: keyPrefix(record.id) };
}
