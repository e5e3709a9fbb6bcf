import { MemexError, isMemexError } from '../core/index.js';
import type { SearchHit } from './backend.js';

/**
 * A hit as a reranker gives it back: one of the candidates it was handed (the same object, or a
 * copy naming the same `sessionId` and `chunkId`), with a new `score` when the reranker has one.
 */
export interface RerankedHit {
  sessionId: string;
  chunkId: string;
  score?: number;
}

/**
 * The rerank seam: a caller's function that reads the query and the search's best candidates
 * (best first) and returns them in its own order, best first. It may drop candidates (a subset is
 * fine) but not add any. Memex has no reranker of its own: the default ranking is offline and
 * model-free; a caller with a cross-encoder (or an LLM) passes one here.
 */
export type Reranker = (query: string, hits: readonly SearchHit[]) => Promise<readonly RerankedHit[]> | readonly RerankedHit[];

/** Per search or window: a reranker (or `null`, none even if Memex has one) and its pool's size. */
export interface RerankOptions {
  reranker?: Reranker | null;
  /** Candidates handed to the reranker (default `search.rerankCandidates`; never fewer than `k`). */
  rerankCandidates?: number;
}

/**
 * `candidates` reordered by `reranker`, at most `k` of them. A hit the reranker returns keeps what
 * the search knew about it (text, source, per-list scores); its `score` becomes the reranker's when
 * given. A reranker that throws (or rejects) is MEMEX_RERANK_FAILED with its error as the cause;
 * one that returns something other than an array of candidates, a hit that was not a candidate, or
 * one twice, is MEMEX_RERANK_INVALID: a silently ignored foreign hit could be another user's chunk.
 */
export async function rerank(reranker: Reranker, query: string, candidates: readonly SearchHit[], k: number): Promise<SearchHit[]> {
  if (candidates.length === 0) return [];
  let returned: unknown;
  try {
    // Copies: a reranker that sorts or edits its argument in place cannot change the search's hits.
    returned = await reranker(query, candidates.map((hit) => ({ ...hit, scores: { ...hit.scores } })));
  } catch (cause) {
    if (isMemexError(cause)) throw cause;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new MemexError('MEMEX_RERANK_FAILED', `the reranker failed: ${message}`, { cause, details: { candidates: candidates.length } });
  }
  if (!Array.isArray(returned)) throw invalid('the reranker returned something other than an array of hits', {});
  const byKey = new Map(candidates.map((hit) => [keyOf(hit.sessionId, hit.chunkId), hit]));
  const seen = new Set<string>();
  const out: SearchHit[] = [];
  for (const [position, item] of (returned as unknown[]).entries()) {
    if (typeof item !== 'object' || item === null) throw invalid(`the reranker returned a non-hit at position ${position}`, { position });
    const { sessionId, chunkId, score } = item as Record<string, unknown>;
    const key = typeof sessionId === 'string' && typeof chunkId === 'string' ? keyOf(sessionId, chunkId) : undefined;
    const hit = key === undefined ? undefined : byKey.get(key);
    if (!hit || key === undefined) {
      throw invalid(`the reranker returned a hit that was not one of its candidates (position ${position})`, { position, sessionId: typeof sessionId === 'string' ? sessionId : null, chunkId: typeof chunkId === 'string' ? chunkId : null });
    }
    if (seen.has(key)) throw invalid(`the reranker returned chunk ${hit.chunkId} twice`, { position, sessionId: hit.sessionId, chunkId: hit.chunkId });
    if (score !== undefined && (typeof score !== 'number' || !Number.isFinite(score))) throw invalid(`the reranker gave chunk ${hit.chunkId} a score that is not a finite number`, { position, chunkId: hit.chunkId });
    seen.add(key);
    if (out.length < k) out.push(typeof score === 'number' ? { ...hit, score } : hit);
  }
  return out;
}

function invalid(message: string, details: Record<string, unknown>): MemexError {
  return new MemexError('MEMEX_RERANK_INVALID', message, { details });
}

function keyOf(sessionId: string, chunkId: string): string {
  return `${sessionId}\u0000${chunkId}`;
}
