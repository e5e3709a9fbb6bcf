import { withUser, type Database } from '../../../src/store/postgres/index.js';

/** The user and session rows a job's foreign key needs (the Store makes them in the service). */
export async function seedSession(database: Database, userId: string, sessionId: string): Promise<void> {
  await withUser(database.pool, userId, async (c) => {
    await c.query("INSERT INTO memex.users (user_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", [userId]);
    await c.query('INSERT INTO memex.sessions (user_id, id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [userId, sessionId]);
  });
}
