import { type Chunk, type EmbeddingModel, EmbeddingModelSchema, MemexError, type Message, parseId, parseInput, type SessionId, type UserId, type VectorLine } from '../../core/index.js';
import type { SessionVectorData, VectorBatch, VectorStatus } from '../store.js';
import { type FlatFileContext, sessionKey, type SessionState } from './context.js';
import { requireUser } from './users.js';
import { loadSession, sessionVectors } from './session-state.js';
import { readFileRecord } from './files.js';
import { checkVectorBatch } from '../vector-batch.js';

export function getEmbeddingModel(ctx: FlatFileContext): Promise<EmbeddingModel | null> {
  ctx.assertOpen();
  return Promise.resolve(ctx.manifest.embedding);
}

/**
 * The data dir's model is recorded with its first vectors, not when a model first loads: a
 * process that only started (say, a server on a machine without the model, on the fallback)
 * leaves a data dir without vectors free to take the model configured before the first add.
 * Callers check the batch first (`checkVectorBatch`, which gives `dimension`), so a refused one
 * records nothing.
 */
async function recordFirstModel(ctx: FlatFileContext, batch: VectorBatch, dimension: number | null): Promise<void> {
  if (ctx.manifest.embedding !== null || dimension === null) return;
  await setEmbeddingModel(ctx, { model: batch.model, dimension });
}

export async function setEmbeddingModel(ctx: FlatFileContext, model: EmbeddingModel, options: { replace?: boolean } = {}): Promise<void> {
  ctx.assertOpen();
  const next = parseInput(EmbeddingModelSchema, model, 'embedding model');
  await ctx.mutex.run('manifest', async () => {
    const recorded = ctx.manifest.embedding;
    if (recorded && recorded.model === next.model && recorded.dimension === next.dimension) return;
    if (recorded && !options.replace) {
      throw new MemexError('MEMEX_MODEL_MISMATCH', `the data dir's vectors are from ${recorded.model} (${recorded.dimension}-d), not ${next.model} (${next.dimension}-d)`, {
        details: { recorded, configured: next },
      });
    }
    const manifest = { ...ctx.manifest, embedding: next };
    await ctx.durability.writeJsonAtomic(ctx.layout.manifest, manifest);
    ctx.manifest = manifest;
  });
}

export async function vectorStatus(ctx: FlatFileContext, userId: string, sessionId: string): Promise<VectorStatus> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => (await sessionVectors(ctx, await loadSession(ctx, uid, sid), uid, sid)).status);
}

export async function unembeddedMessages(ctx: FlatFileContext, userId: string, sessionId: string, options: { limit?: number; after?: string } = {}): Promise<Message[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const limit = options.limit ?? Number.MAX_SAFE_INTEGER;
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const after = options.after === undefined ? -1 : ((await state.log.indexOf(options.after)) ?? -1);
    const from = Math.max(await embeddedThrough(ctx, state, uid, sid), after) + 1;
    return state.log.range(from, from + limit);
  });
}

export async function appendVectors(ctx: FlatFileContext, userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await recordFirstModel(ctx, batch, checkVectorBatch(batch));
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const vectors = await sessionVectors(ctx, state, uid, sid);
    const through = await embeddedThrough(ctx, state, uid, sid);
    const present = batch.chunks.some((chunk) => chunk.source.kind === 'file') ? vectors.chunkIdSet() : new Set<string>();
    const fresh = await batchInLog(ctx, uid, state, batch, (position) => position > through);
    await vectors.append(filterBatch(fresh, (chunk) => !present.has(chunk.chunkId)), true);
    ctx.bumpVectors(uid);
    return vectors.status;
  });
}

export async function replaceVectors(ctx: FlatFileContext, userId: string, sessionId: string, batch: VectorBatch): Promise<VectorStatus> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  await recordFirstModel(ctx, batch, checkVectorBatch(batch));
  return ctx.mutex.run(sessionKey(uid, sid), async () => {
    const state = await loadSession(ctx, uid, sid);
    const vectors = await sessionVectors(ctx, state, uid, sid);
    await vectors.replace(await batchInLog(ctx, uid, state, batch, () => true), true);
    ctx.bumpVectors(uid);
    return vectors.status;
  });
}

