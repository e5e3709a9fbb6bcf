import type { Pool, PoolClient } from 'pg';

/**
 * Runs `fn` in one transaction on one pooled connection: committed when it returns, rolled back when
 * it throws. A connection whose rollback fails is destroyed rather than returned to the pool, where
 * the next caller would inherit an aborted transaction.
 */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection that drops while checked out is reported on the client, not the pool; without a
  // listener Node would end the process. The query in flight fails with it anyway (and the
  // client is destroyed on release), so noting it is enough.
  const onError = (error: Error): void => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}
