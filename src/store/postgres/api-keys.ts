import type { Pool, PoolClient } from 'pg';
import { MemexError } from '../../core/errors.js';
import { parseId, type UserId } from '../../core/index.js';
import { keyIdOf, keyPrefix, newKey, parseKey, parseKeyRecords, type ApiKeyInfo, type ApiKeyRecord, type ApiKeyStore, type Caller } from '../api-keys.js';
import { translate } from './context.js';
import { inTransaction } from './transaction.js';
import { ADMIN_ROLE, APP_ROLE, withRole, withUser } from './with-user.js';

export interface PostgresKeyStoreOptions {
  /**
   * How long a verified key is taken on trust before the database is asked again, in ms (default
   * 500, at most 1000). Every instance caches on its own, so a key revoked through one instance is
   * refused by all within this time; 0 asks the database on every request (one indexed lookup).
   */
  cacheMs?: number;
}

interface KeyRow {
  user_id: string;
  id: string;
  name: string | null;
  admin: boolean;
  created_at: Date;
  revoked_at: Date | null;
}

const COLUMNS = 'user_id, id, name, admin, created_at, revoked_at';
/** Bounds the cache of verified keys: past it the cache starts over (it only saves lookups). */
const CACHE_LIMIT = 10_000;

/**
 * API keys in `memex.api_keys`, shared by every service instance on the database. Only the SHA-256
 * of each secret is stored, as in the flat files.
 *
 * Verifying a key knows only the token, not its user: the lookup runs as memex_app with the
 * presented secret's hash in `memex.key_hash`, and a policy shows exactly the row with that hash
 * (schema-v1.ts, "Many instances"). The hash is compared in SQL rather than in constant time: what
 * timing could leak is the stored hash, and a SHA-256 of 32 random bytes cannot be turned back into
 * a key. The operator's commands that span users (listing every key, revoking by id, "any live
 * key?") run as memex_admin, which reads keys' metadata but never their hashes.
 */
export class PostgresKeyStore implements ApiKeyStore {
  private readonly cacheMs: number;
  /** Verified keys by `<id>:<hash>`, until when they are trusted. */
  private readonly verified = new Map<string, { caller: Caller; until: number }>();

  constructor(
    private readonly pool: Pool,
    options: PostgresKeyStoreOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? 500;
    if (!Number.isFinite(this.cacheMs) || this.cacheMs < 0 || this.cacheMs > 1000) {
      throw new MemexError('MEMEX_CONFIG_INVALID', `the key cache time must be 0-1000 ms (a revoked key must stop working within a second), not ${this.cacheMs}`);
    }
  }

  async create(userId: string, name?: string, options: { admin?: boolean } = {}): Promise<{ key: string; info: ApiKeyInfo }> {
    const uid = parseId('user', userId);
    const label = name?.trim() || null;
    if (label !== null && label.length > 200) throw new MemexError('MEMEX_INVALID_INPUT', 'a key name is at most 200 characters');
    const { id, key, hash } = newKey();
    const row = await this.asUser(uid, async (client) => {
      const inserted = await client.query<KeyRow>(`INSERT INTO memex.api_keys (user_id, id, name, hash, admin) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`, [
        uid,
        id,
        label,
        hash,
        options.admin ?? false,
      ]);
      return inserted.rows[0] as KeyRow;
    });
    return { key, info: infoOf(row) };
  }

  async list(userId?: string): Promise<ApiKeyInfo[]> {
    const order = 'ORDER BY created_at, id';
    const rows =
      userId === undefined
        ? await this.asRole(ADMIN_ROLE, (client) => client.query<KeyRow>(`SELECT ${COLUMNS} FROM memex.api_keys ${order}`))
        : await this.asUser(userId, (client) => client.query<KeyRow>(`SELECT ${COLUMNS} FROM memex.api_keys ${order}`));
    return rows.rows.map(infoOf);
  }

  async revoke(keyOrId: string): Promise<ApiKeyInfo> {
    const id = keyIdOf(keyOrId);
    // Ids are unique per user only; two users holding the same 60-bit random id is not a real case.
    const rows = await this.asRole(ADMIN_ROLE, (client) =>
      client.query<KeyRow>(`UPDATE memex.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING ${COLUMNS}`, [id]),
    );
    const row = rows.rows[0];
    if (!row) throw new MemexError('MEMEX_KEY_NOT_FOUND', `no API key ${id}`, { details: { keyId: id } });
    this.forget((caller) => caller.keyId === id);
    return infoOf(row);
  }

  async revokeUser(userId: string): Promise<number> {
    const uid = parseId('user', userId);
    const revoked = await this.asUser(uid, (client) => client.query('UPDATE memex.api_keys SET revoked_at = now() WHERE revoked_at IS NULL'));
    this.forget((caller) => caller.userId === uid);
    return revoked.rowCount ?? 0;
  }