export function vectorEpoch(ctx: FlatFileContext, userId: string): number {
  return ctx.vectorEpochs.get(parseId('user', userId)) ?? 0;
}

export async function indexDir(ctx: FlatFileContext, userId: string): Promise<string> {
  ctx.assertOpen();
  const uid = parseId('user', userId);
  await requireUser(ctx, uid);
  return ctx.layout.searchIndex(uid);
}

export async function readVectors(ctx: FlatFileContext, userId: string, sessionId: string, options: { from?: number; limit?: number } = {}): Promise<SessionVectorData> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => (await sessionVectors(ctx, await loadSession(ctx, uid, sid), uid, sid)).read(options));
}

export async function readMessageVectors(ctx: FlatFileContext, userId: string, sessionId: string, messageIds: readonly string[]): Promise<Omit<SessionVectorData, 'from'>> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  const wanted = new Set(messageIds);
  return ctx.mutex.run(sessionKey(uid, sid), async () => (await sessionVectors(ctx, await loadSession(ctx, uid, sid), uid, sid)).readMessages(wanted));
}

export async function readVectorLines(ctx: FlatFileContext, userId: string, sessionId: string, rows: readonly number[]): Promise<VectorLine[]> {
  const [uid, sid] = ctx.sessionIds(userId, sessionId);
  return ctx.mutex.run(sessionKey(uid, sid), async () => (await sessionVectors(ctx, await loadSession(ctx, uid, sid), uid, sid)).lines(rows));
}

/**
 * The log position of the last message with rows, -1 if none. Rows of a message the log no longer
 * has (only a hand edit or a lost rename can cause that) are dropped first.
 */
async function embeddedThrough(ctx: FlatFileContext, state: SessionState, userId: UserId, sessionId: SessionId): Promise<number> {
  const vectors = await sessionVectors(ctx, state, userId, sessionId);
  for (;;) {
    const last = vectors.lastEmbeddedMessageId;
    if (last === null) return -1;
    const position = await state.log.indexOf(last);
    if (position !== undefined) return position;
    await vectors.removeMessage(last);
    ctx.bumpVectors(userId);
  }
}

/**
 * The batch's chunks (with their vectors) whose message is in the log at a position `accept`
 * takes, in log order, then those of files the session holds, in batch order. The batch has one
 * vector per chunk (`checkVectorBatch`, or rows the store wrote).
 */
export async function batchInLog(ctx: FlatFileContext, userId: UserId, state: SessionState, batch: VectorBatch, accept: (position: number) => boolean): Promise<VectorBatch> {
  const keep: { index: number; position: number }[] = [];
  const files = new Map<string, boolean>();
  for (const [index, chunk] of batch.chunks.entries()) {
    if (chunk.source.kind === 'file') {
      const { fileId } = chunk.source;
      if (!files.has(fileId)) files.set(fileId, (await readFileRecord(ctx, userId, state.meta.id, fileId)) !== null);
      if (files.get(fileId)) keep.push({ index, position: Number.MAX_SAFE_INTEGER });
      continue;
    }
    const position = await state.log.indexOf(chunk.source.messageId);
    if (position !== undefined && accept(position)) keep.push({ index, position });
  }
  const order = keep.sort((a, b) => a.position - b.position || a.index - b.index).map((k) => k.index);
  return { model: batch.model, chunks: order.map((i) => batch.chunks[i] as Chunk), vectors: order.map((i) => batch.vectors[i] as Float32Array) };
}

function filterBatch(batch: VectorBatch, keep: (chunk: Chunk) => boolean): VectorBatch {
  const indexes = batch.chunks.flatMap((chunk, i) => (keep(chunk) ? [i] : []));
  if (indexes.length === batch.chunks.length) return batch;
  return { model: batch.model, chunks: indexes.map((i) => batch.chunks[i] as Chunk), vectors: indexes.map((i) => batch.vectors[i] as Float32Array) };
}
