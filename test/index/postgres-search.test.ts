import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import type { EmbeddingModel, NewMessage, NewSession } from '../../src/index.js';
import { PostgresSearch } from '../../src/index/index.js';
import type { Store, VectorBatch } from '../../src/store/index.js';
import { openDatabase, recordModel, withUser } from '../../src/store/postgres/index.js';
import { resetMemexSchema, startTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { describeSearchConformance } from './search-conformance.js';

let server: TestDatabase;
beforeAll(async () => {
  server = await startTestDatabase();
}, 60_000);
afterAll(async () => {
  await server.stop();
});

describeSearchConformance('PostgreSQL (rows written by SQL)', async (config) => {
  await resetMemexSchema(server.url);
  const db = await openDatabase(server.url);
  const store = fakeSqlStore(db.pool, { m: config.index.m, efConstruction: config.index.efConstruction });
  return { store, backend: new PostgresSearch({ pool: db.pool, config }), close: () => db.close() };
});

/**
 * A fake Store for the search suite until the PostgreSQL Store lands: only the writes the suite
 * makes, each one plain SQL as the user (so row-level security checks them), rows shaped the way
 * the schema documents. Not a Store: anything else it is asked throws.
 */
function fakeSqlStore(pool: pg.Pool, hnsw: { m: number; efConstruction: number }): Store {
  let next = 0;
  const id = (prefix: string): string => `${prefix}${(next++).toString().padStart(6, '0')}`;
  const fake = {
    setEmbeddingModel: (model: EmbeddingModel) => recordModel(pool, model, hnsw),
    createUser: ({ id: userId }: { id: string }) =>
      withUser(pool, userId, async (c) => {
        await c.query('INSERT INTO memex.users (user_id, name) VALUES ($1, $1)', [userId]);
      }),
    createSession: (userId: string, input: NewSession = {}) =>
      withUser(pool, userId, async (c) => {
        const sessionId = id('s');
        await c.query('INSERT INTO memex.sessions (user_id, id, origin) VALUES ($1, $2, $3)', [userId, sessionId, JSON.stringify(input.origin ?? { kind: 'native' })]);
        return { id: sessionId };
      }),
    appendMessages: (userId: string, sessionId: string, messages: NewMessage[]) =>
      withUser(pool, userId, async (c) => {
        const out: { id: string; role: string; content: string; createdAt: string; metadata: Record<string, unknown> }[] = [];
        for (const message of messages) {
          const row = { id: id('m'), role: message.role, content: message.content as string, createdAt: new Date(message.createdAt ?? Date.now()).toISOString(), metadata: message.metadata ?? {} };
          await c.query('INSERT INTO memex.messages (user_id, session_id, id, role, content, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
            userId, sessionId, row.id, row.role, row.content, JSON.stringify(row.metadata), row.createdAt,
          ]);
          out.push(row);
        }
        return out;
      }),
    putFile: (userId: string, sessionId: string, input: { source: { bytes: Uint8Array }; name: string }) =>
      withUser(pool, userId, async (c) => {
        const fileId = createHash('sha256').update(input.source.bytes).digest('hex');
        await c.query("INSERT INTO memex.files (user_id, session_id, id, name, mime_type, ext, size, bytes) VALUES ($1, $2, $3, $4, 'text/plain', 'txt', $5, $6)", [
          userId, sessionId, fileId, input.name, input.source.bytes.length, Buffer.from(input.source.bytes),
        ]);
        return { file: { id: fileId }, created: true };
      }),
    appendVectors: (userId: string, sessionId: string, batch: VectorBatch) =>
      withUser(pool, userId, async (c) => {
        for (const [i, chunk] of batch.chunks.entries()) {
          const { source } = chunk;
          await c.query(
            `INSERT INTO memex.chunks (user_id, session_id, id, source_kind, message_id, file_id, page, source, part_index, part_count, span_start, span_end, text, tokens, model, embedding)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
            [
              userId, sessionId, chunk.chunkId, source.kind, source.messageId ?? null, source.kind === 'file' ? source.fileId : null, source.kind === 'file' ? (source.page ?? null) : null,
              JSON.stringify(source), chunk.part.index, chunk.part.count, chunk.span.start, chunk.span.end, chunk.text, chunk.tokens, batch.model,
              `[${Array.from(batch.vectors[i] as Float32Array).join(',')}]`,
            ],
          );
        }
      }),
    deleteMessage: (userId: string, sessionId: string, messageId: string) =>
      withUser(pool, userId, async (c) => {
        await c.query('DELETE FROM memex.chunks WHERE user_id = $1 AND session_id = $2 AND message_id = $3', [userId, sessionId, messageId]);
        await c.query('DELETE FROM memex.messages WHERE user_id = $1 AND session_id = $2 AND id = $3', [userId, sessionId, messageId]);
      }),
    deleteSession: (userId: string, sessionId: string) =>
      withUser(pool, userId, async (c) => {
        await c.query('DELETE FROM memex.sessions WHERE user_id = $1 AND id = $2', [userId, sessionId]);
      }),
    close: async () => undefined,
  };
  return new Proxy(fake, {
    get: (target, key) => {
      if (key in target || key === 'then') return target[key as keyof typeof target];
      throw new Error(`the fake SQL store does not do ${String(key)} (${randomUUID()})`);
    },
  }) as unknown as Store;
}
