import { compileWhere, isMemexError, type Chunk, type Metadata, type ChunkSource, type ParsedSearchOptions, type SearchMode, type Span } from '../core/index.js';
import type { Store } from '../store/index.js';
import { KIND_CODES, ORIGIN_CODES, ROLE_CODES, type UserIndex } from './user-index.js';
import { dot, type Neighbor } from './vector-index.js';

/** One recalled chunk with where it came from and how each ranking saw it. */
export interface SearchHit {
  sessionId: string;
  chunkId: string;
  text: string;
  source: ChunkSource;
  span: Span;
  part: Chunk['part'];
  /** The score results are ordered by (fused, recency-weighted; before MMR re-ordering). */
  score: number;
  scores: {
    /** Cosine similarity to the query; null when the vector search did not return this chunk. */
    vector: number | null;
    vectorRank: number | null;
    /** BM25 score; null when the chunk shares no word with the query (or was ranked too deep). */
    lexical: number | null;
    lexicalRank: number | null;
    /** The recency factor the score was multiplied by (1 without recency weighting). */
    recency: number;
  };
}

export interface SearchReport {
  hits: SearchHit[];
  mode: SearchMode;
  /** How the vector candidates were found: graph walk, exact scan of the filtered rows, or none. */
  vectorPath: 'hnsw' | 'exact' | 'none';
  /** Rows the filters let through (all live rows without filters). */
  matching: number;
}

export interface SearchSettings {
  efSearch: number;
  exactBelow: number;
  rrfK: number;
  vectorWeight: number;
  lexicalWeight: number;
  candidates: number;
}

interface Candidate {
  label: number;
  vector: number | null;
  vectorRank: number | null;
  lexical: number | null;
  lexicalRank: number | null;
  score: number;
  recency: number;
}

/**
 * Ranks one user's chunks for a query. The index holds only this user's rows, so nothing of another
 * user can be returned; filters narrow further. Vector candidates come from the HNSW graph, or from
 * an exact scan when the filters leave at most `exactBelow` rows (or the graph came back short), so a
 * vector or hybrid search returns `k` hits whenever `k` rows match.
 */
export async function searchIndex(
  index: UserIndex,
  store: Store,
  userId: string,
  input: { text: string; vector: Float32Array | null },
  options: ParsedSearchOptions,
  settings: SearchSettings,
): Promise<SearchReport> {
  const { k, mode } = options;
  const accept = filterOf(index, options);
  const matching = accept ? countMatching(index, accept, options) : { count: index.size, labels: null };
  const depth = Math.max(k, settings.candidates, options.mmr ? k * 4 : 0);
  const candidates = new Map<number, Candidate>();
  const entry = (label: number): Candidate => {
    let candidate = candidates.get(label);
    if (!candidate) {
      candidate = { label, vector: null, vectorRank: null, lexical: null, lexicalRank: null, score: 0, recency: 1 };
      candidates.set(label, candidate);
    }
    return candidate;
  };

  let vectorPath: SearchReport['vectorPath'] = 'none';
  if (mode !== 'lexical' && input.vector && matching.count > 0) {
    const want = Math.min(depth, matching.count);
    let neighbors: Neighbor[];
    if (accept && matching.count <= settings.exactBelow) {
      neighbors = index.exact(input.vector, want, matching.labels ?? liveLabels(index, accept));
      vectorPath = 'exact';
    } else {
      index.vectors.setEf(Math.max(options.efSearch ?? settings.efSearch, want));
      neighbors = index.vectors.search(input.vector, want, accept ?? undefined);
      vectorPath = 'hnsw';
      if (neighbors.length < want) {
        // A filtered graph walk can strand itself among rejected nodes; the exact scan cannot.
        neighbors = index.exact(input.vector, want, matching.labels ?? liveLabels(index, accept ?? (() => true)));
        vectorPath = 'exact';
      }
    }
    neighbors.forEach((neighbor, rank) => {
      const candidate = entry(neighbor.label);
      candidate.vector = neighbor.score;
      candidate.vectorRank = rank + 1;
    });
  }
  if (mode !== 'vector' && matching.count > 0) {
    index.lexical.search(input.text, depth, accept ?? undefined).forEach((hit, rank) => {
      const candidate = entry(hit.label);
      candidate.lexical = hit.score;
      candidate.lexicalRank = rank + 1;
    });
  }

  if (options.minScore !== undefined) dropBelow(candidates, options.minScore);

  const rrfK = options.rrfK ?? settings.rrfK;
  const vectorWeight = options.vectorWeight ?? settings.vectorWeight;
  const lexicalWeight = options.lexicalWeight ?? settings.lexicalWeight;
  const now = options.recency?.now ? Date.parse(options.recency.now) : Date.now();
  const { time } = index.columns();
  for (const candidate of candidates.values()) {
    if (mode === 'vector') candidate.score = candidate.vector ?? 0;
    else if (mode === 'lexical') candidate.score = candidate.lexical ?? 0;
    else {
      candidate.score =
        (candidate.vectorRank ? vectorWeight / (rrfK + candidate.vectorRank) : 0) + (candidate.lexicalRank ? lexicalWeight / (rrfK + candidate.lexicalRank) : 0);
    }
    if (options.recency) {
      const { halfLifeDays, weight } = options.recency;
      const created = time[candidate.label] as number;
      const ageDays = Number.isNaN(created) ? Infinity : Math.max(0, now - created) / 86_400_000;
      candidate.recency = 1 - weight + weight * 0.5 ** (ageDays / halfLifeDays);
      candidate.score *= candidate.recency;
    }
  }
  let ranked = [...candidates.values()].sort((a, b) => b.score - a.score || a.label - b.label);
  ranked = options.mmr ? mmr(index, ranked, k, options.mmr.lambda) : ranked.slice(0, k);
  return { hits: await hydrate(index, store, userId, ranked), mode, vectorPath, matching: matching.count };
}