  async check(): Promise<void> {
    try {
      await this.asRole(ADMIN_ROLE, (client) => client.query('SELECT 1 FROM memex.api_keys LIMIT 1'));
    } catch (cause) {
      throw new MemexError('MEMEX_DATABASE_UNAVAILABLE', `the API keys cannot be read from the database: ${(cause as Error).message}`, { cause });
    }
  }

  async verify(token: string): Promise<Caller | null> {
    const parsed = parseKey(token);
    if (!parsed) return null;
    const cacheKey = `${parsed.id}:${parsed.hash}`;
    const now = Date.now();
    const cached = this.verified.get(cacheKey);
    if (cached && cached.until > now) return cached.caller;
    this.verified.delete(cacheKey);
    const row = await translate(
      inTransaction(this.pool, async (client) => {
        // One round trip for both: set_config('role', …, true) is SET LOCAL ROLE.
        await client.query("SELECT set_config('role', $1, true), set_config('memex.key_hash', $2, true)", [APP_ROLE, parsed.hash]);
        const found = await client.query<KeyRow>(`SELECT ${COLUMNS} FROM memex.api_keys WHERE id = $1 AND hash = $2 AND revoked_at IS NULL`, [parsed.id, parsed.hash]);
        return found.rows[0];
      }),
    );
    if (!row) return null;
    const caller: Caller = { userId: row.user_id, keyId: row.id, admin: row.admin };
    if (this.cacheMs > 0) {
      if (this.verified.size >= CACHE_LIMIT) this.verified.clear();
      this.verified.set(cacheKey, { caller, until: now + this.cacheMs });
    }
    return caller;
  }

  async hasLiveKeys(): Promise<boolean> {
    const found = await this.asRole(ADMIN_ROLE, (client) => client.query<{ live: boolean }>('SELECT EXISTS (SELECT 1 FROM memex.api_keys WHERE revoked_at IS NULL) AS live'));
    return found.rows[0]?.live === true;
  }

  async keyUsers(): Promise<string[]> {
    const rows = await this.asRole(ADMIN_ROLE, (client) => client.query<{ user_id: string }>('SELECT DISTINCT user_id FROM memex.api_keys ORDER BY user_id'));
    return rows.rows.map((row) => row.user_id);
  }

  /** As the user: the operator's role never reads hashes. */
  async records(userId: string): Promise<ApiKeyRecord[]> {
    const rows = await this.asUser(parseId('user', userId), (client) => client.query<KeyRow & { hash: string }>(`SELECT ${COLUMNS}, hash FROM memex.api_keys ORDER BY created_at, id`));
    return rows.rows.map((row) => ({ ...recordOf(row), hash: row.hash }));
  }

  /** One transaction per user, as that user (row-level security checks every row is theirs). */
  async copyIn(records: readonly ApiKeyRecord[]): Promise<number> {
    const byUser = new Map<string, ApiKeyRecord[]>();
    for (const record of parseKeyRecords(records)) byUser.set(record.userId, [...(byUser.get(record.userId) ?? []), record]);
    let added = 0;
    for (const [userId, list] of byUser) {
      added += await this.asUser(userId, async (client) => {
        let inserted = 0;
        for (const r of list) {
          const result = await client.query('INSERT INTO memex.api_keys (user_id, id, name, hash, admin, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING', [
            r.userId,
            r.id,
            r.name,
            r.hash,
            r.admin,
            r.createdAt,
            r.revokedAt,
          ]);
          inserted += result.rowCount ?? 0;
        }
        return inserted;
      });
    }
    return added;
  }

  /** Drops cached keys this instance revoked itself: refused at once here, within `cacheMs` elsewhere. */
  private forget(match: (caller: Caller) => boolean): void {
    for (const [cacheKey, entry] of this.verified) if (match(entry.caller)) this.verified.delete(cacheKey);
  }

  /** As the user, under row-level security; driver errors become coded ones (a lost connection is MEMEX_DATABASE_UNAVAILABLE). */
  private asUser<T>(userId: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return translate(withUser(this.pool, userId, fn));
  }

  private asRole<T>(role: typeof ADMIN_ROLE, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return translate(withRole(this.pool, role, fn));
  }
}

function recordOf(row: KeyRow): Omit<ApiKeyRecord, 'hash'> {
  return {
    id: row.id,
    // The database's check and the id it was written with make it a valid user id.
    userId: row.user_id as UserId,
    name: row.name,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at === null ? null : row.revoked_at.toISOString(),
    admin: row.admin,
  };
}

function infoOf(row: KeyRow): ApiKeyInfo {
  return { ...recordOf(row), prefix: keyPrefix(row.id) };
}
