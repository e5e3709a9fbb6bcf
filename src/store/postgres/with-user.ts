import type { Pool, PoolClient } from 'pg';
import { UserIdSchema } from '../../core/ids.js';
import { parseInput } from '../../core/inputs.js';
import { inTransaction } from './transaction.js';

/** The role the service's queries run as: it owns no table, so row-level security always applies. */
export const APP_ROLE = 'memex_app';

/**
 * Runs `fn` as `userId` in one transaction: the role drops to `memex_app` and the `memex.user_id`
 * setting the policies read is set, both `LOCAL`, so they end with the transaction and a pooled
 * connection never carries one user's identity into the next caller's queries.
 */
export async function withUser<T>(pool: Pool, userId: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const id = parseInput(UserIdSchema, userId, 'user id');
  return inTransaction(pool, async (client) => {
    // SET LOCAL rather than set_config, so Citus can carry it to the workers
    // (citus.propagate_set_commands = 'local'); one round trip for both. SET takes no parameters:
    // the id is a checked UserId ([A-Za-z0-9._-] only), so quoting it as a literal is safe.
    await client.query(`SET LOCAL ROLE ${APP_ROLE}; SET LOCAL memex.user_id = '${id}'`);
    return fn(client);
  });
}

/**
 * The two roles for the few lookups that cross users (see the end of schema-v1.ts): a job worker
 * claiming any user's queued job, and the operator's key commands. Each sees only what its policies
 * and column grants allow; neither bypasses row-level security.
 */
export const WORKER_ROLE = 'memex_worker';
export const ADMIN_ROLE = 'memex_admin';

/** Runs `fn` in one transaction as one of the cross-user roles, with no user set. */
export async function withRole<T>(pool: Pool, role: typeof WORKER_ROLE | typeof ADMIN_ROLE, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (client) => {
    await client.query(`SET LOCAL ROLE ${role}`);
    return fn(client);
  });
}