/**
 * The relevance floor, for what only the vector search found: a candidate that shares a word with
 * the query (a BM25 match) is kept on that evidence; one found by meaning alone goes when its cosine
 * to the query is below `minScore`. The vector list is ordered by cosine, so when fewer than `k` of
 * it pass, no row beyond its depth would have.
 */
function dropBelow(candidates: Map<number, Candidate>, minScore: number): void {
  for (const [label, candidate] of candidates) {
    if (candidate.lexical === null && (candidate.vector ?? -Infinity) < minScore) candidates.delete(label);
  }
}

const NO_METADATA: Metadata = Object.freeze({});

/** The filters as one predicate over labels; null when there are none. */
function filterOf(index: UserIndex, options: ParsedSearchOptions): ((label: number) => boolean) | null {
  const tests: ((label: number) => boolean)[] = [];
  const columns = index.columns();
  if (options.sessionIds) {
    const slots = new Set(options.sessionIds.map((id) => columns.sessionSlot(id)).filter((slot) => slot !== undefined));
    tests.push((label) => slots.has(columns.session[label] as number));
  }
  if (options.excludeSessionIds && options.excludeSessionIds.length > 0) {
    const slots = new Set(options.excludeSessionIds.map((id) => columns.sessionSlot(id)).filter((slot) => slot !== undefined));
    tests.push((label) => !slots.has(columns.session[label] as number));
  }
  if (options.sources) {
    const kinds = new Set(options.sources.map((kind) => KIND_CODES[kind]));
    tests.push((label) => kinds.has(columns.kind[label] as 0 | 1));
  }
  if (options.roles) {
    const roles = new Set<number>(options.roles.map((role) => ROLE_CODES[role]));
    tests.push((label) => roles.has(columns.role[label] as number));
  }
  if (options.after !== undefined || options.before !== undefined) {
    const after = options.after ? Date.parse(options.after) : -Infinity;
    const before = options.before ? Date.parse(options.before) : Infinity;
    tests.push((label) => {
      const t = columns.time[label] as number;
      return t >= after && t < before; // NaN (no time) fails both
    });
  }
  if (options.origin) {
    const origin = ORIGIN_CODES[options.origin];
    tests.push((label) => columns.sessionOrigin(columns.session[label] as number) === origin);
  }
  if (options.where && Object.keys(options.where).length > 0) {
    const test = compileWhere(options.where);
    const { metaRef, metadata } = columns;
    // Chunks of one message share its metadata: test each message once (0 untested, 1 pass, 2 fail).
    const verdicts = new Uint8Array(metadata.length + 1);
    verdicts[0] = test(NO_METADATA) ? 1 : 2;
    tests.push((label) => {
      const ref = metaRef[label] as number;
      if (verdicts[ref] === 0) verdicts[ref] = test(metadata[ref - 1] as Metadata) ? 1 : 2;
      return verdicts[ref] === 1;
    });
  }
  if (tests.length === 0) return null;
  return (label) => index.isLive(label) && tests.every((test) => test(label));
}

