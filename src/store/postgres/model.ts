import type { Pool, PoolClient } from 'pg';
import { MemexError } from '../../core/errors.js';
import { parseInput } from '../../core/inputs.js';
import { EmbeddingModelSchema, type EmbeddingModel } from '../../core/schemas.js';
import { SCHEMA_LOCK } from './migrations.js';
import { inTransaction } from './transaction.js';

/**
 * pgvector's HNSW index takes up to 2,000 dimensions of `vector`, `m` from 2 to 100 and
 * `ef_construction` from 4 to 1,000; outside that the index cannot be built, so the model is refused
 * before anything is recorded.
 */
const HNSW_MAX_DIMENSIONS = 2000;

export interface HnswBuild {
  /** Links per node (index.m in the config). */
  m: number;
  /** Build-time candidate list (index.efConstruction in the config); at least 2·m. */
  efConstruction: number;
}

/** The database's embedding model, or null before the first vectors. */
export async function readModel(pool: Pool): Promise<EmbeddingModel | null> {
  const result = await pool.query<{ model: string; dimension: number }>('SELECT model, dimension FROM memex.model');
  const row = result.rows[0];
  return row ? { model: row.model, dimension: row.dimension } : null;
}

/**
 * Records the model the database's vectors come from, like `memex.json` in a data dir, and fixes the
 * vector dimension with it: a CHECK that every embedding has it, and the HNSW index, which pgvector
 * builds only on a typed column or expression. The chunks column stays an untyped `vector` because
 * the dimension belongs to the deployment, not to a versioned migration; queries use
 * `embedding::vector(<dimension>)` to reach the index. Recording the same model again changes
 * nothing; another model is MEMEX_MODEL_MISMATCH unless `replace` (what a finished reindex does),
 * which rebuilds the check and the index when the dimension changed.
 */
export async function recordModel(pool: Pool, model: EmbeddingModel, hnsw: HnswBuild, options: { replace?: boolean } = {}): Promise<void> {
  const next = parseInput(EmbeddingModelSchema, model, 'embedding model');
  checkBuild(next, hnsw);
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    const found = await client.query<{ model: string; dimension: number }>('SELECT model, dimension FROM memex.model');
    const recorded = found.rows[0];
    if (recorded) {
      if (recorded.model === next.model && recorded.dimension === next.dimension) return;
      if (!options.replace) {
        throw new MemexError('MEMEX_MODEL_MISMATCH', `the database's vectors are from ${recorded.model} (${recorded.dimension}-d), not ${next.model} (${next.dimension}-d)`, {
          details: { recorded, configured: next },
        });
      }
      await client.query('UPDATE memex.model SET model = $1, dimension = $2, recorded_at = now()', [next.model, next.dimension]);
      if (recorded.dimension === next.dimension) return;
      await dropDimension(client);
    } else {
      await client.query('INSERT INTO memex.model (model, dimension) VALUES ($1, $2)', [next.model, next.dimension]);
    }
    // The numbers are checked integers, so interpolating them is safe (DDL takes no parameters).
    const dim = next.dimension;
    await client.query(`ALTER TABLE memex.chunks ADD CONSTRAINT chunks_embedding_dimension CHECK (vector_dims(embedding) = ${dim})`);
    await client.query(
      `CREATE INDEX chunks_embedding_hnsw ON memex.chunks USING hnsw ((embedding::vector(${dim})) vector_cosine_ops) ` +
        `WITH (m = ${hnsw.m}, ef_construction = ${hnsw.efConstruction})`,
    );
  });
}

/**
 * Drops the dimension check and the HNSW index, so rows of another dimension can be written: what a
 * reindex to a model of another dimension needs until it finishes (searches scan exactly meanwhile).
 */
export async function releaseDimension(pool: Pool): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
    await dropDimension(client);
  });
}

async function dropDimension(client: PoolClient): Promise<void> {
  await client.query('ALTER TABLE memex.chunks DROP CONSTRAINT IF EXISTS chunks_embedding_dimension');
  await client.query('DROP INDEX IF EXISTS memex.chunks_embedding_hnsw');
}

function checkBuild(model: EmbeddingModel, hnsw: HnswBuild): void {
  if (model.dimension > HNSW_MAX_DIMENSIONS) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `pgvector's HNSW index takes at most ${HNSW_MAX_DIMENSIONS} dimensions; ${model.model} has ${model.dimension}`, {
      details: { dimension: model.dimension },
    });
  }
  const { m, efConstruction } = hnsw;
  if (!Number.isInteger(m) || m < 2 || m > 100 || !Number.isInteger(efConstruction) || efConstruction < 4 || efConstruction > 1000 || efConstruction < 2 * m) {
    throw new MemexError('MEMEX_CONFIG_INVALID', `pgvector's HNSW needs index.m in 2-100 and index.efConstruction in 4-1000 and at least 2·m; got m ${m}, efConstruction ${efConstruction}`, {
      details: { m, efConstruction },
    });
  }
}