/** How many live rows pass the filter, and (when few enough to scan) which. */
function countMatching(index: UserIndex, accept: (label: number) => boolean, options: ParsedSearchOptions): { count: number; labels: number[] | null } {
  // With a session filter, only those sessions' labels can pass: no need to look at the rest.
  const pool = options.sessionIds ? options.sessionIds.flatMap((id) => index.labelsOf(id)) : null;
  const labels = pool ? pool.filter(accept) : liveLabels(index, accept);
  return { count: labels.length, labels };
}

function liveLabels(index: UserIndex, accept: (label: number) => boolean): number[] {
  const labels: number[] = [];
  for (let label = 0; label < index.labelCount; label++) if (accept(label)) labels.push(label);
  return labels;
}

/**
 * Maximal marginal relevance over the ranked candidates: each pick maximises
 * `lambda * relevance - (1 - lambda) * (highest cosine to a chunk already picked)`, relevance being
 * the score scaled to [0, 1].
 */
function mmr(index: UserIndex, ranked: Candidate[], k: number, lambda: number): Candidate[] {
  const pool = ranked.slice(0, Math.max(k * 4, k));
  const top = pool[0]?.score ?? 0;
  const vectors = pool.map((candidate) => index.vectorOf(candidate.label));
  const closest = new Float64Array(pool.length).fill(-Infinity);
  const picked: Candidate[] = [];
  const used = new Uint8Array(pool.length);
  while (picked.length < Math.min(k, pool.length)) {
    let best = -1;
    let bestValue = -Infinity;
    for (let i = 0; i < pool.length; i++) {
      if (used[i]) continue;
      const relevance = top > 0 ? (pool[i] as Candidate).score / top : 0;
      const redundancy = picked.length === 0 ? 0 : (closest[i] as number);
      const value = lambda * relevance - (1 - lambda) * redundancy;
      if (value > bestValue) {
        bestValue = value;
        best = i;
      }
    }
    used[best] = 1;
    picked.push(pool[best] as Candidate);
    const chosen = vectors[best];
    if (chosen) {
      for (let i = 0; i < pool.length; i++) {
        const other = vectors[i];
        if (!used[i] && other) closest[i] = Math.max(closest[i] as number, dot(chosen, other));
      }
    }
  }
  return picked;
}

/** Reads the picked chunks back from their sessions' `vector_index.jsonl`. */
async function hydrate(index: UserIndex, store: Store, userId: string, ranked: Candidate[]): Promise<SearchHit[]> {
  const bySession = new Map<string, { rows: number[]; candidates: Candidate[]; chunkIds: string[] }>();
  for (const candidate of ranked) {
    const info = index.describe(candidate.label);
    if (!info) continue;
    const group = bySession.get(info.sessionId) ?? { rows: [], candidates: [], chunkIds: [] };
    group.rows.push(info.row);
    group.candidates.push(candidate);
    group.chunkIds.push(info.chunkId);
    bySession.set(info.sessionId, group);
  }
  const hits = new Map<number, SearchHit>();
  for (const [sessionId, group] of bySession) {
    // A session deleted, rewritten or broken since the sync reads as nothing rather than failing the search.
    const lines = await store.readVectorLines(userId, sessionId, group.rows).catch((cause: unknown) => {
      if (isMemexError(cause) && (cause.code === 'MEMEX_SESSION_NOT_FOUND' || cause.code === 'MEMEX_SESSION_CORRUPT' || cause.code === 'MEMEX_INVALID_INPUT')) return [];
      throw cause;
    });
    lines.forEach((line, i) => {
      const candidate = group.candidates[i] as Candidate;
      // The index was synced just before; a mismatch means the session changed since, so skip the row.
      if (line.chunkId !== group.chunkIds[i]) return;
      hits.set(candidate.label, {
        sessionId,
        chunkId: line.chunkId,
        text: line.text,
        source: line.source,
        span: line.span,
        part: line.part,
        score: candidate.score,
        scores: { vector: candidate.vector, vectorRank: candidate.vectorRank, lexical: candidate.lexical, lexicalRank: candidate.lexicalRank, recency: candidate.recency },
      });
    });
  }
  return ranked.flatMap((candidate) => hits.get(candidate.label) ?? []);
}
